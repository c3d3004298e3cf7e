"""The HTTP side and the command line, against the real server."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_health_reports_the_janus_node(server):
    status, health = server.get("/healthz")
    assert status == 200
    assert health["status"] == "ok"
    assert [node["up"] for node in health["janus"]] == [True]


async def test_health_tells_others_only_the_status(server):
    """Audit L6: the media nodes' addresses and loads are for the host (and metrics_token)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, local_addr=("127.0.0.9", 0)
    )
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body) == {"status": "ok"}


def test_create_and_look_up_a_room(server):
    status, room, _ = server.request("POST", "/api/rooms", {"name": "Weekly"})
    assert status == 201
    assert re.fullmatch(r"[a-z]{3}-[a-z]{4}-[a-z]{3}", room["id"])
    assert room["url"] == f"{server.base_url}/{room['id']}"
    assert room["name"] == "Weekly"
    status, found = server.get(f"/api/rooms/{room['id']}")
    assert status == 200
    assert found["participants"] == 0


def test_room_ids_are_not_guessable_in_sequence(server):
    ids = {server.create_room() for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/rooms/nop-nope-nop", None, 404),
        ("GET", "/api/rooms/" + "a" * 300, None, 404),
        ("POST", "/api/rooms", {"name": "x" * 500}, 422),
        ("POST", "/api/rooms", [1, 2], 422),
        ("GET", "/NOT_A_ROOM!", None, 404),
    ],
)
def test_bad_http_requests_get_a_clear_error(server, method, path, body, status):
    got, payload, _ = server.request(method, path, body)
    assert got == status
    assert "detail" in payload


def test_pages_are_served_with_security_headers(server):
    room = server.create_room()
    for path in ("/", f"/{room}", "/static/js/protocol.js"):
        status, _, headers = server.request("GET", path)
        assert status == 200, path
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        # WebAssembly (RNNoise, MediaPipe) may be compiled; no other code from strings.
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
        assert directives["script-src"] == "'self' 'wasm-unsafe-eval'", policy
        assert "unsafe-inline" not in policy
        assert headers["x-content-type-options"] == "nosniff"


def test_janus_api_listens_on_loopback_only(server):
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    janus = [line for line in listening.splitlines() if f":{server.janus_port} " in line]
    assert janus, listening
    assert all("127.0.0.1:" in line for line in janus), janus


def test_cli_help_lists_the_commands():
    result = subprocess.run(
        [sys.executable, "-m", "visio", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for command in ("serve", "rooms", "bot"):
        assert command in result.stdout


async def test_cli_bot_joins_and_publishes_a_test_pattern(server, bots):
    room = server.create_room()
    watcher = await bots.join(room, "Watcher", publish=False)
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "visio",
        "bot",
        f"{server.base_url}/{room}",
        "--name",
        "Deploy check",
        "--duration",
        "6",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    joined = await watcher.wait_for(lambda f: f["type"] == "participant_joined", timeout=20)
    assert joined["participant"]["name"] == "Deploy check"
    bot_id = joined["participant"]["id"]
    await watcher.wait_frames(bot_id, "video", count=20)
    await watcher.wait_frames(bot_id, "audio", count=50)
    output, _ = await asyncio.wait_for(bot.communicate(), 30)
    assert bot.returncode == 0, output
    assert f"joined {room}" in output.decode()
    await watcher.wait_for(lambda f: f["type"] == "participant_left")


async def test_cli_bot_relay_check_fails_clearly_without_turn(server):
    room = server.create_room()  # the run's server hands out no TURN server
    bot = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "visio", "bot", f"{server.base_url}/{room}",
        "--relay", "--until-video", "10", "--duration", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(bot.communicate(), 30)
    assert bot.returncode == 1, (out, err)
    assert "hands out no TURN server" in err.decode()
    assert "Traceback" not in err.decode()


async def test_cli_bot_reports_an_unknown_room_clearly(server):
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "visio",
        "bot",
        f"{server.base_url}/nop-nope-nop",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(bot.communicate(), 30)
    assert bot.returncode == 1
    assert b"room_not_found" in err
    assert b"Traceback" not in err
