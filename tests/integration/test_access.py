"""Sign-in, rooms that belong to people, access levels and the lobby, with the real parts.

People sign in through the real OpenID Connect provider of the test harness; their bots
carry the session cookie a browser would.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import QUICK_LOBBY_TIMEOUT_S, Bots, People
from visio.client import PcmAudioTrack, TestPatternTrack, VisioError

pytestmark = pytest.mark.integration


# -- sign-in and sessions -------------------------------------------------------------------


async def test_sign_in_gives_a_session_that_sign_out_ends(people):
    alice = await people.signed_in("alice")
    me = (await alice.api("GET", "/api/me")).json()
    assert me["user"]["name"] == "Alice"
    assert me["user"]["email"] == "alice@visio.test"
    assert me["sign_in"] is True
    session = alice.cookies["visio_session"]

    assert (await alice.api("POST", "/auth/logout")).status_code == 204
    assert (await alice.api("GET", "/api/me")).json()["user"] is None

    replay = await people.guest()
    replay.http.cookies.set("visio_session", session)
    assert (await replay.api("GET", "/api/me")).json()["user"] is None  # a dead token


async def test_session_cookie_is_http_only(server, idp):
    import httpx

    from visio.testing.idp import sign_in

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        response = await sign_in(http, f"{server.base_url}/auth/login?next=/abc-defg-hij", "bob")
        assert response.headers["location"] == "/abc-defg-hij"
        cookie = next(h for h in response.headers.get_list("set-cookie") if "visio_session" in h)
        assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


async def test_sign_in_never_redirects_to_another_site(server, people):
    import httpx

    from visio.testing.idp import sign_in

    async with httpx.AsyncClient(base_url=server.base_url) as http:
        start = f"{server.base_url}/auth/login?next=//evil.example/x"
        response = await sign_in(http, start, "mallory")
        assert response.headers["location"] == "/"


async def test_a_callback_without_a_login_in_progress_is_refused(server):
    status, payload, _ = server.request("GET", "/auth/callback?code=x&state=y")
    assert status == 400 and "sign-in failed" in payload["detail"]


async def test_state_changes_need_the_csrf_token(people):
    alice = await people.signed_in("alice")
    no_header = await alice.http.post("/api/rooms", json={})
    assert no_header.status_code == 403 and "CSRF" in no_header.json()["detail"]
    wrong = await alice.http.post("/api/rooms", json={}, headers={"X-CSRF-Token": "x" * 32})
    assert wrong.status_code == 403
    assert (await alice.api("POST", "/api/rooms", {})).status_code == 201


async def test_a_page_of_another_site_cannot_open_the_websocket(server, room):
    from visio.client import VisioClient

    client = VisioClient(server.base_url, room, "X", headers={"Origin": "https://evil.example"})
    with pytest.raises(Exception, match="403"):
        await client.connect()
    await client.close()


# -- rooms and who may change them -------------------------------------------------------


async def test_rooms_belong_to_who_created_them(people):
    alice, bob, guest = (
        await people.signed_in("alice"),
        await people.signed_in("bob"),
        await people.guest(),
    )
    room = await alice.new_room(name="Team weekly", access="trusted")
    info = (await alice.api("GET", f"/api/rooms/{room}")).json()
    assert info["owner"]["name"] == "Alice" and info["your_role"] == "owner"
    assert info["access"] == "trusted"
    assert room in [r["id"] for r in (await alice.api("GET", "/api/rooms")).json()]
    assert room not in [r["id"] for r in (await bob.api("GET", "/api/rooms")).json()]
    assert (await guest.api("GET", "/api/rooms")).status_code == 401

    for who, status in ((bob, 403), (guest, 401)):
        assert (await who.api("PATCH", f"/api/rooms/{room}", {"access": "public"})).status_code == (
            status
        )
        assert (await who.api("DELETE", f"/api/rooms/{room}")).status_code == status
        put = await who.api("PUT", f"/api/rooms/{room}/members/x@visio.test", {"role": "admin"})
        assert put.status_code == status
        assert (await who.api("GET", f"/api/rooms/{room}/members")).status_code == status
        assert (await who.api("GET", f"/api/rooms/{room}/participants")).status_code == status
    assert (await alice.api("GET", f"/api/rooms/{room}")).json()["access"] == "trusted"
    assert (await alice.api("GET", f"/api/rooms/{room}/members")).json() == []


async def test_admins_manage_members_but_only_the_owner_names_admins(people):
    alice, dave = await people.signed_in("alice"), await people.signed_in("dave")
    room = await alice.new_room()
    put = await alice.api("PUT", f"/api/rooms/{room}/members/dave@visio.test", {"role": "admin"})
    assert put.status_code == 200
    assert (await dave.api("GET", f"/api/rooms/{room}")).json()["your_role"] == "admin"
    assert (await dave.api("PATCH", f"/api/rooms/{room}", {"access": "restricted"})).is_success
    member = await dave.api("PUT", f"/api/rooms/{room}/members/erin@visio.test", {"role": "member"})
    assert member.status_code == 200
    promote = await dave.api("PUT", f"/api/rooms/{room}/members/erin@visio.test", {"role": "admin"})
    assert promote.status_code == 403
    assert (await dave.api("DELETE", f"/api/rooms/{room}")).status_code == 403
    assert (
        await dave.api("DELETE", f"/api/rooms/{room}/members/erin@visio.test")
    ).status_code == 204
    assert (await alice.api("DELETE", f"/api/rooms/{room}")).status_code == 204
    assert (await alice.api("GET", f"/api/rooms/{room}")).status_code == 404


async def test_guests_cannot_name_rooms_or_restrict_them(people):
    guest = await people.guest()
    assert (await guest.api("POST", "/api/rooms", {"id": "my-own-room"})).status_code == 401
    assert (await guest.api("POST", "/api/rooms", {"access": "trusted"})).status_code == 401
    created = await guest.api("POST", "/api/rooms", {})
    assert created.status_code == 201 and created.json()["owner"] is None


async def test_a_named_room_is_unique(people):
    alice = await people.signed_in("alice")
    name = f"team-{id(people) % 100000}"
    assert (await alice.api("POST", "/api/rooms", {"id": name})).status_code == 201
    assert (await alice.api("POST", "/api/rooms", {"id": name})).status_code == 409


# -- the lobby ---------------------------------------------------------------------------


async def wait_lobby(client, count: int):
    return await client.wait_for(
        lambda f: f["type"] == "lobby_update" and len(f["waiting"]) == count
    )


async def test_a_guest_waits_for_the_owner_of_a_trusted_room(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(room, "ignored", cookies=alice.cookies)
    assert owner.joined["you"]["name"] == "Alice"  # the provider's name, not the typed one
    assert owner.joined["you"]["role"] == "owner" and not owner.joined["you"]["guest"]
    await owner.chat_send("before the guest")
    await owner.wait_until(lambda: [m["text"] for m in owner.chat] == ["before the guest"])

    guest = await bots.join(room, "Gus")
    waiting = guest.frames[-1]
    assert waiting["type"] == "lobby" and waiting["reason"] == "trusted"
    update = await wait_lobby(owner, 1)
    assert update["waiting"][0]["name"] == "Gus" and update["waiting"][0]["guest"] is True

    # While waiting: no participants, no chat, no media; and nothing else is allowed.
    await guest.send({"type": "chat", "text": "let me in"})
    await guest.send({"type": "admit", "all": True})
    await guest.wait_until(lambda: len(guest.errors) == 2)
    assert {e["code"] for e in guest.errors} == {"not_joined"}
    assert [f["type"] for f in guest.frames] == ["lobby", "error", "error"]
    assert [m["text"] for m in owner.chat] == ["before the guest"]  # nothing from the guest

    await owner.send({"type": "admit", "id": update["waiting"][0]["id"]})
    joined = await guest.admitted()
    assert joined["you"]["guest"] is True
    assert joined["chat"] == []  # said before they were let in: not theirs (audit L5)
    await guest.publish([PcmAudioTrack(), TestPatternTrack()])
    await guest.wait_frames(owner.id, "video", count=5)
    await owner.wait_frames(guest.id, "video", count=5)
    await wait_lobby(owner, 0)


async def test_a_denied_guest_is_told_and_let_go(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    guest = await bots.join(room, "Gus")
    update = await wait_lobby(owner, 1)
    await owner.send({"type": "deny", "id": update["waiting"][0]["id"]})
    with pytest.raises(VisioError) as refused:
        await guest.admitted()
    assert refused.value.code == "denied"
    await wait_lobby(owner, 0)
    assert len(owner.participants) == 0


async def test_a_request_nobody_answers_expires(quick_lobby_server):
    people, bots = People(quick_lobby_server), Bots(quick_lobby_server)
    try:
        alice = await people.signed_in("alice")
        room = await alice.new_room(access="trusted")
        guest = await bots.join(room, "Gus")  # nobody is there to answer
        assert guest.frames[-1]["expires_in"] == QUICK_LOBBY_TIMEOUT_S
        with pytest.raises(VisioError) as expired:
            await guest.admitted(timeout=QUICK_LOBBY_TIMEOUT_S + 10)
    finally:
        await bots.close()
        await people.close()
    assert expired.value.code == "lobby_expired"


async def test_restricted_rooms_let_in_members_only(people, bots):
    alice, bob, carol = (
        await people.signed_in("alice"),
        await people.signed_in("bob"),
        await people.signed_in("carol"),
    )
    room = await alice.new_room(access="restricted")
    await alice.api("PUT", f"/api/rooms/{room}/members/carol@visio.test", {"role": "member"})
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    member = await bots.join(room, "Carol", cookies=carol.cookies)
    assert member.joined["you"]["role"] == "participant"
    outsider = await bots.join(room, "Bob", cookies=bob.cookies)
    waiting = dict(outsider.frames[-1])
    assert len(waiting.pop("resume")) >= 32  # keeps their place if their connection drops
    assert waiting == {
        "type": "lobby",
        "room": {
            "id": room,
            "name": room,
            "capture": {"transcription": False, "recording": False},
        },
        "reason": "restricted",
        "expires_in": 10,
    }
    update = await wait_lobby(owner, 1)
    assert update["waiting"][0]["guest"] is False

    # Making Bob a member while he waits lets him in at once.
    await alice.api("PUT", f"/api/rooms/{room}/members/bob@visio.test", {"role": "member"})
    await outsider.admitted()


async def test_opening_the_room_lets_the_waiting_in(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    guest = await bots.join(room, "Gus")
    await wait_lobby(owner, 1)
    response = await alice.api("PATCH", f"/api/rooms/{room}", {"access": "public"})
    assert response.json()["access"] == "public"
    await guest.admitted()
    changed = await owner.wait_for(lambda f: f["type"] == "room")
    assert changed["room"]["access"] == "public"


async def test_an_admin_of_the_room_moderates_too(people, bots):
    alice, dave = await people.signed_in("alice"), await people.signed_in("dave")
    room = await alice.new_room(access="trusted")
    await alice.api("PUT", f"/api/rooms/{room}/members/dave@visio.test", {"role": "admin"})
    admin = await bots.join(room, "Dave", cookies=dave.cookies)
    assert admin.joined["you"]["role"] == "admin"
    guest = await bots.join(room, "Gus")
    await wait_lobby(admin, 1)
    await admin.send({"type": "admit", "all": True})
    await guest.admitted()


async def test_a_guest_cannot_get_in_with_someone_elses_resume_token(people, bots, server):
    from visio.client import VisioClient

    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    thief = VisioClient(server.base_url, room, "Thief")
    bots.clients.append(thief)
    await thief._open(resume=owner.joined["resume"])
    first = await thief.wait_for(lambda f: f["type"] in ("joined", "lobby", "error"))
    assert first["type"] == "lobby"
    await asyncio.sleep(0.3)
    assert owner.ws is not None and not owner.errors  # the owner was not replaced
    forged = VisioClient(server.base_url, room, "Forger", cookies={"visio_session": "f" * 43})
    bots.clients.append(forged)
    assert (await forged.connect())["type"] == "lobby"
