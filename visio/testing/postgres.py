"""A throwaway PostgreSQL cluster for tests, from Debian's packages, stopped by its pid.

It listens only on a Unix socket in its own temporary directory (no TCP, no clash with a
system cluster Debian may have started), trusts whoever connects there, and trades
durability for speed. Root cannot run PostgreSQL, so as root it runs as `postgres`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from visio.testing.process import log_tail, stop_process
from visio.testing.server import free_port

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
OWNER = "postgres"
SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "autovacuum": "off",
    "max_wal_size": "128MB",  # each CREATE DATABASE logs a copy of its template
    "logging_collector": "off",
}
DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class PostgresUnavailable(RuntimeError):
    pass


def find_binaries() -> Path:
    """The bin directory of the newest PostgreSQL installed from Debian's packages."""

    def version(bin_dir: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", bin_dir.parent.name))

    found = [
        bin_dir
        for bin_dir in DEBIAN_BINARIES.glob("*/bin")
        if (bin_dir / "initdb").exists() and (bin_dir / "postgres").exists()
    ]
    if not found:
        raise PostgresUnavailable(f"no PostgreSQL in {DEBIAN_BINARIES}/<version>/bin")
    return max(found, key=version)


def scratch_dir() -> str | None:
    """tmpfs where it has room (on disk, CREATE DATABASE is several times slower)."""
    try:
        return "/dev/shm" if shutil.disk_usage("/dev/shm").free >= 1 << 30 else None
    except OSError:
        return None  # tempfile's default


class PostgresServer:
    def __init__(self) -> None:
        self.bin = find_binaries()
        self.version = self.bin.parent.name
        self.dir = Path(tempfile.mkdtemp(prefix="visio-pg-", dir=scratch_dir()))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.port = free_port()  # names the socket file (.s.PGSQL.<port>) only, not TCP
        self.process: subprocess.Popen[bytes] | None = None
        self.start_s = 0.0
        # As root: run as the `postgres` user that Debian's package creates.
        self._as_owner: dict[str, Any] = {"cwd": self.dir}
        if os.geteuid() == 0:
            self._as_owner.update(user=OWNER, group=OWNER, extra_groups=[])
            shutil.chown(self.dir, OWNER, OWNER)
            # Servers under test run as another unprivileged user: they may reach the
            # socket here, not list the folder (the cluster's data folder is 0700).
            self.dir.chmod(0o711)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@/{database}?host={self.dir}&port={self.port}"

    def start(self, timeout: float = 30.0) -> None:
        began = time.monotonic()
        try:
            self._initdb()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [self.bin / "postgres", "-D", self.data, *self._options()],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    **self._as_owner,
                )
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - began

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT), SIGKILL if that takes too long; then delete everything."""
        stop_process(self.process, timeout, signal.SIGINT)
        shutil.rmtree(self.dir, ignore_errors=True)

    async def create_database(self, name: str) -> None:
        if not DATABASE_NAME.fullmatch(name):
            raise ValueError(f"not a plain database name: {name!r}")
        connection = await asyncpg.connect(
            host=str(self.dir), port=self.port, user="postgres", database="postgres"
        )
        try:
            await connection.execute(f"CREATE DATABASE {name}")
        finally:
            await connection.close()

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                self.bin / "initdb",
                *("-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync"),
                *("--encoding=UTF8", "--locale=C", "--no-instructions"),
            ],
            capture_output=True,
            text=True,
            check=False,
            **self._as_owner,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stderr}")

    def _options(self) -> list[str]:
        settings = {**SETTINGS, "unix_socket_directories": str(self.dir), "port": str(self.port)}
        return [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]

    def _wait_until_ready(self, timeout: float) -> None:
        """postmaster.pid's 8th line says `ready` once connections are accepted."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL exited with code {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                status = (self.data / "postmaster.pid").read_text().splitlines()[7:8]
            except OSError:
                status = []
            if status and status[0].strip() == "ready":
                return
            time.sleep(0.01)
        raise RuntimeError(
            f"PostgreSQL accepted no connections within {timeout:g}s:\n{self.log_tail()}"
        )
