"""Generated input against the live server: the OpenAPI schema and the WebSocket protocol.

Whatever a guest or a signed-in stranger sends, the server answers without a 5xx, keeps
the connection usable, and changes nothing in a room that is not theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from websockets.sync.client import connect

from tests.conftest import GENEROUS_LIMITS, start_server, stop_server
from visio.protocol import MESSAGE_TYPES
from visio.testing.idp import sign_in
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


class Stranger:
    """Alice's room, and Mallory: signed in, but nothing to do with it."""

    def __init__(self, server) -> None:
        self.server = server
        self.alice = asyncio.run(self._signed_in("alice"))
        self.mallory = asyncio.run(self._signed_in("mallory"))
        self.room = self._call(self.alice, "POST", "/api/rooms", {"access": "trusted"})["id"]
        self._call(
            self.alice, "PUT", f"/api/rooms/{self.room}/members/bob@visio.test", {"role": "admin"}
        )

    async def _signed_in(self, login: str) -> dict[str, str]:
        async with httpx.AsyncClient(base_url=self.server.base_url) as http:
            await sign_in(http, f"{self.server.base_url}/auth/login", login)
            await http.get("/api/me")
            return {c.name: c.value for c in http.cookies.jar}

    def _call(self, cookies: dict[str, str], method: str, path: str, body=None):
        headers = {"X-CSRF-Token": cookies["visio_csrf"]}
        with httpx.Client(base_url=self.server.base_url, cookies=cookies) as http:
            response = http.request(method, path, json=body, headers=headers)
        return response.json() if response.content else None

    def room_state(self):
        return (
            self._call(self.alice, "GET", f"/api/rooms/{self.room}"),
            self._call(self.alice, "GET", f"/api/rooms/{self.room}/members"),
        )


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """This module's own server, whose WebSocket rate limit lets every generated frame
    through to the handlers: past the run's server's burst, many were only answered
    rate_limited."""
    pair = start_server(
        guests_create_rooms=True, rate_limit_per_s=1000, rate_limit_burst=1000, **GENEROUS_LIMITS
    )
    yield pair[0]
    stop_server(*pair)


@pytest.fixture(scope="module")
def stranger(server) -> Stranger:
    return Stranger(server)


def api_operations(server):
    schema = schemathesis.openapi.from_url(f"{server.base_url}/api/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


# schemathesis' pytest plugin does not work with pytest 9 yet: drive its strategies here.
def test_the_api_never_fails_and_strangers_change_nothing(server, stranger):
    operations = api_operations(server)
    assert len(operations) >= 10
    before = stranger.room_state()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            if "room_id" in (case.path_parameters or {}):
                case.path_parameters["room_id"] = stranger.room
            case.call_and_validate(
                base_url=server.base_url,
                checks=[not_a_server_error],
                headers={"X-CSRF-Token": stranger.mallory["visio_csrf"]},
                cookies=stranger.mallory,
            )

        call()
        assert stranger.room_state() == before, operation.label


# -- the WebSocket ----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FRAMES = st.one_of(
    st.text(max_size=200),
    st.dictionaries(
        st.sampled_from(["type", "id", "all", "action", "locked", "room", "target", "sdp", "text"]),
        JSON_VALUES,
        max_size=5,
    ).map(lambda d: json.dumps(d)),
    st.fixed_dictionaries(
        {"type": st.sampled_from(sorted(MESSAGE_TYPES - {"leave"}))},  # leave just leaves
        optional={
            "id": st.from_regex(r"\A[pw]-[0-9a-f]{8}\Z") | JSON_VALUES,
            "all": JSON_VALUES,
            "action": st.sampled_from(["mute", "camera_off", "stop_screen", "remove"]),
            "locked": st.booleans(),
            "room": st.text(max_size=20),
            "resume": st.text(max_size=40),
        },
    ).map(lambda d: json.dumps(d)),
)


def _join(stack, cookies: dict[str, str] | None, base_url: str, room: str, name: str):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())}
    url = base_url.replace("http", "ws", 1) + "/ws"
    ws = stack.enter_context(connect(url, additional_headers=headers))
    ws.send(
        json.dumps({"type": "join", "room": room, "name": name, "audio": False, "video": False})
    )
    first = json.loads(ws.recv(timeout=10))
    return ws, first


def _pong(ws) -> None:
    """Ping until the server answers pong (slowing down when it says we send too fast)."""
    ws.send(json.dumps({"type": "ping"}))
    while (frame := json.loads(ws.recv(timeout=10)))["type"] != "pong":
        if frame.get("code") == "rate_limited":
            time.sleep(0.2)
            ws.send(json.dumps({"type": "ping"}))


def test_generated_frames_from_a_participant_change_nothing(server, stranger):
    stack = contextlib.ExitStack()
    mallory = asyncio.run(stranger._signed_in("mallory"))  # the API test signed her out
    owner, joined = _join(stack, stranger.alice, server.base_url, stranger.room, "Alice")
    assert joined["type"] == "joined"
    guest, waiting = _join(stack, None, server.base_url, stranger.room, "Gus")
    assert waiting["type"] == "lobby"
    member, entered = _join(stack, mallory, server.base_url, stranger.room, "M")
    assert entered["type"] == "joined"  # trusted: signed-in people enter

    def fuzz(ws, examples: int):
        @given(frame=FRAMES)
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
        def send(frame: str) -> None:
            ws.send(frame)
            _pong(ws)  # still connected and answering

        send()

    def participants() -> dict:
        return stranger._call(stranger.alice, "GET", f"/api/rooms/{stranger.room}/participants")

    try:
        fuzz(guest, 25)
        assert [w["name"] for w in participants()["waiting"]] == ["Gus"]
        before = stranger.room_state()
        fuzz(member, 100)
        after = participants()
        assert after["running"] and not after["locked"]
        assert [p["name"] for p in after["participants"]] == ["Alice", "Mallory"]
        assert stranger.room_state() == before
        _pong(owner)
    finally:
        stack.close()
