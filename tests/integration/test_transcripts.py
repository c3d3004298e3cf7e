"""Meeting transcripts end to end: real Janus recording, real job, real Whisper."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jiwer
import pytest

from tests.integration.speaking import (
    ALICE_1,
    ALICE_2,
    BOB_1,
    dialogue,
    normalise,
    say,
    speaking_bot,
    wait_for_status,
)
from visio.speech.audio import SAMPLE_RATE, load_audio

pytestmark = pytest.mark.integration


async def test_two_speakers_are_transcribed_in_order(people, bots, tmp_path: Path):
    alice = await people.signed_in("alice")
    room = await alice.new_room(name="Budget review")
    lines = dialogue(tmp_path)
    owner, alice_mic = await speaking_bot(bots, room, "Alice", cookies=alice.cookies)
    guest, bob_mic = await speaking_bot(bots, room, "Bob")
    await owner.wait_frames(guest.id, "audio", count=10)
    await guest.wait_frames(owner.id, "audio", count=10)

    await owner.send({"type": "capture", "kind": "transcription", "on": True})
    told = await guest.wait_for(
        lambda f: f["type"] == "room" and f["room"]["capture"]["transcription"]
    )
    assert told["room"]["capture"] == {"transcription": True, "recording": False}
    await owner.send({"type": "capture", "kind": "recording", "on": True})
    await guest.wait_for(lambda f: f["type"] == "room" and f["room"]["capture"]["recording"])
    before_entering = (await people.guest()).http
    shown = (await before_entering.get(f"/api/rooms/{room}")).json()
    assert shown["capture"] == {"transcription": True, "recording": True}  # pre-join says so

    await asyncio.sleep(0.5)
    await say(alice_mic, lines["a1"])
    await say(bob_mic, lines["b1"])
    await say(alice_mic, lines["a2"])
    await owner.send({"type": "end"})
    await owner.wait_for(lambda f: f["type"] == "ended")

    capture = await wait_for_status(alice, room, "done", "failed")
    assert capture["status"] == "done", capture["error"]
    files = {f["name"]: f["url"] for f in capture["files"]}
    assert set(files) == {
        "transcript.json",
        "transcript.vtt",
        "transcript.srt",
        "transcript.md",
        "transcript.docx",
        "recording.ogg",
    }
    transcript = json.loads((await alice.api("GET", files["transcript.json"])).text)
    said = [(s["speaker"], s["text"]) for s in transcript["segments"]]
    speakers = [speaker for speaker, _ in said]
    assert [s for i, s in enumerate(speakers) if i == 0 or s != speakers[i - 1]] == [
        "Alice",
        "Bob (guest)",  # Bob is not signed in: his name is his word only
        "Alice",
    ], said
    by_turn = {"Alice": [], "Bob (guest)": []}
    for speaker, text in said:
        by_turn[speaker].append(text)
    reference = normalise(f"{ALICE_1} {BOB_1} {ALICE_2}")
    heard = normalise(" ".join(text for _, text in said))
    assert jiwer.wer(reference, heard) < 0.15, heard
    assert transcript["language"] == "en"
    vtt = (await alice.api("GET", files["transcript.vtt"])).text
    assert vtt.startswith("WEBVTT") and "<v Bob (guest)>" in vtt

    recording = await alice.api("GET", files["recording.ogg"])
    assert recording.headers["content-type"] == "audio/ogg"
    assert "Budget%20review" in recording.headers["content-disposition"]
    (tmp_path / "meeting.ogg").write_bytes(recording.content)
    mixed = load_audio(tmp_path / "meeting.ogg")
    spoken = sum(len(line) for line in lines.values()) / 48_000
    assert len(mixed) / SAMPLE_RATE > spoken  # everyone, in turn, on one timeline
    stranger, guest_person = await people.signed_in("mallory"), await people.guest()
    assert (await stranger.api("GET", files["transcript.json"])).status_code == 403
    assert (await guest_person.api("GET", files["recording.ogg"])).status_code == 401
    listing = await stranger.api("GET", f"/api/rooms/{room}/captures")
    assert listing.status_code == 403
