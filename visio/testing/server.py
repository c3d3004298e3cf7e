"""Start a real `visio serve` (with its embedded Janus) and stop it by its process id.

As root (the tests, the benchmarks), the server runs as the unprivileged system user that
run.sh runs it as (`visio`, made by scripts/lib.sh), so every test shows that it works
without root. It stays in the harness' network namespace.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
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
from visio.testing.process import log_tail, open_log, stop_process

SERVICE_USER = "visio"


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now, and never handed out before by this process: the kernel may give
    a port back as soon as its probe socket closes, before whoever got it binds it (a
    server and a Janus node once got the same one)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


@functools.cache
def service_account() -> pwd.struct_passwd:
    """The `visio` user, once it is known to run this Python and import this checkout."""
    try:
        account = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise RuntimeError(
            f"no user {SERVICE_USER!r} to run the server as: ./test.sh creates it "
            f"(scripts/lib.sh service_user and let_reach)"
        ) from None
    probe = subprocess.run(
        [sys.executable, "-c", "import visio"],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise RuntimeError(
            f"the user {SERVICE_USER!r} cannot run {sys.executable} on {os.getcwd()}: "
            f"./test.sh lets it (scripts/lib.sh let_reach)\n{probe.stderr}"
        )
    return account


def as_service_user(folder: Path) -> dict[str, Any]:
    """Popen arguments that run a child as the service user (when root), owning `folder`."""
    if os.geteuid() != 0:
        return {}
    account = service_account()
    os.chown(folder, account.pw_uid, account.pw_gid)
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


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
        self.env = {**os.environ, **env, "HOME": str(self.data_dir)}
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
        log = open_log(self.log_path)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "visio", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **as_service_user(self.data_dir),
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

    def audit_text(self) -> str:
        """Everything in the server's audit trail (data_dir/audit, one file per day)."""
        folder = self.data_dir / "audit"
        return "".join(path.read_text() for path in sorted(folder.glob("audit-*.jsonl")))

    def audit_events(self, **match: Any) -> list[dict[str, Any]]:
        """The audit trail's events whose fields equal `match` (e.g. room=..., event=...)."""
        events = [json.loads(line) for line in self.audit_text().splitlines()]
        return [e for e in events if all(e.get(k) == v for k, v in match.items())]

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
