"""A recorded meeting becomes a video: real Janus recording, real job, real ffmpeg.

The bots publish solid colours, so that a frame of the video says whose tile is where;
they speak espeak-ng sentences in turn, and the video's sound is transcribed back.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.speaking import dialogue, normalise, say, wait_for_status
from visio.client import ColourTrack, PcmAudioTrack
from visio.speech.audio import load_audio
from visio.speech.model import resolve_model_dir
from visio.speech.recognizer import Recognizer
from visio.testing.frames import duration_of, frame_at, mean_colour
from visio.testing.speech import silence
from visio.transcripts.video import FULL_BOX, SCREEN_BOX, SIDE_BOX

pytestmark = pytest.mark.integration

RED, BLUE, GREEN = (220, 40, 40), (40, 60, 220), (40, 200, 60)


def colour_name(rgb: tuple[int, int, int]) -> str:
    """Which of the bots' colours this is (or "none": the background, a mix…)."""
    palette = {"red": RED, "blue": BLUE, "green": GREEN}
    name, known = min(palette.items(), key=lambda item: np.linalg.norm(np.subtract(item[1], rgb)))
    return name if np.linalg.norm(np.subtract(known, rgb)) < 60 else f"none {rgb}"


async def colour_bot(bots, room: str, name: str, rgb: tuple[int, int, int], **options):
    """A bot whose camera is one colour and whose microphone is silent until `say`."""
    client = await bots.join(room, name, publish=False, **options)
    microphone = PcmAudioTrack(silence(0.02), loop=True)
    await client.publish([microphone, ColourTrack(rgb)])
    return client, microphone


async def record(owner, other, **kinds: bool) -> float:
    """Switch the capture kinds on; the moment (wall clock) the capture started."""
    started = time.time()
    for kind, on in kinds.items():
        await owner.send({"type": "capture", "kind": kind, "on": on})
        await other.wait_for(lambda f, k=kind: f["type"] == "room" and f["room"]["capture"][k])
    return started


async def end_meeting(owner) -> float:
    ended = time.time()
    await owner.send({"type": "end"})
    await owner.wait_for(lambda f: f["type"] == "ended")
    return ended


async def test_a_recorded_meeting_becomes_a_video_that_follows_the_speaker(
    people, bots, server, tmp_path: Path
):
    alice = await people.signed_in("alice")
    room = await alice.new_room(name="Video review")
    lines = dialogue(tmp_path)
    owner, alice_mic = await colour_bot(bots, room, "Alice", RED, cookies=alice.cookies)
    guest, bob_mic = await colour_bot(bots, room, "Bob", BLUE)
    await owner.wait_frames(guest.id, "video", count=10)
    await guest.wait_frames(owner.id, "video", count=10)

    zero = await record(owner, guest, transcription=True, recording=True)
    await asyncio.sleep(1.0)
    middle: dict[str, float] = {}
    for key, microphone in (("a1", alice_mic), ("b1", bob_mic)):
        middle[key] = time.time() - zero + len(lines[key]) / 48_000 / 2
        await say(microphone, lines[key])
    await owner.publish([ColourTrack(GREEN, 640, 360)], target="screen")  # a third publication
    await guest.wait_frames(owner.id, "video", target="screen", count=10)
    middle["a2"] = time.time() - zero + len(lines["a2"]) / 48_000 / 2
    await say(alice_mic, lines["a2"])
    length = await end_meeting(owner) - zero

    running = await wait_for_status(alice, room, "queued", "running", "done", "failed")
    url = f"/api/captures/{running['id']}/files/recording.mp4"
    if running["status"] in ("queued", "running"):
        not_yet = await alice.api("GET", url)
        assert not_yet.status_code == 404 and not_yet.json()["detail"] == "no such file"
    capture = await wait_for_status(alice, room, "done", "failed", timeout=400)
    told = [line for line in server.log_path.read_text().splitlines() if "tracks not" in line]
    assert capture["status"] == "done" and capture["error"] is None, told
    files = {f["name"]: f for f in capture["files"]}
    assert files["recording.mp4"]["format"] == "mp4" and files["recording.mp4"]["url"] == url
    stranger, anonymous = await people.signed_in("mallory"), await people.guest()
    assert (await stranger.api("GET", url)).status_code == 403
    assert (await anonymous.api("GET", url)).status_code == 401

    download = await alice.api("GET", url)
    assert download.status_code == 200 and download.headers["content-type"] == "video/mp4"
    assert "Video%20review" in download.headers["content-disposition"]
    video = tmp_path / "meeting.mp4"
    video.write_bytes(download.content)
    streams = probe_streams(video)
    assert streams == ["h264", "aac", "mov_text"], streams  # captions from the transcript
    assert abs(duration_of(video) - length) < 2.0, (duration_of(video), length)

    # Each speaker is large while speaking; the screen share is large once on, with the
    # speaker small beside it.
    seen = {key: frame_at(video, moment) for key, moment in middle.items()}
    assert colour_name(mean_colour(seen["a1"], FULL_BOX)) == "red"
    assert colour_name(mean_colour(seen["b1"], FULL_BOX)) == "blue"
    assert colour_name(mean_colour(seen["a2"], SCREEN_BOX)) == "green"
    assert colour_name(mean_colour(seen["a2"], SIDE_BOX)) == "red"

    # Both voices are in its sound.
    recognizer = Recognizer(resolve_model_dir(None, tmp_path / "models"), threads=2)
    heard = normalise(recognizer.transcribe(load_audio(video), "en").text)
    for word in ("budget", "engineers", "summer", "proposal", "friday"):
        assert word in heard, heard


def probe_streams(video: Path) -> list[str]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(video)],
        capture_output=True, check=True, text=True,
    )  # fmt: skip
    return [s["codec_name"] for s in json.loads(probe.stdout)["streams"]]


async def test_a_damaged_track_is_left_out_and_said_and_the_video_is_still_made(
    people, bots, server, tmp_path: Path
):
    alice = await people.signed_in("alice")
    room = await alice.new_room(name="Damaged")
    owner, _ = await colour_bot(bots, room, "Alice", RED, cookies=alice.cookies)
    guest, _ = await colour_bot(bots, room, "Bob", BLUE)
    await owner.wait_frames(guest.id, "video", count=10)
    zero = await record(owner, guest, recording=True)
    await asyncio.sleep(4.0)
    capture = await wait_for_status(alice, room, "capturing")
    folder = server.data_dir / "captures" / capture["id"]
    manifest = json.loads((folder / "manifest.json").read_text())
    (bob,) = [t for t in manifest["tracks"] if t["name"] == "Bob"]
    (damaged,) = (folder / "raw").glob(f"{bob['base']}-video-*.mjr")
    with damaged.open("r+b") as handle:  # the header, and what follows, turned to noise
        handle.write(np.random.default_rng(7).bytes(4096))
    length = await end_meeting(owner) - zero

    capture = await wait_for_status(alice, room, "done", "failed", timeout=300)
    assert capture["status"] == "done", capture["error"]
    assert capture["error"] == "Some tracks could not be used: Bob's camera"
    url = {f["name"]: f["url"] for f in capture["files"]}["recording.mp4"]
    video = tmp_path / "damaged.mp4"
    video.write_bytes((await alice.api("GET", url)).content)
    assert abs(duration_of(video) - length) < 2.0
    assert colour_name(mean_colour(frame_at(video, length / 2), FULL_BOX)) == "red"
    assert "Bob's camera: " in server.log_path.read_text()  # the whole reason, for the operator
