"""HAProxy (Debian's package) in front of several visio server processes, for tests.

The configuration is the one docs/OPERATIONS.md shows: WebSocket-friendly timeouts,
health checks on /healthz (a draining process answers 503 and gets no new client), and
the client's address passed on in X-Forwarded-For, or with `proxy_protocol` in a PROXY
protocol v2 header on each connection (`send-proxy-v2`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from visio.testing.process import log_tail, stop_process, wait_listening
from visio.testing.server import free_port

HAPROXY = "/usr/sbin/haproxy"


def config(port: int, backends: list[tuple[str, int]], proxy_protocol: bool = False) -> str:
    send_proxy = " send-proxy-v2" if proxy_protocol else ""
    servers = "\n".join(
        f"    server visio{i} {host}:{p} check inter 500ms fall 1 rise 2{send_proxy}"
        for i, (host, p) in enumerate(backends, 1)
    )
    return f"""global
    maxconn 4000

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
    option forwardfor
    option redispatch
    retries 2

frontend visio
    bind 127.0.0.1:{port}
    default_backend servers

backend servers
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
{servers}
"""


class HAProxyServer:
    def __init__(self, backends: list[tuple[str, int]], proxy_protocol: bool = False) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="visio-haproxy-"))
        self.config_path = self.dir / "haproxy.cfg"
        self.config_path.write_text(config(self.port, backends, proxy_protocol))
        self.log_path = self.dir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [HAPROXY, "-W", "-db", "-f", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_listening(self.process, self.port, "haproxy", self.log_tail, timeout)
        except RuntimeError:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> int | None:
        code = stop_process(self.process, timeout)
        shutil.rmtree(self.dir, ignore_errors=True)
        return code

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)
