"""Bots that speak known sentences into a meeting, and waiting for what becomes of it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jiwer
import numpy as np
import pytest

from visio.client import PcmAudioTrack
from visio.testing.speech import pcm48k, silence, speak


def normalise(text: str) -> str:
    """Lower case without punctuation, for word error rates."""
    return jiwer.RemovePunctuation()(text.lower()).strip()


def sentence(text: str, folder: Path, voice: str = "en-us") -> np.ndarray:
    """espeak-ng speech as 48 kHz samples, cached per text and voice in the folder."""
    path = folder / f"{abs(hash((text, voice)))}.wav"
    if not path.exists():
        speak(text, path, voice=voice)
    return pcm48k(path)


# Three turns, Alice, Bob (another voice), Alice, that Whisper base hears word for word
# from espeak-ng; each long enough for its words to be heard back.
ALICE_1 = "Let us look at the budget for next year."
BOB_1 = "We should hire engineers before the summer."
ALICE_2 = "Please send me the proposal by Friday."


def dialogue(folder: Path) -> dict[str, np.ndarray]:
    """The three turns as speech: a1, b1, a2."""
    return {
        "a1": sentence(ALICE_1, folder),
        "b1": sentence(BOB_1, folder, voice="en-gb"),
        "a2": sentence(ALICE_2, folder),
    }


async def speaking_bot(bots, room: str, name: str, **options):
    """A bot that publishes a silent microphone; `say` makes it speak."""
    client = await bots.join(room, name, publish=False, **options)
    track = PcmAudioTrack(silence(0.02), loop=True)
    await client.publish([track])
    return client, track


async def say(track: PcmAudioTrack, samples: np.ndarray, gap: float = 1.0) -> None:
    track.play(samples, loop=False)
    await asyncio.sleep(len(samples) / 48_000 + gap)


async def latest_capture(person, room: str) -> dict:
    response = await person.api("GET", f"/api/rooms/{room}/captures")
    assert response.status_code == 200, response.text
    captures = response.json()
    assert captures, "no capture listed"
    return captures[0]


async def wait_for_status(person, room: str, *statuses: str, timeout: float = 180) -> dict:
    """The room's newest capture once its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            capture = await latest_capture(person, room)
            if capture["status"] in statuses:
                return capture
        except AssertionError:
            capture = None
        if time.monotonic() > deadline:
            pytest.fail(f"capture not {statuses} after {timeout} s: {capture}")
        await asyncio.sleep(0.1)
