"""Live captions with real media: Janus forwards each speaker's audio to the server,
which recognises it as they speak and sends captions to those who asked for them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import jiwer
import pytest

from tests.integration.janus_api import videoroom
from tests.integration.speaking import normalise, sentence, speaking_bot
from visio.janus.videoroom import list_forwarders

pytestmark = pytest.mark.integration

LINE = "The new library opens on Monday morning and everyone in the town is welcome to visit it."
ANSWER = "Good, I will bring the children after school."


async def janus_forwarders(server) -> int:
    """How many RTP forwarders the server's Janus runs, in every room (Janus' own API)."""
    async with videoroom(server) as handle:
        rooms = await handle.request({"request": "list", "admin_key": server.admin_key})
        count = 0
        for room in rooms.get("list", []):
            forwarders = await list_forwarders(handle, room["room"], server.admin_key)
            count += sum(len(streams) for streams in forwarders.values())
    return count


async def left_behind(server, wait: float = 5.0) -> dict:
    """The server's captions state once it settles (a last utterance may still decode)."""
    deadline = time.monotonic() + wait
    while True:
        captions = server.get("/healthz")[1]["captions"]
        if not any(captions.values()) or time.monotonic() > deadline:
            return captions
        await asyncio.sleep(0.2)


async def speak_now(track, samples) -> float:
    """Start playing; return the monotonic time the speech ends."""
    track.play(samples, loop=False)
    return time.monotonic() + len(samples) / 48_000


def finals(client, speaker_id: str | None = None) -> list[dict]:
    return [
        f
        for f in client.frames
        if f["type"] == "caption"
        and f["final"]
        and (speaker_id is None or f["participant"] == speaker_id)
    ]


async def test_a_speaker_is_captioned_live_and_captions_stop_cleanly(bots, room, tmp_path):
    speaker, mic = await speaking_bot(bots, room, "Ada")
    reader = await bots.join(room, "Reader", publish=False)
    await reader.wait_frames(speaker.id, "audio", count=10)
    await reader.send({"type": "captions", "on": True})
    await reader.wait_for(lambda f: f["type"] == "captions" and f["on"], timeout=60)
    await asyncio.sleep(1.0)  # forwards are set up once captions are on
    assert await janus_forwarders(bots.server) >= 1

    ended_at = await speak_now(mic, sentence(LINE, tmp_path))
    final = await reader.wait_for(
        lambda f: f["type"] == "caption" and f["final"] and f["participant"] == speaker.id,
        timeout=30,
    )
    latency = time.monotonic() - ended_at
    partials = [
        f
        for f in reader.frames
        if f["type"] == "caption" and not f["final"] and f["id"] == final["id"]
    ]
    assert partials, "no partial caption before the final one"
    assert final["name"] == "Ada (guest)"  # a bot is a guest: its name is its word only
    assert jiwer.wer(normalise(LINE), normalise(final["text"])) < 0.20, final["text"]
    assert latency < 3.0, f"final caption {latency:.2f} s after the end of speech"

    await reader.send({"type": "captions", "on": False})
    await reader.wait_for(lambda f: f["type"] == "captions" and not f["on"])
    assert await janus_forwarders(bots.server) == 0  # stopped before the reply went out
    await reader.send({"type": "captions", "on": True})
    await reader.wait_for(lambda f: f["type"] == "captions" and f["on"], since=len(reader.frames))
    await asyncio.sleep(1.0)
    assert await janus_forwarders(bots.server) >= 1
    await bots.clients[0].leave()  # the speaker goes, then the meeting ends
    await reader.leave()
    assert await left_behind(bots.server) == {"meetings": 0, "forwards": 0, "threads": 0}
    assert await janus_forwarders(bots.server) == 0
    assert not written_down(bots.server.data_dir, final["text"].strip())  # docs/SECURITY.md


def written_down(data_dir: Path, text: str) -> list[Path]:
    """Files of the server (its logs, audit trail, database, Janus') holding `text`."""
    return [
        path
        for path in data_dir.rglob("*")
        if path.is_file() and "models" not in path.parts and text.encode() in path.read_bytes()
    ]


async def test_two_speakers_in_turn_are_kept_apart(bots, room, tmp_path):
    ada, ada_mic = await speaking_bot(bots, room, "Ada")
    bob, bob_mic = await speaking_bot(bots, room, "Bob")
    reader = await bots.join(room, "Reader", publish=False)
    for other in (ada, bob):
        await reader.wait_frames(other.id, "audio", count=10)
    await reader.send({"type": "captions", "on": True})
    await reader.wait_for(lambda f: f["type"] == "captions" and f["on"], timeout=60)
    await asyncio.sleep(1.0)

    ends = await speak_now(ada_mic, sentence(LINE, tmp_path))
    await asyncio.sleep(ends - time.monotonic() + 1.0)
    await speak_now(bob_mic, sentence(ANSWER, tmp_path, voice="en-gb"))
    await reader.wait_until(lambda: finals(reader, bob.id), timeout=30)
    heard_ada = " ".join(f["text"] for f in finals(reader, ada.id))
    heard_bob = " ".join(f["text"] for f in finals(reader, bob.id))
    assert "library" in heard_ada.lower() and "children" not in heard_ada.lower()
    assert "children" in heard_bob.lower() and "library" not in heard_bob.lower()
    assert {f["name"] for f in finals(reader)} == {"Ada (guest)", "Bob (guest)"}

    late = await bots.join(room, "Late", publish=False)
    await late.send({"type": "captions", "on": True})
    history = await late.wait_for(lambda f: f["type"] == "captions" and f["on"])
    assert history["history"] == []  # all said before they joined (audit L5)
    with contextlib.suppress(Exception):
        await reader.leave()


async def test_l5_captions_are_announced_follow_the_room_policy_and_history_starts_at_join(
    bots, people, tmp_path
):
    alice, bob, carol = [await people.signed_in(n) for n in ("alice", "bob", "carol")]
    room = await alice.new_room(access="trusted")
    changed = await alice.api("PATCH", f"/api/rooms/{room}", {"captions": "moderators"})
    assert changed.json()["captions"] == "moderators"
    owner = await bots.join(room, "Alice", publish=False, cookies=alice.cookies)
    speaker, mic = await speaking_bot(bots, room, "Bob", cookies=bob.cookies)
    assert owner.joined["room"]["captions"] is False
    await owner.chat_send("before the guest")

    guest = await bots.join(room, "Gus", publish=False)
    waiting = await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    await owner.send({"type": "admit", "id": waiting["waiting"][0]["id"]})
    assert (await guest.admitted())["chat"] == []  # said before they were let in

    # Only a host starts captions in this room; everyone is told they are on.
    await guest.send({"type": "captions", "on": True})
    refused = await guest.wait_for(lambda f: f["type"] == "error")
    assert refused["code"] == "forbidden"
    await owner.wait_frames(speaker.id, "audio", count=10)
    await owner.send({"type": "captions", "on": True})
    await owner.wait_for(lambda f: f["type"] == "captions" and f["on"], timeout=60)
    for client in (guest, speaker):
        await client.wait_for(lambda f: f["type"] == "room" and f["room"]["captions"])
    announced = len(speaker.frames)
    await guest.send({"type": "captions", "on": True})  # following them is anyone's
    await guest.wait_for(lambda f: f["type"] == "captions" and f["on"])
    await asyncio.sleep(1.0)

    await speak_now(mic, sentence(LINE, tmp_path))
    final = await owner.wait_for(lambda f: f["type"] == "caption" and f["final"], timeout=30)
    late = await bots.join(room, "Carol", publish=False, cookies=carol.cookies)
    assert late.joined["room"]["captions"] is True
    assert [m["text"] for m in late.joined["chat"]] == ["before the guest"]  # by right: kept
    await late.send({"type": "captions", "on": True})
    answer = await late.wait_for(lambda f: f["type"] == "captions" and f["on"])
    assert answer["history"] == []  # said before Carol joined
    await guest.send({"type": "captions", "on": True})
    again = await guest.wait_for(
        lambda f: f["type"] == "captions" and f["on"], since=len(guest.frames)
    )
    assert final["id"] in [f["id"] for f in again["history"]]  # said while Gus was there

    for client in (owner, guest, late):
        await client.send({"type": "captions", "on": False})
    await speaker.wait_for(
        lambda f: f["type"] == "room" and not f["room"]["captions"], timeout=10, since=announced
    )
