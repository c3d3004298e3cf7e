"""Recognition slots: who is captioned when more people talk than the server can follow."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import numpy as np

from visio.captions.listener import AudioListener
from visio.captions.room import Forward, RoomCaptions
from visio.captions.speaker import Speaker
from visio.conference.breakout import Breakouts


class Reader:
    def __init__(self) -> None:
        self.id = "p-reader00"
        self.frames: list[dict] = []

    def send(self, frame: dict) -> None:
        self.frames.append(frame)


class SilentStream:
    def accept(self, samples):
        return []

    def close(self):
        return []


class CountingEngine:
    def __init__(self) -> None:
        self.opened = 0

    def open_stream(self, language=None):
        self.opened += 1
        return SilentStream()


def talk(speaker: Speaker, level: float) -> None:
    for _ in range(10):
        speaker.hear(np.full(320, level, dtype=np.float32))


def room_with(speakers: list[Speaker], slots: int) -> tuple[RoomCaptions, Reader]:
    reader = Reader()
    meeting = SimpleNamespace(participants={reader.id: reader}, room_id="team-room")
    meeting.breakouts = Breakouts(meeting)  # no breakout rooms: everyone together
    captions = RoomCaptions(meeting, CountingEngine(), slots=slots, language="en")
    captions.subscribers.add(reader.id)
    room = SimpleNamespace(up=False)  # no Janus: forwards are never stopped there
    for feed, speaker in enumerate(speakers):
        captions.forwards[feed] = Forward(
            feed, feed, AudioListener(frozenset({"127.0.0.1"}), speaker.hear), speaker, room
        )
    return captions, reader


async def test_the_loudest_talkers_get_the_slots_and_the_others_are_named():
    quiet, loud, silent = (
        Speaker("p-00000001", "Quiet", "camera"),
        Speaker("p-00000002", "Loud", "camera"),
        Speaker("p-00000003", "Silent", "camera"),
    )
    captions, reader = room_with([quiet, loud, silent], slots=1)
    talk(quiet, 0.05)
    talk(loud, 0.5)
    captions._schedule()
    assert loud.recognising and not quiet.recognising and not silent.recognising
    assert reader.frames == [
        {"type": "caption_status", "participant": "p-00000001", "name": "Quiet", "captioned": False}
    ]
    assert captions.engine.opened == 1  # the silent one costs no recognition at all

    # Loud stops talking: the slot is given back, and Quiet gets it and is told so.
    loud.voiced_at = time.monotonic() - 10
    talk(quiet, 0.05)
    captions._schedule()
    assert quiet.recognising and not loud.recognising
    assert reader.frames[-1]["captioned"] is True and reader.frames[-1]["name"] == "Quiet"
    for speaker in (quiet, loud, silent):
        thread = speaker.stop()
        if thread is not None:
            await asyncio.to_thread(thread.join, 5)
            assert not thread.is_alive()


async def test_a_screen_share_is_captioned_under_its_own_name():
    share = Speaker("p-00000001", "Ada", "screen")
    captions, reader = room_with([share], slots=2)
    talk(share, 0.3)
    captions._schedule()
    assert share.recognising and share.label == "Ada (screen)"
    captions._on_updates(
        share,
        [
            SimpleNamespace(
                utterance=0, text="slide two", final=True, start=0.0, end=1.0, language="en"
            )
        ],
    )
    assert reader.frames[-1]["name"] == "Ada (screen)" and reader.frames[-1]["final"] is True
    assert list(captions.history) == [reader.frames[-1]]
    thread = share.stop()
    await asyncio.to_thread(thread.join, 5)
