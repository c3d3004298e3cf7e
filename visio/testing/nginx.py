"""nginx (Debian's package) in front of a visio server, for tests: the reverse proxy
configuration docs/OPERATIONS.md shows, on 127.0.0.1, started in the foreground and
stopped by its process id."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from visio.testing.process import log_tail, stop_process, wait_listening
from visio.testing.server import free_port

NGINX = "/usr/sbin/nginx"


def config(directory: Path, port: int, backend: str) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""daemon off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 512; }}

http {{
    access_log off;
{temp}

    # As in docs/OPERATIONS.md, "HTTPS" (here without TLS).
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass http://{backend};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_read_timeout 120s;
            client_max_body_size 64k;
        }}
    }}
}}
"""


class NginxServer:
    def __init__(self, backend: str) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="visio-nginx-"))
        self.dir.chmod(0o755)  # nginx's workers (nobody) reach their temp folders
        self.config_path = self.dir / "nginx.conf"
        self.config_path.write_text(config(self.dir, self.port, backend))
        self.log_path = self.dir / "error.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        with open(self.dir / "stderr.log", "ab") as log:
            self.process = subprocess.Popen(
                [NGINX, "-p", str(self.dir), "-e", str(self.log_path), "-c", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_listening(self.process, self.port, "nginx", self.log_tail, timeout)
        except RuntimeError:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> int | None:
        code = stop_process(self.process, timeout)
        shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.dir / "stderr.log", lines) + "\n" + log_tail(self.log_path, lines)
