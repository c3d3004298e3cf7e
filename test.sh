#!/usr/bin/env bash
# Install what the tests need (Janus, Chromium, Firefox ESR, ffmpeg, espeak-ng, Python packages),
# then lint and run the whole suite: unit, integration (real Janus + aiortc bots in a
# private network namespace, hence root) and browser tests (headless Chromium and Firefox ESR).
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh

apt_install janus janus-tools chromium firefox-esr ffmpeg fonts-dejavu-core espeak-ng sox baresip iproute2 python3 python3-venv postgresql \
    redis-server haproxy nginx coturn nftables openssl xvfb
disable_system_janus
disable_system_services nginx.service redis-server.service haproxy.service coturn.service
python_venv "[test]"
# Every integration test runs the server as this unprivileged user, as run.sh does.
service_user visio "$PWD/var"
let_reach visio
node_packages tests/idp
node_packages visio/web/vendor
# puppeteer-core drives Debian's Firefox: it must never fetch a browser of its own.
PUPPETEER_SKIP_DOWNLOAD=1 node_packages tests/firefox
.venv/bin/ruff check visio tests bench
.venv/bin/ruff format --check visio tests bench
exec .venv/bin/python -m pytest "$@"
