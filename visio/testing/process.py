"""Child processes of the test harness (server, identity provider, PostgreSQL): stop them
by their pid, and show the end of their logs when something goes wrong."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def stop_process(
    process: subprocess.Popen[bytes] | None, timeout: float, sig: int = signal.SIGTERM
) -> int | None:
    """Send `sig`, then SIGKILL if it has not exited within `timeout`; its exit code."""
    if process is None or process.poll() is not None:
        return process.returncode if process else None
    os.kill(process.pid, sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        return process.wait(5)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def open_log(path: Path) -> BinaryIO:
    """A child's log file, for appending, readable by its owner only (logs name people)."""
    return open(path, "ab", opener=lambda name, flags: os.open(name, flags, 0o600))


def wait_listening(
    process: subprocess.Popen[bytes], port: int, name: str, tail: Callable[[], str], timeout: float
) -> None:
    """Until `process` accepts TCP on 127.0.0.1:`port`; RuntimeError, with its log's end,
    if it exits or does not listen in time (the caller stops it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"{name} not listening in {timeout} s:\n{tail()}")
