"""janus.embedded.write_config, and the real janus binary started with that config."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
from pathlib import Path

import pytest

from visio.config import Settings
from visio.janus.client import JanusConnection, JanusError
from visio.janus.embedded import (
    KEPT_PLUGIN,
    KEPT_TRANSPORT,
    JanusNotInstalled,
    janus_lib_dir,
    write_config,
)
from visio.testing import netns

try:
    LIB = janus_lib_dir()
except JanusNotInstalled:
    LIB = None

pytestmark = pytest.mark.skipif(LIB is None, reason="Janus plugins are not installed")


def settings(tmp_path: Path, **values) -> Settings:
    values.setdefault("janus_ws_port", 18988)
    return Settings(data_dir=tmp_path, **values)


def setting(text: str, key: str) -> str | None:
    found = re.search(rf'^\s*{key} = "?([^"\n]*)"?$', text, re.MULTILINE)
    return found.group(1) if found else None


def section(text: str, name: str) -> str:
    found = re.search(rf"^{name}: {{\n(.*?)^}}", text, re.MULTILINE | re.DOTALL)
    assert found, f"no {name} section"
    return found.group(1)


def so_files(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.so")}


def test_returns_the_main_config_in_the_folder(tmp_path):
    main = write_config(settings(tmp_path), tmp_path / "janus")
    assert main == tmp_path / "janus" / "janus.jcfg"
    assert {p.name for p in main.parent.iterdir()} == {
        "janus.jcfg",
        "janus.plugin.videoroom.jcfg",
        "janus.transport.websockets.jcfg",
    }


def test_only_the_videoroom_plugin_is_enabled(tmp_path):
    text = write_config(settings(tmp_path), tmp_path).read_text()
    disabled = set(setting(section(text, "plugins"), "disable").split(","))
    assert disabled == so_files(LIB / "plugins") - {KEPT_PLUGIN}
    assert KEPT_PLUGIN not in disabled


def test_only_the_websockets_transport_is_enabled(tmp_path):
    text = write_config(settings(tmp_path), tmp_path).read_text()
    disabled = set(setting(section(text, "transports"), "disable").split(","))
    assert disabled == so_files(LIB / "transports") - {KEPT_TRANSPORT}
    assert "libjanus_http.so" in disabled


def test_every_event_handler_and_logger_is_disabled(tmp_path):
    text = write_config(settings(tmp_path), tmp_path).read_text()
    for name in ("events", "loggers"):
        listed = setting(section(text, name), "disable")
        assert set(filter(None, listed.split(","))) == so_files(LIB / name)


def test_folders_point_at_the_janus_libraries(tmp_path):
    text = write_config(settings(tmp_path), tmp_path / "conf").read_text()
    general = section(text, "general")
    assert setting(general, "configs_folder") == str(tmp_path / "conf")
    assert setting(general, "plugins_folder") == str(LIB / "plugins")
    assert setting(general, "transports_folder") == str(LIB / "transports")


def test_websockets_bound_to_loopback_on_the_configured_port(tmp_path):
    write_config(settings(tmp_path, janus_ws_port=19123), tmp_path)
    text = (tmp_path / "janus.transport.websockets.jcfg").read_text()
    general = section(text, "general")
    assert re.search(r"^\s*ws = true$", general, re.MULTILINE)
    assert re.search(r"^\s*ws_port = 19123$", general, re.MULTILINE)
    assert setting(general, "ws_ip") == "127.0.0.1"
    assert re.search(r"^\s*wss = false$", general, re.MULTILINE)


def test_websockets_address_and_session_reclaim_can_be_set(tmp_path):
    main = write_config(settings(tmp_path), tmp_path, ws_ip="10.0.0.5", reclaim_session_timeout=30)
    general = section((tmp_path / "janus.transport.websockets.jcfg").read_text(), "general")
    assert setting(general, "ws_ip") == "10.0.0.5"
    assert re.search(r"^\s*reclaim_session_timeout = 30$", main.read_text(), re.MULTILINE)


def test_sessions_are_not_reclaimed_by_default(tmp_path):
    text = write_config(settings(tmp_path), tmp_path).read_text()
    assert re.search(r"^\s*reclaim_session_timeout = 0$", section(text, "general"), re.MULTILINE)


def test_admin_api_is_off(tmp_path):
    write_config(settings(tmp_path), tmp_path)
    admin = section((tmp_path / "janus.transport.websockets.jcfg").read_text(), "admin")
    assert re.search(r"^\s*admin_ws = false$", admin, re.MULTILINE)
    assert re.search(r"^\s*admin_wss = false$", admin, re.MULTILINE)
    assert setting((tmp_path / "janus.jcfg").read_text(), "admin_secret") is None


def test_ice_enforce_list_and_nat_mapping_absent_by_default(tmp_path):
    nat = section(write_config(settings(tmp_path), tmp_path).read_text(), "nat")
    assert "ice_enforce_list" not in nat
    assert "nat_1_1_mapping" not in nat
    assert "keep_private_host" not in nat
    assert setting(nat, "ice_ignore_list") == "vmnet"


def test_ice_enforce_list_and_nat_mapping_when_set(tmp_path):
    config = settings(tmp_path, janus_ice_interfaces="eth0", janus_public_ip="203.0.113.7")
    nat = section(write_config(config, tmp_path).read_text(), "nat")
    assert setting(nat, "ice_enforce_list") == "eth0"
    assert setting(nat, "nat_1_1_mapping") == "203.0.113.7"
    # the private address too: a TURN server in the same network relays to it
    assert setting(nat, "keep_private_host") == "true"


def test_api_secret_only_when_set(tmp_path):
    assert setting(write_config(settings(tmp_path), tmp_path).read_text(), "api_secret") is None
    text = write_config(settings(tmp_path, janus_api_secret="abc"), tmp_path).read_text()
    assert setting(section(text, "general"), "api_secret") == "abc"


def test_admin_key_goes_in_the_videoroom_config(tmp_path):
    write_config(settings(tmp_path, janus_admin_key="k3y"), tmp_path)
    text = (tmp_path / "janus.plugin.videoroom.jcfg").read_text()
    assert setting(section(text, "general"), "admin_key") == "k3y"


def test_rtp_ports_and_debug_level_are_passed(tmp_path):
    config = settings(tmp_path, janus_rtp_ports="30000-30100", janus_debug_level=5)
    text = write_config(config, tmp_path).read_text()
    assert setting(section(text, "media"), "rtp_port_range") == "30000-30100"
    assert re.search(r"^\s*debug_level = 5$", section(text, "general"), re.MULTILINE)


def event_loops_line(tmp_path: Path, **values) -> str | None:
    text = write_config(settings(tmp_path, **values), tmp_path).read_text()
    found = re.search(r"^\s*event_loops = (\d+)$", section(text, "general"), re.MULTILINE)
    return found.group(1) if found else None


def test_event_loops_default_to_half_the_cores(tmp_path, monkeypatch):
    for cores, loops in ((1, "1"), (2, "1"), (16, "8")):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert event_loops_line(tmp_path) == loops


def test_event_loops_as_set_and_zero_for_a_thread_per_handle(tmp_path):
    assert event_loops_line(tmp_path, janus_event_loops=3) == "3"
    assert event_loops_line(tmp_path, janus_event_loops=0) is None  # Janus' own default


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def connect_when_up(url: str, secret: str, process, timeout: float = 3.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert process.returncode is None, "janus exited at start"
        connection = JanusConnection(url, secret)
        try:
            await connection.connect(timeout=0.5)
            return connection
        except OSError:
            await asyncio.sleep(0.02)
    raise AssertionError("janus did not answer")


@pytest.mark.skipif(shutil.which("/usr/bin/janus") is None, reason="no /usr/bin/janus")
async def test_real_janus_runs_with_the_config_and_serves_only_loopback(tmp_path):
    port = free_port()
    config = settings(
        tmp_path, janus_ws_port=port, janus_api_secret="apisecret", janus_admin_key="adminkey"
    )
    main = write_config(config, tmp_path / "janus")
    process = await asyncio.create_subprocess_exec(
        "/usr/bin/janus",
        "--config",
        str(main),
        "--configs-folder",
        str(main.parent),
        "--disable-colors",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        connection = await connect_when_up(f"ws://127.0.0.1:{port}", "apisecret", process)
        try:
            info = await connection.info()
            assert sorted(info["plugins"]) == ["janus.plugin.videoroom"]
            assert sorted(info["transports"]) == ["janus.transport.websockets"]
            session = await connection.create_session()
            try:
                control = await session.attach()
                with pytest.raises(JanusError):  # the admin key is required
                    await control.request({"request": "create", "room": 7})
                await control.request({"request": "create", "room": 7, "admin_key": "adminkey"})
            finally:
                await session.destroy()
        finally:
            await connection.close()

        anonymous = JanusConnection(f"ws://127.0.0.1:{port}")
        await anonymous.connect(timeout=1.0)
        try:
            with pytest.raises(JanusError) as caught:
                await anonymous.create_session()
            assert caught.value.code == 403
        finally:
            await anonymous.close()

        if netns.entered():  # the namespace has a non-loopback address to try
            with pytest.raises(OSError):
                await asyncio.open_connection(netns.ADDRESS, port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 3.0)
        except TimeoutError:
            os.kill(process.pid, signal.SIGKILL)
            await process.wait()


def test_janus_does_not_look_up_browsers_mdns_names(tmp_path):
    """A browser's .local name resolves only on its own link: Janus must not send it to the
    server's DNS resolver; the browser's checks give its address (peer-reflexive)."""
    nat = section(write_config(settings(tmp_path), tmp_path).read_text(), "nat")
    assert re.search(r"^\s*ignore_mdns = true$", nat, re.MULTILINE)
