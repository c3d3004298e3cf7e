"""Bad protocol input gets an error frame; the connection and the others carry on."""

from __future__ import annotations

import json

import pytest
import websockets

from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


async def open_ws(server: ServerProcess) -> websockets.ClientConnection:
    return await websockets.connect(server.base_url.replace("http", "ws") + "/ws")


async def exchange(ws: websockets.ClientConnection, frame: str | bytes) -> dict:
    await ws.send(frame)
    return json.loads(await ws.recv())


async def still_alive(ws: websockets.ClientConnection) -> None:
    assert await exchange(ws, json.dumps({"type": "ping"})) == {"type": "pong"}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        (b"\xff\xfe\x00", "bad_json"),
        ("[1, 2, 3]", "bad_json"),
        ('{"no": "type"}', "unknown_type"),
        ('{"type": "teleport"}', "unknown_type"),
        ('{"type": "join", "room": "abc-defg-hij"}', "bad_message"),
        ('{"type": "join", "room": "../../etc", "name": "x"}', "bad_message"),
        ('{"type": "join", "room": "abc-defg-hij", "name": "   "}', "bad_message"),
        ('{"type": "chat", "text": "hello"}', "not_joined"),
        ('{"type": "join", "room": "nop-nope-nop", "name": "Eve"}', "room_not_found"),
        (json.dumps({"type": "chat", "text": "x" * 70_000}), "too_large"),
    ],
)
async def test_bad_frames_before_join_get_an_error_and_the_socket_lives(server, frame, code):
    async with await open_ws(server) as ws:
        error = await exchange(ws, frame)
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["message"]
        await still_alive(ws)


async def test_error_echoes_the_ref_of_the_failed_frame(server):
    async with await open_ws(server) as ws:
        error = await exchange(ws, json.dumps({"type": "chat", "text": "x", "ref": "r42"}))
        assert error["ref"] == "r42"


async def test_frames_over_the_transport_limit_close_the_socket_only(server, bots, room):
    alice = await bots.join(room, "Alice")
    async with await open_ws(server) as ws:
        await ws.send("x" * (2 * 1024 * 1024))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
    await still_alive_client(alice)


async def still_alive_client(client) -> None:
    mark = len(client.frames)
    await client.send({"type": "ping"})
    await client.wait_for(lambda f: f["type"] == "pong", since=mark)


async def test_bad_requests_inside_a_meeting_harm_no_one(bots, room):
    alice = await bots.join(room, "Alice")
    mallory = await bots.join(room, "Mallory")
    await alice.wait_frames(mallory.id, "video")
    bad = [
        (
            {"type": "publish", "target": "camera", "sdp": "v=0 this is not an SDP at all"},
            "bad_sdp",
        ),
        ({"type": "publish", "target": "projector", "sdp": "v=0" * 10}, "bad_message"),
        ({"type": "answer", "sdp": "v=0 garbage garbage"}, None),
        ({"type": "unpublish", "target": "screen"}, "not_published"),
        ({"type": "candidate", "target": "screen", "candidate": None}, "not_published"),
        ({"type": "restart_ice", "target": "screen", "sdp": "v=0" * 10}, "not_published"),
        ({"type": "restart_ice", "target": "camera", "sdp": "v=0 not an SDP at all"}, "bad_sdp"),
        ({"type": "layer", "mid": "99", "quality": "ultra"}, "bad_message"),
        ({"type": "join", "room": room, "name": "Again"}, "already_joined"),
        ({"type": "reaction", "emoji": "💩"}, "bad_message"),
        ({"type": "chat", "text": ""}, "bad_message"),
        ({"type": "state", "audio": "loud"}, "bad_message"),
    ]
    for frame, code in bad:
        mark = len(mallory.frames)
        await mallory.send(frame)
        error = await mallory.wait_for(lambda f: f["type"] == "error", since=mark)
        if code is not None:
            assert error["code"] == code, (frame, error)
        else:
            assert error["code"] in ("no_offer", "bad_sdp"), (frame, error)
    await mallory.send_raw("}{")
    await mallory.wait_for(lambda f: f.get("code") == "bad_json")

    # Nobody was hurt: the media of both still flows, chat still works.
    seen = alice.frames_from(mallory.id, "video")
    await alice.wait_frames(mallory.id, "video", count=seen + 10)
    seen = mallory.frames_from(alice.id, "video")
    await mallory.wait_frames(alice.id, "video", count=seen + 10)
    await mallory.chat_send("sorry")
    await alice.wait_for(lambda f: f["type"] == "chat" and f["message"]["text"] == "sorry")
    assert not alice.errors


async def test_flooding_is_rate_limited_without_disconnecting(server, room):
    async with await open_ws(server) as ws:
        for _ in range(100):
            await ws.send(json.dumps({"type": "ping"}))
        replies = [json.loads(await ws.recv()) for _ in range(100)]
        assert {"type": "pong"} in replies
        assert any(r.get("code") == "rate_limited" for r in replies)
