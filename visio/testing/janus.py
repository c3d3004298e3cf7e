"""Standalone Janus media nodes for tests and benchmarks, stopped by their process id.

Each node is Debian's /usr/bin/janus started from the locked-down config the server
writes for its embedded Janus (visio/janus/embedded.py), with its own WebSocket port,
API secret, admin key and ICE port range, gathering ICE on the test veth only. Several
can run side by side in the test namespace: a pool of nodes, or a meeting cascaded over
them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from visio.config import Settings
from visio.janus.client import JanusConnection, JanusHandle
from visio.janus.embedded import write_config
from visio.testing.netns import ADDRESS, VETH
from visio.testing.process import log_tail, stop_process
from visio.testing.server import free_port

JANUS = "/usr/bin/janus"
# ICE ports: one block per node, away from ServerProcess' 30000-39999 and from the
# 10000-... ports Janus gives remote publishers.
_ICE_BLOCKS = itertools.cycle(range(40000, 60000, 1000))


class JanusNodeProcess:
    """One Janus media node: its API on `url`, its media on the test veth (`address`)."""

    def __init__(
        self,
        name: str = "janus",
        *,
        ws_ip: str = "127.0.0.1",
        rtp_ports: str | None = None,
        reclaim_session_timeout: int = 0,
        debug_level: int = 3,
        api_secret: str | None = None,
        admin_key: str | None = None,
        folder: Path | None = None,
    ) -> None:
        """`folder` holds its config and log (kept after it stops); a new temporary one
        by default."""
        self.name = name
        self.ws_ip = ws_ip
        self.ws_port = free_port()
        self.address = ADDRESS  # where other nodes send this node RTP
        # A pool of nodes serving the same server processes shares one secret and key.
        self.api_secret = api_secret or secrets.token_urlsafe(16)
        self.admin_key = admin_key or secrets.token_urlsafe(16)
        self.reclaim_session_timeout = reclaim_session_timeout
        self.folder = folder or Path(tempfile.mkdtemp(prefix=f"visio-{name}-"))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log_path = self.folder / "janus.log"
        block = next(_ICE_BLOCKS)
        self.settings = Settings(
            data_dir=self.folder,
            janus_ws_port=self.ws_port,
            janus_api_secret=self.api_secret,
            janus_admin_key=self.admin_key,
            janus_ice_interfaces=VETH,
            janus_rtp_ports=rtp_ports or f"{block}-{block + 999}",
            janus_debug_level=debug_level,
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.ws_ip}:{self.ws_port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.pid

    def start(self, timeout: float = 10.0) -> None:
        config = write_config(
            self.settings,
            self.folder / "config",
            ws_ip=self.ws_ip,
            reclaim_session_timeout=self.reclaim_session_timeout,
        )
        log = open(self.log_path, "ab")
        command = [JANUS, "--config", str(config), "--configs-folder", str(config.parent)]
        self.process = subprocess.Popen(
            [*command, "--disable-colors"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            # Janus opens its transports after loading its plugins: a port that accepts
            # means the VideoRoom is there.
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.ws_ip, self.ws_port), timeout=0.5),
            ):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not listen within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL; the exit code (0 for a clean stop)."""
        return stop_process(self.process, timeout)

    def kill(self) -> int | None:
        """kill -9, as when a machine dies."""
        return stop_process(self.process, 0.0, signal.SIGKILL)

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    # -- what the node holds, for tests that check nothing is left behind ---------------

    def thread_names(self) -> list[str]:
        """Its threads' names: Janus names a remote publisher's thread `vremote <id>`."""
        names = []
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError):
                names.append((task / "comm").read_text().strip())
        return names

    def udp_ports(self) -> set[int]:
        """The UDP ports its sockets are bound to (ICE, remote publishers, forwarders)."""
        inodes = set()
        for fd in Path(f"/proc/{self.pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        ports = set()
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            with contextlib.suppress(OSError), open(table) as rows:
                for row in list(rows)[1:]:
                    fields = row.split()
                    if fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        return ports

    @contextlib.asynccontextmanager
    async def videoroom(self) -> AsyncIterator[JanusHandle]:
        """A VideoRoom handle on this node, on a connection of its own."""
        connection = JanusConnection(self.url, self.api_secret)
        await connection.connect()
        try:
            session = await connection.create_session()
            try:
                yield await session.attach()
            finally:
                await session.destroy()
        finally:
            await connection.close()
