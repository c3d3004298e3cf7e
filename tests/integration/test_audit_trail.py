"""The audit trail (issue 13, part 3): each security-relevant action of the real server
writes one JSON line, with who, when, from where and what, to data_dir/audit; never what
people said or wrote, nor their display names."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.speaking import wait_for_status
from visio.client import TestPatternTrack
from visio.testing.server import as_service_user

pytestmark = pytest.mark.integration
ALICE = {"email": "alice@visio.test", "address": "127.0.0.1"}


async def audited(server, **match) -> dict:
    """The one event matching `match`, once written (within 5 s)."""
    for _ in range(100):
        if found := server.audit_events(**match):
            break
        await asyncio.sleep(0.05)
    assert len(found) == 1, (match, found)
    return found[0]


def is_recent(event: dict) -> bool:
    moment = datetime.fromisoformat(event["ts"])
    return event["ts"].endswith("Z") and datetime.now(UTC) - moment < timedelta(minutes=5)


def alice_by(event: dict) -> bool:
    return {key: event["by"].get(key) for key in ALICE} == ALICE and "user" in event["by"]


async def test_sign_in_sign_out_and_a_failed_sign_in_are_audited(server, people):
    before = len(server.audit_events(event="sign_in"))
    alice = await people.signed_in("alice")
    user = (await alice.api("GET", "/api/me")).json()["user"]["id"]
    signed_in = server.audit_events(event="sign_in")[before:]
    assert [e["outcome"] for e in signed_in] == ["success"]
    assert signed_in[0]["by"]["user"] == user and alice_by(signed_in[0])
    assert is_recent(signed_in[0]) and signed_in[0]["logger"] == "visio.audit"

    count = len(server.audit_events(event="sign_out"))
    assert (await alice.api("POST", "/auth/logout")).status_code == 204
    signed_out = server.audit_events(event="sign_out")[count:]
    assert len(signed_out) == 1 and signed_out[0]["by"]["user"] == user

    state = secrets.token_hex(8)  # a callback nobody started: a forged or replayed one
    status, _, _ = server.request("GET", f"/auth/callback?code=x&state={state}")
    assert status == 400
    failed = server.audit_events(event="sign_in", outcome="failure")[-1]
    assert failed["reason"] == "mismatching_state" and failed["by"]["address"] == "127.0.0.1"
    assert is_recent(failed)


async def test_rooms_access_and_members_changed_through_the_api_are_audited(server, people):
    alice = await people.signed_in("alice")
    room = await alice.new_room(name="Board")
    created = await audited(server, event="room_created", room=room)
    assert alice_by(created) and created["access"] == "public"

    changed = await alice.api("PATCH", f"/api/rooms/{room}", {"access": "restricted", "name": "X"})
    assert changed.status_code == 200
    change = await audited(server, event="room_changed", room=room)
    assert change["changed"] == ["access", "name"] and change["access"] == "restricted"
    assert "name" not in change and alice_by(change)  # the name is text: only that it changed

    for email, role in (("bob@visio.test", "member"), ("carol@visio.test", "admin")):
        put = await alice.api("PUT", f"/api/rooms/{room}/members/{email}", {"role": role})
        assert put.status_code == 200
        member = await audited(server, event="member_set", room=room, member=email)
        assert member["role"] == role and alice_by(member)
    gone = await alice.api("DELETE", f"/api/rooms/{room}/members/bob@visio.test")
    assert gone.status_code == 204
    removed = await audited(server, event="member_removed", room=room)
    assert removed["member"] == "bob@visio.test" and alice_by(removed)

    assert (await alice.api("DELETE", f"/api/rooms/{room}")).status_code == 204
    assert alice_by(await audited(server, event="room_deleted", room=room))

    guest = await people.guest()
    guest_room = await guest.new_room()
    by = (await audited(server, event="room_created", room=guest_room))["by"]
    assert set(by) == {"guest", "address"} and len(by["guest"]) == 16
    assert guest.cookies["visio_guest"] not in server.audit_text()  # a digest, not the cookie


def rooms_command(server, *args: str) -> subprocess.CompletedProcess[str]:
    """`visio rooms …` on the server's data, as the user the server runs as."""
    return subprocess.run(
        [sys.executable, "-m", "visio", "rooms", "--data-dir", str(server.data_dir), *args],
        env={**os.environ, "HOME": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        **as_service_user(server.data_dir),
    )


async def test_room_changes_made_with_the_rooms_command_are_audited(server):
    room = f"audit-{secrets.token_hex(4)}"
    steps = [
        ("create", "--id", room, "--access", "trusted", "--admin", "dan@visio.test"),
        ("set", room, "--access", "restricted"),
        ("members", room, "add", "eve@visio.test"),
        ("members", room, "remove", "eve@visio.test"),
        ("delete", room),
    ]
    for step in steps:
        result = rooms_command(server, *step)
        assert result.returncode == 0, result.stderr
    events = server.audit_events(room=room)
    assert [e["event"] for e in events] == [
        "room_created",
        "member_set",
        "room_changed",
        "member_set",
        "member_removed",
        "room_deleted",
    ]
    expected_user = "visio" if os.geteuid() == 0 else None
    for event in events:
        assert event["by"]["cli"] == "visio rooms"
        assert expected_user is None or event["by"]["os_user"] == expected_user
    assert events[0]["access"] == "trusted"
    assert (events[1]["member"], events[1]["role"]) == ("dan@visio.test", "admin")
    assert (events[2]["changed"], events[2]["access"]) == (["access"], "restricted")


async def test_every_moderator_action_is_audited_and_no_content_is(server, people, bots):
    chat_marker = f"chat-{secrets.token_hex(8)}"
    name_marker = f"Guestname{secrets.token_hex(4)}"
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    guest = await bots.join(room, name_marker, cookies=(await people.guest()).cookies)
    await guest.publish([TestPatternTrack()], target="screen")
    await owner.wait_frames(guest.id, "video", target="screen", count=3)
    await guest.chat_send(f"the secret plan is {chat_marker}")
    await owner.wait_for(lambda f: f["type"] == "chat" and chat_marker in f["message"]["text"])

    for action in ("mute", "camera_off", "stop_screen"):
        await owner.send({"type": "moderate", "action": action, "id": guest.id})
        await guest.wait_for(lambda f, a=action: f["type"] == "moderated" and f["action"] == a)
        event = await audited(server, event="moderated", room=room, action=action)
        assert event["by"]["participant"] == owner.id and event["by"]["role"] == "owner"
        assert alice_by(event)
        assert event["target"]["participant"] == guest.id and "guest" in event["target"]

    await owner.send({"type": "lock", "locked": True})
    await audited(server, event="meeting_locked", room=room)
    for n in (1, 2):
        await bots.join(room, f"W{n}", publish=False)
    update = await owner.wait_for(lambda f: f["type"] == "lobby_update" and len(f["waiting"]) == 2)
    first, second = (w["id"] for w in update["waiting"])
    await owner.send({"type": "admit", "id": first})
    await owner.send({"type": "deny", "id": second})
    admitted = await audited(server, event="lobby_admitted", room=room)
    denied = await audited(server, event="lobby_denied", room=room)
    assert admitted["target"]["waiter"] == first and alice_by(admitted)
    assert denied["target"]["waiter"] == second and alice_by(denied)
    await owner.send({"type": "lock", "locked": False})
    await audited(server, event="meeting_unlocked", room=room)

    await owner.send({"type": "captions", "on": True})
    await owner.wait_for(lambda f: f["type"] == "captions" and f["on"], timeout=90)
    await owner.send({"type": "captions", "on": False})
    await owner.wait_for(lambda f: f["type"] == "captions" and not f["on"])
    assert alice_by(await audited(server, event="captions_on", room=room))
    assert alice_by(await audited(server, event="captions_off", room=room))

    for on in (True, False):
        await owner.send({"type": "capture", "kind": "recording", "on": on})
        await owner.wait_for(lambda f, on=on: f["type"] == "room"
                             and f["room"]["capture"]["recording"] == on)  # fmt: skip
        await asyncio.sleep(2 if on else 0)  # Alice's microphone is recorded a while
    started = await audited(server, event="capture_started", room=room, kind="recording")
    stopped = await audited(server, event="capture_stopped", room=room, kind="recording")
    assert alice_by(started) and started["capture"] == stopped["capture"]

    await owner.send({"type": "moderate", "action": "remove", "id": guest.id})
    await guest.wait_for(lambda f: f.get("code") == "removed")
    removed = await audited(server, event="moderated", room=room, action="remove")
    assert removed["target"]["participant"] == guest.id
    await owner.send({"type": "end"})
    assert alice_by(await audited(server, event="meeting_ended", room=room))

    capture = await wait_for_status(alice, room, "done", "failed")
    assert capture["status"] == "done", capture["error"]
    (url,) = [f["url"] for f in capture["files"] if f["name"] == "recording.ogg"]
    assert (await alice.api("GET", url)).status_code == 200
    download = await audited(server, event="capture_downloaded", room=room)
    assert download["file"] == "recording.ogg" and download["capture"] == capture["id"]
    assert alice_by(download)

    trail = server.audit_text()
    assert chat_marker not in trail and name_marker not in trail and "Alice" not in trail


async def test_transcription_switches_are_audited(server, people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies, publish=False)
    for on in (True, False):
        await owner.send({"type": "capture", "kind": "transcription", "on": on})
        await owner.wait_for(lambda f, on=on: f["type"] == "room"
                             and f["room"]["capture"]["transcription"] == on)  # fmt: skip
    for event in ("capture_started", "capture_stopped"):
        assert alice_by(await audited(server, event=event, room=room, kind="transcription"))


async def test_a_lobby_opened_by_a_change_of_access_is_audited(server, people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(room, "Alice", cookies=alice.cookies, publish=False)
    await bots.join(room, "Gus", publish=False)
    update = await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    opened = await alice.api("PATCH", f"/api/rooms/{room}", {"access": "public"})
    assert opened.status_code == 200
    admitted = await audited(server, event="lobby_admitted", room=room)
    assert admitted["by"] == {} and admitted["reason"] == "rules"
    assert admitted["target"]["waiter"] == update["waiting"][0]["id"]
    assert alice_by(await audited(server, event="room_changed", room=room))
