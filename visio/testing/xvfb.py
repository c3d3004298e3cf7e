"""A virtual X screen (Debian's `Xvfb`) for a browser that must capture a screen.

Headless Firefox has no screen: its getDisplayMedia() fails with NotFoundError, fake
devices or not (they stand in for cameras and microphones only). On an Xvfb display, a
Firefox with a window shares that screen through its real capture path (WebRTC's X11
screen capturer), as on an agent's desktop. Xvfb picks a free display number itself
(-displayfd), listens on no TCP port, and is stopped by its process id.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from visio.testing.process import stop_process

XVFB = "/usr/bin/Xvfb"


class VirtualScreen:
    def __init__(self, width: int = 1280, height: int = 720) -> None:
        if shutil.which(XVFB) is None:
            raise RuntimeError(f"{XVFB} not found: install the Debian package xvfb (test.sh does)")
        self.size = f"{width}x{height}x24"
        self.process: subprocess.Popen[bytes] | None = None
        self.display = ""

    def start(self, timeout: float = 10.0) -> str:
        """Starts the screen; its display name (":N") for DISPLAY."""
        read, write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [XVFB, "-displayfd", str(write), "-screen", "0", self.size, "-nolisten", "tcp"],
                pass_fds=(write,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            os.close(write)
            write = -1
            self.display = f":{self._read_display(read, timeout)}"
        finally:
            os.close(read)
            if write != -1:
                os.close(write)
        return self.display

    def _read_display(self, read: int, timeout: float) -> str:
        """Xvfb writes its display number and a newline once it accepts clients."""
        os.set_blocking(read, False)
        number = b""
        deadline = time.monotonic() + timeout
        while not number.endswith(b"\n"):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Xvfb exited ({self.process.returncode})")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Xvfb gave no display in {timeout} s")
            try:
                number += os.read(read, 16)
            except BlockingIOError:
                time.sleep(0.02)
        return number.decode().strip()

    def stop(self) -> None:
        stop_process(self.process, timeout=5)
