"""Audit M8: a moderator switching transcription or recording on and off without end
would open recordings of every publication and rewrite the manifest each time."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Bots, People, start_server, stop_server
from visio.testing.server import ServerProcess

pytestmark = pytest.mark.integration


async def test_capture_switches_are_limited_and_say_when_to_retry(people, bots):
    owner_account = await people.signed_in("alice")
    room = await owner_account.new_room(name="Switches")
    owner = await bots.join(room, "Alice", cookies=owner_account.cookies)
    guest = await bots.join(room, "Bob")
    refused = None
    for n in range(8):
        mark, on = len(owner.frames), n % 2 == 0
        await owner.send({"type": "capture", "kind": "recording", "on": on})
        reply = await owner.wait_for(
            lambda f, on=on: (
                f["type"] == "error"
                or (f["type"] == "room" and f["room"]["capture"]["recording"] == on)
            ),
            since=mark,
        )
        if reply["type"] == "error":
            refused = reply
            break
    assert n == 6, "six switches at once, the seventh refused"
    assert refused is not None and refused["code"] == "rate_limited"
    assert refused["message"].startswith("transcription and recording switched too often")
    assert 5 <= refused["retry_in"] <= 10  # six a minute: one more every 10 s
    # Asking for the state it is already in is no switch, and is not refused.
    await owner.send({"type": "capture", "kind": "recording", "on": False})
    await owner.send({"type": "ping"})
    pong = await owner.wait_for(lambda f: f["type"] in ("pong", "error"), since=len(owner.frames))
    assert pong["type"] == "pong"
    assert not guest.errors


@pytest.fixture(scope="module")
def small_disk() -> Iterator[tuple[ServerProcess, Path]]:
    """A server whose captures_dir is a 64 MiB tmpfs that must keep 32 MiB free, and
    that records two tracks per capture at most."""
    folder = Path(tempfile.mkdtemp(prefix="visio-m8-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0777", "tmpfs", folder], check=True
    )
    try:
        pair = start_server(captures_dir=str(folder), capture_max_tracks=2, capture_min_free_mb=32)
        yield pair[0], folder
        stop_server(*pair)
    finally:
        subprocess.run(["umount", "-l", folder], check=False)
        folder.rmdir()


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


async def test_m8_captures_cap_their_tracks_keep_no_video_and_stop_on_a_full_disk(small_disk):
    server, disk = small_disk
    people, bots = People(server), Bots(server)
    try:
        alice = await people.signed_in("alice")
        room = await alice.new_room(name="Small disk")
        owner = await bots.join(room, "Alice", cookies=alice.cookies)
        others = [await bots.join(room, name) for name in ("Bob", "Carol")]
        await owner.send({"type": "capture", "kind": "transcription", "on": True})
        await owner.wait_for(
            lambda f: f["type"] == "room" and f["room"]["capture"]["transcription"]
        )

        # Three publications, two tracks recorded: the moderators are told.
        limit = await owner.wait_for(lambda f: f.get("code") == "capture_limit")
        assert "2 tracks" in limit["message"]
        capture = next(disk.iterdir())
        manifest = json.loads((capture / "manifest.json").read_text())
        assert len(manifest["tracks"]) == 2

        # Video is emptied as Janus writes it (its size drops back), the audio is kept.
        raw = capture / "raw"
        last: dict[Path, int] = {}
        emptied: set[Path] = set()
        for _ in range(100):  # up to 10 s: the guard empties them every 2 s
            for video in raw.glob("*-video-*.mjr"):
                size = video.stat().st_size
                if size < last.get(video, 0):
                    emptied.add(video)
                last[video] = size
            if len(emptied) == 2 and emptied == set(last):
                break
            await asyncio.sleep(0.1)
        assert len(last) == 2 and emptied == set(last), last
        audios = list(raw.glob("*-audio-*.mjr"))
        assert len(audios) == 2 and all(allocated(audio) > 0 for audio in audios)

        # Free space below capture_min_free_mb: the capture stops, and none starts.
        (disk / "filler").write_bytes(b"\0" * (40 * 1024 * 1024))
        stopped = await owner.wait_for(lambda f: f.get("code") == "disk_full", timeout=10)
        assert "capture stopped" in stopped["message"]
        for client in (owner, *others):
            await client.wait_for(
                lambda f: f["type"] == "room" and not f["room"]["capture"]["transcription"]
            )
        await owner.send({"type": "capture", "kind": "recording", "on": True, "ref": "r1"})
        refused = await owner.wait_for(lambda f: f.get("ref") == "r1")
        assert refused["code"] == "disk_full"
        assert "capture refused: disk space low" in server.log_path.read_text()

        # The meeting ends: no video is left for the job or for retention.
        await owner.send({"type": "end"})
        await owner.wait_for(lambda f: f["type"] == "ended")
        await asyncio.sleep(0.5)
        assert not list((capture / "raw").glob("*-video-*.mjr"))
    finally:
        await bots.close()
        await people.close()
