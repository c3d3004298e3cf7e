"""Breakout rooms with real bots and Janus: media and chat stay inside each room, a
moderator's broadcast reaches every room, a visit, the call back, the timer, and nobody
but moderators may run them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.integration.speaking import say, sentence, speaking_bot
from visio.client import PcmAudioTrack, TestPatternTrack

pytestmark = pytest.mark.integration


async def flows(receiver, sender, media: str = "video", seconds: float = 1.0) -> bool:
    """Frames of `sender` keep reaching `receiver` (not only what was already on its way)."""
    before = receiver.frames_from(sender.id, media)
    await asyncio.sleep(seconds)
    return receiver.frames_from(sender.id, media) > before + 5


async def stopped(receiver, sender, media: str = "video") -> bool:
    """Nothing of `sender` reaches `receiver` any more (after a moment for what was sent)."""
    await asyncio.sleep(0.5)
    before = receiver.frames_from(sender.id, media)
    await asyncio.sleep(1.0)
    return receiver.frames_from(sender.id, media) == before


async def owner_and_four(people, bots, publish: bool = True):
    """Alice owns the room; four guests are in it; everyone sees everyone when publishing."""
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies, publish=publish)
    guests = []
    for name in ("Ana", "Ben", "Cleo", "Dan"):
        guest = await people.guest()
        guests.append(await bots.join(room, name, cookies=guest.cookies, publish=publish))
    if publish:
        for viewer in (owner, *guests):
            for other in (owner, *guests):
                if other is not viewer:
                    await viewer.wait_frames(other.id, "video", count=3, timeout=30)
    return owner, guests


def chat_texts(client) -> list[str]:
    return [m["text"] for m in client.chat]


async def test_rooms_by_hand_keep_media_and_chat_inside_and_come_back(people, bots):
    owner, (ana, ben, cleo, dan) = await owner_and_four(people, bots)
    await owner.breakout_open(
        2, assignments={ana.id: 1, ben.id: 1, cleo.id: 2, dan.id: 2}, names=["North", "South"]
    )
    for bot, room in ((ana, 1), (ben, 1), (cleo, 2), (dan, 2)):
        await bot.wait_in_room(room)
    moved = await ana.wait_for(lambda f: f["type"] == "moved")
    assert moved["room"] == 1 and moved["name"] == "North" and moved["by"]["id"] == owner.id
    assert owner.breakout_room is None and owner.breakout["where"] == {
        ana.id: 1,
        ben.id: 1,
        cleo.id: 2,
        dan.id: 2,
    }

    # Media: each hears and sees its own room only; the moderator, alone, nobody.
    assert await flows(ana, ben) and await flows(ana, ben, "audio")
    assert await flows(cleo, dan) and await flows(dan, cleo, "audio")
    for receiver, sender in ((ana, cleo), (ana, dan), (cleo, ben), (owner, ana), (ana, owner)):
        assert await stopped(receiver, sender), f"{receiver.name} still gets {sender.name}"
        assert await stopped(receiver, sender, "audio")

    # Chat: within the room.
    await ana.chat_send("north only")
    await ben.wait_until(lambda: "north only" in chat_texts(ben))
    await cleo.chat_send("south only")
    await dan.wait_until(lambda: "south only" in chat_texts(dan))
    await asyncio.sleep(0.5)
    assert "north only" not in chat_texts(cleo) + chat_texts(dan) + chat_texts(owner)
    assert "south only" not in chat_texts(ana) + chat_texts(ben) + chat_texts(owner)

    # Reactions too.
    await ana.send({"type": "reaction", "emoji": "👏"})
    await ben.wait_for(lambda f: f["type"] == "reaction" and f["from"] == ana.id)
    await asyncio.sleep(0.3)
    assert not [f for f in cleo.frames + owner.frames if f["type"] == "reaction"]

    # A broadcast reaches every room (and the main room).
    await owner.breakout_broadcast("five minutes left")
    for bot in (owner, ana, ben, cleo, dan):
        await bot.wait_until(lambda b=bot: "five minutes left" in chat_texts(b))
    assert next(m for m in ana.chat if m["text"] == "five minutes left")["everywhere"] is True

    # The moderator visits the south room: sees and hears it, and its chat history.
    await owner.breakout_move(2)
    await owner.wait_in_room(2)
    assert "south only" in chat_texts(owner) and "north only" not in chat_texts(owner)
    await owner.wait_frames(cleo.id, "video", count=owner.frames_from(cleo.id) + 5, timeout=20)
    assert await flows(dan, owner, "audio")
    assert await stopped(owner, ana)

    # Everyone back: media flows between former rooms again.
    await owner.breakout_close()
    for bot in (owner, ana, ben, cleo, dan):
        await bot.wait_in_room(None)
        await bot.wait_until(lambda b=bot: b.breakout is None)
    await ana.wait_frames(cleo.id, "video", count=ana.frames_from(cleo.id) + 5, timeout=20)
    assert await flows(ben, dan, "audio") and await flows(dan, owner) and await flows(owner, ana)
    assert "north only" not in chat_texts(cleo)  # back in the main room's chat
    assert "five minutes left" in chat_texts(cleo)


async def test_random_choice_and_timer(people, bots):
    owner, guests = await owner_and_four(people, bots, publish=False)
    ana, ben, cleo, dan = guests

    await owner.breakout_open(2, assign="random")
    for bot in guests:
        await bot.wait_until(lambda b=bot: b.breakout_room is not None)
    counts = [sum(b.breakout_room == room for b in guests) for room in (1, 2)]
    assert counts == [2, 2] and owner.breakout_room is None  # moderators stay

    # Assigned rooms: a participant may not pick one.
    await ana.breakout_move(3 - ana.breakout_room, ref="pick")
    error = await ana.wait_for(lambda f: f.get("ref") == "pick")
    assert error["code"] == "forbidden"
    # The moderator moves someone by hand.
    await owner.breakout_move(1, participant=dan.id)
    await dan.wait_in_room(1)
    await owner.breakout_close()
    for bot in guests:
        await bot.wait_in_room(None)

    # Let people choose, with a timer: a warning, then everyone is called back.
    await owner.breakout_open(3, assign="choose", duration_s=10)
    await ben.wait_until(lambda: ben.breakout is not None and ben.breakout["choose"])
    assert ben.breakout_room is None and ben.breakout["ends_at"] is not None
    await ben.breakout_move(3)
    await cleo.breakout_move(2)
    await ben.wait_in_room(3)
    await cleo.wait_in_room(2)
    warning = await ben.wait_for(lambda f: f["type"] == "breakout_closing", timeout=12)
    assert warning["in_s"] == 5
    await ben.wait_in_room(None, timeout=10)
    await cleo.wait_in_room(None, timeout=5)
    await owner.wait_until(lambda: owner.breakout is None)


async def test_only_moderators_run_breakout_rooms(people, bots):
    owner, (ana, ben, _, _) = await owner_and_four(people, bots, publish=False)
    attacks = [
        {"type": "breakout_open", "count": 2, "assign": "random"},
        {"type": "breakout_broadcast", "text": "hello all"},
        {"type": "breakout_close"},
        {"type": "breakout_move", "id": ben.id, "room": 1},
    ]
    for request in attacks:
        await ana.send({**request, "ref": "attack"})
    await ana.wait_until(lambda: sum(e.get("ref") == "attack" for e in ana.errors) == 4)
    codes = [e["code"] for e in ana.errors if e.get("ref") == "attack"]
    # Opening, broadcasting and closing are refused as forbidden; moving someone else too.
    assert codes == ["forbidden"] * 4
    assert not [f for f in ben.frames if f["type"] in ("breakout", "moved")]

    # Rooms open: still refused, and a participant's own move only when choosing is on.
    await owner.breakout_open(2, assignments={ana.id: 1})
    await ana.wait_in_room(1)
    for request in attacks[1:]:
        await ana.send({**request, "ref": "again"})
    await ana.wait_until(lambda: sum(e.get("ref") == "again" for e in ana.errors) == 3)
    assert {e["code"] for e in ana.errors if e.get("ref") == "again"} == {"forbidden"}
    assert ben.breakout_room is None and owner.breakout is not None
    # Bad frames are told, not obeyed.
    await owner.send({"type": "breakout_move", "id": ben.id, "room": 7, "ref": "far"})
    assert (await owner.wait_for(lambda f: f.get("ref") == "far"))["code"] == "not_found"
    await owner.send({"type": "breakout_open", "count": 0, "ref": "zero"})
    assert (await owner.wait_for(lambda f: f.get("ref") == "zero"))["code"] == "bad_message"
    await owner.send({"type": "breakout_open", "count": 2, "ref": "twice"})
    assert (await owner.wait_for(lambda f: f.get("ref") == "twice"))["code"] == "breakout_open"


def tracks_of(folder: Path, participant: str) -> list[str]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return [t["base"] for t in manifest["tracks"] if t["participant"] == participant]


def audio_size(folder: Path, base: str) -> int:
    return sum(f.stat().st_size for f in (folder / "raw").glob(f"{base}*audio*.mjr"))


async def test_a_capture_records_the_main_room_only(server, people, bots):
    owner, (ana, ben, _, _) = await owner_and_four(people, bots, publish=False)
    for bot in (ana, ben):
        await bot.publish([PcmAudioTrack(), TestPatternTrack()])
    await owner.wait_frames(ben.id, "audio")
    await owner.send({"type": "capture", "kind": "transcription", "on": True})
    await owner.wait_for(lambda f: f["type"] == "room" and f["room"]["capture"]["transcription"])
    captures = Path(server.data_dir) / "captures"
    folder = next(m.parent for m in captures.glob("*/manifest.json") if ana.id in m.read_text())

    await owner.breakout_open(2, assignments={ana.id: 1})
    await ana.wait_in_room(1)
    await asyncio.sleep(1.0)  # Janus closes the file
    (first,) = tracks_of(folder, ana.id)
    (ben_track,) = tracks_of(folder, ben.id)
    sizes = audio_size(folder, first), audio_size(folder, ben_track)
    await asyncio.sleep(2.0)
    assert audio_size(folder, first) == sizes[0], "recorded in a breakout room"
    assert audio_size(folder, ben_track) > sizes[1], "the main room is still recorded"

    await owner.breakout_close()  # back in the main room: a new track of the same capture
    await ana.wait_in_room(None)
    for _ in range(100):
        if len(tracks_of(folder, ana.id)) == 2:
            break
        await asyncio.sleep(0.1)
    again = tracks_of(folder, ana.id)[1]
    await asyncio.sleep(2.0)
    assert audio_size(folder, again) > 0


async def test_the_lobby_waits_for_the_main_room(people, bots):
    alice = await people.signed_in("alice")
    room = await alice.new_room(access="trusted")
    owner = await bots.join(room, "Alice", cookies=alice.cookies, publish=False)
    bob = await bots.join(room, "Bob", cookies=(await people.signed_in("bob")).cookies)
    await owner.breakout_open(2, assignments={bob.id: 2})
    await bob.wait_in_room(2)
    await owner.breakout_move(1)  # visiting a room, the moderator still sees the lobby
    await owner.wait_in_room(1)
    guest = await bots.join(room, "Gus", publish=False)
    assert guest.frames[-1]["type"] == "lobby"
    update = await owner.wait_for(lambda f: f["type"] == "lobby_update" and f["waiting"])
    await owner.send({"type": "admit", "id": update["waiting"][0]["id"]})
    joined = await guest.admitted()
    assert guest.breakout_room is None and joined["breakout"]["where"] == {
        bob.id: 2,
        owner.id: 1,
    }
    await bob.chat_send("room 2 again")
    await owner.breakout_move(None)
    await owner.wait_in_room(None)
    await owner.chat_send("welcome to the main room")
    await guest.wait_until(lambda: [m["text"] for m in guest.chat] == ["welcome to the main room"])


async def test_live_captions_stay_in_the_speakers_room(people, bots, tmp_path):
    alice = await people.signed_in("alice")
    room = await alice.new_room()
    owner = await bots.join(room, "Alice", cookies=alice.cookies, publish=False)
    ada, mic = await speaking_bot(bots, room, "Ada")
    near = await bots.join(room, "Near", publish=False)
    far = await bots.join(room, "Far", publish=False)
    await owner.breakout_open(2, assignments={ada.id: 1, near.id: 1, far.id: 2})
    for bot, number in ((ada, 1), (near, 1), (far, 2)):
        await bot.wait_in_room(number)
    for reader in (near, far):
        await reader.send({"type": "captions", "on": True})
        await reader.wait_for(lambda f: f["type"] == "captions" and f["on"], timeout=60)
    await near.wait_frames(ada.id, "audio", count=10)
    await asyncio.sleep(1.0)  # the forward of Ada's audio is set up

    await say(mic, sentence("The new library opens on Monday morning.", tmp_path))
    final = await near.wait_for(lambda f: f["type"] == "caption" and f["final"], timeout=30)
    assert final["participant"] == ada.id and "library" in final["text"].lower()
    assert not [f for f in far.frames if f["type"] in ("caption", "caption_status")]
    # Turned on later in room 2, the history holds nothing of room 1 either.
    mark = len(far.frames)
    await far.send({"type": "captions", "on": False})
    await far.send({"type": "captions", "on": True})
    answer = await far.wait_for(lambda f: f["type"] == "captions" and f["on"], since=mark)
    assert answer["history"] == []
