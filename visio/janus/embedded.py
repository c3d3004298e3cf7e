"""The embedded default: a local Janus started by the server from a config it writes.

The config enables only what Visio uses (the VideoRoom plugin and the WebSocket
transport on loopback) so that no demo plugin binds ports and Janus' API is never
reachable from outside the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import shutil
import signal
from pathlib import Path

from visio.config import Settings
from visio.janus.client import JanusConnection

log = logging.getLogger(__name__)

LIB_DIRS = [
    Path(f"/usr/lib/{platform.machine()}-linux-gnu/janus"),
    Path("/usr/lib/janus"),
    Path("/usr/local/lib/janus"),
]
KEPT_PLUGIN = "libjanus_videoroom.so"
KEPT_TRANSPORT = "libjanus_websockets.so"


class JanusNotInstalled(RuntimeError):
    pass


def janus_lib_dir() -> Path:
    for candidate in LIB_DIRS:
        if (candidate / "plugins" / KEPT_PLUGIN).exists():
            return candidate
    raise JanusNotInstalled(
        "Janus plugins not found (looked in "
        + ", ".join(str(d) for d in LIB_DIRS)
        + "); install the Debian packages janus and janus-tools"
    )


def _others(folder: Path, keep: str) -> str:
    names = sorted(p.name for p in folder.glob("*.so") if p.name != keep)
    return ",".join(names)


def event_loops(settings: Settings) -> int:
    """Janus' media threads. Static loops forward a packet for less CPU than Janus' thread
    per handle (measured with `visio load` on 2 cores: 2x in a webinar, 1.15-1.4x in
    meetings of 6; 1 loop as good as 2, better when other processes compete), but a loop
    is one core at most: by default, half the cores, the rest left to the server,
    captions and transcription."""
    if settings.janus_event_loops is not None:
        return settings.janus_event_loops
    return max(1, (os.cpu_count() or 2) // 2)


def write_config(
    settings: Settings,
    folder: Path,
    *,
    ws_ip: str = "127.0.0.1",
    reclaim_session_timeout: int = 0,
) -> Path:
    """Write a complete Janus config folder and return the main config file.

    `ws_ip` is where the API listens (a private address when a node serves another host);
    `reclaim_session_timeout` keeps sessions that long after their WebSocket drops.
    """
    lib = janus_lib_dir()
    folder.mkdir(parents=True, exist_ok=True)
    nat = [f'ice_ignore_list = "{settings.janus_ice_ignore}"']
    if settings.janus_ice_interfaces:
        nat.append(f'ice_enforce_list = "{settings.janus_ice_interfaces}"')
    if settings.janus_public_ip:
        nat.append(f'nat_1_1_mapping = "{settings.janus_public_ip}"')
        # Both addresses: clients outside use the public one; a TURN server inside the
        # same network relays to the private one (the public one needs hairpin NAT, which
        # most NATs and clouds lack, and coturn should refuse it: docs/OPERATIONS.md).
        nat.append("keep_private_host = true")
    secret = f'api_secret = "{settings.janus_api_secret}"' if settings.janus_api_secret else ""
    loops = event_loops(settings)
    loops_line = f"event_loops = {loops}" if loops else ""
    (folder / "janus.jcfg").write_text(
        f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{lib / "plugins"}"
    transports_folder = "{lib / "transports"}"
    events_folder = "{lib / "events"}"
    loggers_folder = "{lib / "loggers"}"
    debug_level = {settings.janus_debug_level}
    {secret}
    {loops_line}
    session_timeout = 60
    reclaim_session_timeout = {reclaim_session_timeout}
    hide_dependencies = true
}}
media: {{
    rtp_port_range = "{settings.janus_rtp_ports}"
    nack_optimizations = true
}}
nat: {{
    {chr(10).join("    " + line for line in nat).strip()}
    ice_tcp = false
    full_trickle = false
    # Browsers hide their host addresses behind mDNS names (Firefox always does), which
    # only the browser's own link can resolve: a lookup from here fails, after a query to
    # the server's DNS resolver naming the browser's candidate. The browser's checks make
    # Janus learn its address anyway (a peer-reflexive candidate).
    ignore_mdns = true
}}
plugins: {{
    disable = "{_others(lib / "plugins", KEPT_PLUGIN)}"
}}
transports: {{
    disable = "{_others(lib / "transports", KEPT_TRANSPORT)}"
}}
events: {{
    broadcast = false
    disable = "{_others(lib / "events", "")}"
}}
loggers: {{
    disable = "{_others(lib / "loggers", "")}"
}}
"""
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(
        f"""general: {{
    admin_key = "{settings.janus_admin_key}"
    lock_rtp_forward = true
    string_ids = false
}}
"""
    )
    (folder / "janus.transport.websockets.jcfg").write_text(
        f"""general: {{
    json = "compact"
    ws = true
    ws_port = {settings.janus_ws_port}
    ws_ip = "{ws_ip}"
    wss = false
}}
admin: {{
    admin_ws = false
    admin_wss = false
}}
"""
    )
    return folder / "janus.jcfg"


MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


class EmbeddedJanus:
    """Runs Janus as a child process, restarts it if it dies, stops it by its pid."""

    def __init__(
        self, settings: Settings, ws_ip: str = "127.0.0.1", reclaim_session_timeout: int = 0
    ) -> None:
        self.settings = settings
        self.ws_ip = ws_ip  # a media node of several server processes: a private address
        self.reclaim_session_timeout = reclaim_session_timeout
        self.folder = (settings.data_dir / "janus").resolve()
        self.process: asyncio.subprocess.Process | None = None
        self.restarts: list[float] = []
        self._stopping = False
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.ws_ip}:{self.settings.janus_ws_port}"

    async def start(self, ready_timeout: float = 15.0) -> None:
        await self._launch(ready_timeout)
        self._watchdog = asyncio.create_task(self._watch(), name="janus-watchdog")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self.process is not None:
            code = await self.process.wait()
            if self._stopping:
                return
            now = loop.time()
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(self.restarts) > MAX_RESTARTS:
                log.error("janus keeps dying; not restarting it", extra={"code": code})
                return
            log.error("janus exited; restarting it", extra={"code": code})
            await asyncio.sleep(0.5)
            try:
                await self._launch(15.0)
            except (RuntimeError, OSError) as exc:
                log.error("janus restart failed", extra={"error": str(exc)})

    async def _launch(self, ready_timeout: float) -> None:
        if shutil.which(self.settings.janus_binary) is None:
            raise JanusNotInstalled(
                f"{self.settings.janus_binary} not found; install the Debian package janus"
            )
        config = write_config(
            self.settings,
            self.folder,
            ws_ip=self.ws_ip,
            reclaim_session_timeout=self.reclaim_session_timeout,
        )
        log_file = open(self.folder / "janus.log", "ab")  # noqa: ASYNC230 - once, at start
        self.process = await asyncio.create_subprocess_exec(
            self.settings.janus_binary,
            "--config",
            str(config),
            "--configs-folder",
            str(self.folder),
            "--disable-colors",
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()
        log.info("janus started", extra={"pid": self.process.pid, "url": self.url})
        await self._wait_ready(ready_timeout)

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.process is not None and self.process.returncode is not None:
                raise RuntimeError(
                    f"janus exited with code {self.process.returncode}; "
                    f"see {self.folder / 'janus.log'}"
                )
            probe = JanusConnection(self.url, self.settings.janus_api_secret)
            try:
                await probe.connect(timeout=1.0)
                await probe.info()
                await probe.close()
                return
            except (OSError, TimeoutError, Exception):
                await asyncio.sleep(0.1)
        raise RuntimeError(f"janus did not answer within {timeout:.0f} s")

    async def stop(self) -> None:
        self._stopping = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 5.0)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        log.info("janus stopped")
