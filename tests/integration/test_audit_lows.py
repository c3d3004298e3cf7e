"""The audit's low findings (and the rest of M8, M9), each on the real parts.

One test per finding, named after it. The module's server checks sign-ins every second
and closes sockets that do not join within two seconds, so that the tests do not wait
on the defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator

import pytest
import websockets

from tests.conftest import GENEROUS_LIMITS, People, start_server, stop_server
from visio.client import VisioClient
from visio.testing.idp import sign_in
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lows() -> Iterator[ServerProcess]:
    pair = start_server(guests_create_rooms=True, session_check_s=1, **GENEROUS_LIMITS)
    yield pair[0]
    stop_server(*pair)


@pytest.fixture
async def folks(lows: ServerProcess) -> AsyncIterator[People]:
    found = People(lows)
    yield found
    await found.close()


def ws_url(server: ServerProcess) -> str:
    return server.base_url.replace("http", "ws", 1) + "/ws"


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}


async def frames_until(ws: websockets.ClientConnection, kind: str, timeout: float = 10) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind or frame.get("code") == kind:
                return frame


async def closed_with(ws: websockets.ClientConnection, timeout: float = 10) -> int | None:
    async with asyncio.timeout(timeout):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed:
            pass
    return ws.close_code


# -- L14: a WebSocket keeps its identity after sign-out ---------------------------------


async def test_l14_sign_out_ends_live_sockets_and_a_new_sign_in_ends_the_old(lows, folks):
    alice = await folks.signed_in("alice")
    room = await alice.new_room()
    join = {"type": "join", "room": room, "name": "Alice", "video": False}
    headers = cookie_header(alice.cookies)

    async with (
        websockets.connect(ws_url(lows), additional_headers=headers) as in_meeting,
        websockets.connect(ws_url(lows), additional_headers=headers) as not_joined_yet,
        websockets.connect(ws_url(lows)) as witness,
    ):
        await in_meeting.send(json.dumps(join))
        await frames_until(in_meeting, "joined")
        await witness.send(json.dumps({**join, "name": "Witness"}))
        joined = await frames_until(witness, "joined")
        assert [p["name"] for p in joined["participants"]] == ["Alice"]

        assert (await alice.api("POST", "/auth/logout")).status_code == 204

        # The socket that had joined is told, closed, and out of the meeting at once.
        told = await frames_until(in_meeting, "signed_out", timeout=5)
        assert told["type"] == "error"
        assert await closed_with(in_meeting) == 4401
        left = await frames_until(witness, "participant_left", timeout=5)
        assert left["id"] == joined["participants"][0]["id"]

        # A socket opened while signed in and joining after the sign-out does not get in.
        await not_joined_yet.send(json.dumps(join))
        assert (await frames_until(not_joined_yet, "signed_out"))["type"] == "error"
        assert await closed_with(not_joined_yet) == 4401

    # Signing in again in the same browser ends the session its cookie held.
    bob = await folks.signed_in("bob")
    first = bob.cookies["visio_session"]
    response = await sign_in(bob.http, f"{lows.base_url}/auth/login?next=/", "bob")
    assert response.status_code == 302 and bob.cookies["visio_session"] != first
    assert (await bob.api("GET", "/api/me")).json()["user"]["name"] == "Bob"
    replay = await folks.guest()
    replay.http.cookies.set("visio_session", first)
    assert (await replay.api("GET", "/api/me")).json()["user"] is None  # the old one is dead


# -- L2: idle connections are never capped or timed out ---------------------------------


@pytest.fixture(scope="module")
def tight() -> Iterator[ServerProcess]:
    """Small caps: 4 connections per address, 2 s for headers and for a join; 127.0.0.9
    is a trusted reverse proxy."""
    pair = start_server(
        idp=False,
        max_connections_per_address=4,
        http_header_timeout_s=2,
        ws_join_timeout_s=2,
        trusted_proxies=json.dumps(["127.0.0.9/32"]),
        **GENEROUS_LIMITS,
    )
    yield pair[0]
    stop_server(*pair)


async def tcp(server: ServerProcess, source: str = "127.0.0.1") -> tuple:
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the server closes the connection (or resets it) within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def test_l2_silent_connections_time_out_and_each_address_holds_a_few(tight):
    # Half-sent headers: closed after the header timeout, not kept for ever.
    reader, writer = await tcp(tight)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = asyncio.get_running_loop().time()
    assert await closed_by_server(reader, within=6)
    assert asyncio.get_running_loop().time() - started < 5
    writer.close()

    # A WebSocket that never joins: told, and closed with 4408.
    async with websockets.connect(ws_url(tight)) as silent:
        assert (await frames_until(silent, "join_timeout", timeout=6))["type"] == "error"
        assert await closed_with(silent) == 4408

    # Four connections from one address are held; the fifth is closed at once, while
    # another address still gets in.
    held = [await tcp(tight, "127.0.0.2") for _ in range(4)]
    fifth_reader, fifth_writer = await tcp(tight, "127.0.0.2")
    assert await closed_by_server(fifth_reader, within=1)
    fifth_writer.close()
    other_reader, other_writer = await tcp(tight, "127.0.0.3")
    other_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await other_reader.read()).startswith(b"HTTP/1.1 200")
    other_writer.close()
    for _, writer in held:
        writer.close()

    # Behind the trusted proxy, WebSockets count per client (X-Forwarded-For), not per proxy.
    def through_proxy(client: str):  # type: ignore[no-untyped-def]
        return websockets.connect(
            ws_url(tight),
            local_addr=("127.0.0.9", 0),
            additional_headers={"X-Forwarded-For": client},
        )

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(4):
            await stack.enter_async_context(through_proxy("198.51.100.7"))
        for n in range(4):
            await stack.enter_async_context(through_proxy(f"198.51.100.{20 + n}"))
        refused = await stack.enter_async_context(through_proxy("198.51.100.7"))
        assert (await frames_until(refused, "too_many_connections"))["type"] == "error"
        assert await closed_with(refused) == 1013


# -- L1: revoking access does not apply to people already in the meeting -----------------


async def test_l1_revoked_access_moves_out_who_entered_by_right(lows, folks):
    alice, dave, erin = [await folks.signed_in(n) for n in ("alice", "dave", "erin")]
    room = await alice.new_room()
    for email, role in (("dave@visio.test", "admin"), ("erin@visio.test", "member")):
        assert (
            await alice.api("PUT", f"/api/rooms/{room}/members/{email}", {"role": role})
        ).is_success
    clients: list[VisioClient] = []

    async def enter(name: str, person=None) -> VisioClient:  # type: ignore[no-untyped-def]
        client = VisioClient(lows.base_url, room, name, cookies=person.cookies if person else None)
        clients.append(client)
        await client.connect()
        return client

    async def revoked(client: VisioClient) -> None:
        frame = await client.wait_for(lambda f: f.get("code") == "access_revoked", 5)
        assert frame["type"] == "error" and client.auto_reconnect is False
        assert client.ws is not None
        async with asyncio.timeout(5):
            await client.ws.wait_closed()
        assert client.ws.close_code == 4003

    try:
        owner = await enter("Alice", alice)
        admin, member = await enter("Dave", dave), await enter("Erin", erin)
        guest, admitted = await enter("Gus"), await enter("Gil")
        assert admin.joined["you"]["role"] == "admin"

        # A public room made trusted: the guests inside by right leave.
        await owner.send({"type": "lock", "locked": True})
        await owner.wait_for(lambda f: f["type"] == "room" and f["room"]["locked"])
        assert (await alice.api("PATCH", f"/api/rooms/{room}", {"access": "trusted"})).is_success
        await revoked(guest)
        await revoked(admitted)
        assert guest.errors[-1]["reason"] == "trusted"
        await owner.wait_until(lambda: set(owner.participants) == {admin.id, member.id})
        assert (
            admin.ws.close_code is None and member.ws.close_code is None
        )  # a lock is no revocation

        # One a moderator lets in from the lobby stays when the access changes again.
        await owner.send({"type": "lock", "locked": False})
        again = VisioClient(lows.base_url, room, "Gil")
        clients.append(again)
        assert (await again.connect())["type"] == "lobby"
        waiting = await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
        await owner.send({"type": "admit", "id": waiting["waiting"][0]["id"]})
        await again.admitted()

        # Restricted, then the member and the admin struck off: each leaves; the owner never.
        assert (await alice.api("PATCH", f"/api/rooms/{room}", {"access": "restricted"})).is_success
        delete = await alice.api("DELETE", f"/api/rooms/{room}/members/erin@visio.test")
        assert delete.status_code == 204
        await revoked(member)
        assert member.errors[-1]["reason"] == "restricted"
        delete = await alice.api("DELETE", f"/api/rooms/{room}/members/dave@visio.test")
        assert delete.status_code == 204
        await revoked(admin)
        await owner.wait_until(lambda: set(owner.participants) == {again.id})
        assert owner.ws.close_code is None and again.ws.close_code is None

        # Coming back, the member waits in the lobby.
        back = VisioClient(lows.base_url, room, "Erin", cookies=erin.cookies)
        clients.append(back)
        assert (await back.connect())["reason"] == "restricted"

        # The owner keeps an admin out: removed, the admin waits in the lobby when back.
        assert (
            await alice.api("PUT", f"/api/rooms/{room}/members/dave@visio.test", {"role": "admin"})
        ).is_success
        admin = await enter("Dave", dave)
        await owner.send({"type": "moderate", "id": admin.id, "action": "remove"})
        await admin.wait_for(lambda f: f.get("code") == "removed")
        returning = VisioClient(lows.base_url, room, "Dave", cookies=dave.cookies)
        clients.append(returning)
        assert (await returning.connect())["reason"] == "removed"
    finally:
        for client in clients:
            await client.close()


# -- L6: information is exposed without authentication ----------------------------------


async def test_l6_a_room_tells_others_only_what_the_pre_join_screen_needs(lows, folks):
    alice, bob, erin, guest = [await folks.signed_in(n) for n in ("alice", "bob", "erin")] + [
        await folks.guest()
    ]
    restricted = await alice.new_room(name="Board", access="restricted")
    assert (
        await alice.api(
            "PUT", f"/api/rooms/{restricted}/members/erin@visio.test", {"role": "member"}
        )
    ).is_success
    assert (
        await alice.api("PATCH", f"/api/rooms/{restricted}", {"max_participants": 5})
    ).is_success
    trusted = await alice.new_room(access="trusted")

    async def seen(who, room: str) -> dict:  # type: ignore[no-untyped-def]
        response = await who.api("GET", f"/api/rooms/{room}")
        assert response.status_code == 200
        return response.json()

    for outsider in (guest, bob):
        info = await seen(outsider, restricted)
        assert info["owner"] is None and info["participants"] is None
        assert info["max_participants"] is None and info["your_role"] is None
        assert info["name"] == "Board" and info["access"] == "restricted"
        assert info["capture"] == {"transcription": False, "recording": False}  # the notice
    member = await seen(erin, restricted)
    assert member["owner"]["name"] == "Alice" and member["participants"] == 0
    assert member["max_participants"] == 5

    assert (await seen(guest, trusted))["participants"] is None  # a guest would wait
    signed_in = await seen(bob, trusted)
    assert signed_in["participants"] == 0 and signed_in["owner"] is None


# -- L13: temporary rooms are never purged ---------------------------------------------


async def test_l13_rooms_nobody_uses_are_purged_unless_permanent(lows, folks):
    alice, guest = await folks.signed_in("alice"), await folks.guest()
    ages = {  # room -> days since it was made
        await alice.new_room(): 91,  # owned, past room_retention_days (90)
        await alice.new_room(): 30,  # owned, within it
        await alice.new_room(id="l13-board"): 1000,  # permanent
        await guest.new_room(): 8,  # ownerless, past ownerless_room_retention_days (7)
        await guest.new_room(): 1,  # ownerless, within it
        await guest.new_room(): 10,  # ownerless, but a meeting was held in it just now
    }
    rooms = list(ages)
    bot = VisioClient(lows.base_url, rooms[-1], "Ann")
    await bot.connect()
    await bot.leave()
    await bot.close()

    lows.stop()
    with sqlite3.connect(lows.data_dir / "visio.db") as db:
        for room, days in ages.items():
            db.execute(
                "UPDATE rooms SET created_at = datetime('now', ?) WHERE id = ?",
                (f"-{days} days", room),
            )
    lows.start()  # the retention sweep runs at start

    async def exists(room: str) -> bool:
        return (await alice.api("GET", f"/api/rooms/{room}")).status_code == 200

    for _ in range(100):
        if not await exists(rooms[0]):
            break
        await asyncio.sleep(0.1)
    kept = [await exists(room) for room in rooms]
    assert kept == [False, True, True, False, True, True]
