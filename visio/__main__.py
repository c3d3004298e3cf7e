import sys

from visio.cli import main

sys.exit(main())
