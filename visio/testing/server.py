"""Start a real `visio serve` (with its embedded Janus) and stop it by its process id."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from visio.testing.netns import VETH
from visio.testing.process import log_tail, stop_process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A visio server on 127.0.0.1 whose Janus gathers ICE on the test veth only."""

    def __init__(self, **settings: Any) -> None:
        self.port = free_port()
        self.janus_port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="visio-test-"))
        self.api_secret = secrets.token_urlsafe(16)
        self.admin_key = secrets.token_urlsafe(16)
        env = {
            "VISIO_HOST": "127.0.0.1",
            "VISIO_PORT": str(self.port),
            "VISIO_DATA_DIR": str(self.data_dir),
            "VISIO_JANUS_WS_PORT": str(self.janus_port),
            "VISIO_JANUS_ICE_INTERFACES": VETH,
            "VISIO_JANUS_API_SECRET": self.api_secret,
            "VISIO_JANUS_ADMIN_KEY": self.admin_key,
            "VISIO_JANUS_RTP_PORTS": "30000-39999",
            "VISIO_RECONNECT_GRACE_S": "5",
            "VISIO_LOG_FORMAT": "json",
        }
        env.update({f"VISIO_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.csrf = secrets.token_urlsafe(24)  # double-submit: the same value in both
        self.log_path = self.data_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def janus_url(self) -> str:
        return f"ws://127.0.0.1:{self.janus_port}"

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "visio", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"visio serve exited early:\n{self.log_tail()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"visio serve not healthy in {timeout} s:\n{self.log_tail()}")

    def stop(self) -> int | None:
        return stop_process(self.process, timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        csrf = {"Cookie": f"visio_csrf={self.csrf}", "X-CSRF-Token": self.csrf}
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", **csrf, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, head = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, head = error.code, error.read(), dict(error.headers)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, payload, head

    def get(self, path: str) -> tuple[int, Any]:
        status, payload, _ = self.request("GET", path)
        return status, payload

    def create_room(self, name: str | None = None) -> str:
        status, payload, _ = self.request("POST", "/api/rooms", {"name": name} if name else {})
        if status != 201:
            raise RuntimeError(f"room creation failed: {status} {payload}")
        return str(payload["id"])
