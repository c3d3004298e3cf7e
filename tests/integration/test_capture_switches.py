"""Audit M8: a moderator switching transcription or recording on and off without end
would open recordings of every publication and rewrite the manifest each time."""

from __future__ import annotations

import pytest

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
