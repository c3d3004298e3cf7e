"""A server stopped while a recorded meeting is still running ends it, queues its
transcription, and stops: it used to hang until killed (the job runner lost the cancel
that came with the wake-up, in Python 3.11's asyncio.wait_for)."""

from __future__ import annotations

import pytest

from tests.conftest import Bots, People, start_server, stop_server

pytestmark = pytest.mark.integration


async def test_a_server_stopped_during_a_recorded_meeting_stops_cleanly():
    server, idp = start_server()
    stopped = False
    people, bots = People(server), Bots(server)
    try:
        alice = await people.signed_in("alice")
        room = await alice.new_room(name="Stopped")
        owner = await bots.join(room, "Alice", cookies=alice.cookies)
        await owner.send({"type": "capture", "kind": "recording", "on": True})
        await owner.wait_for(lambda f: f["type"] == "room" and f["room"]["capture"]["recording"])
        await bots.close()
        await people.close()
        stop_server(server, idp)  # asserts a clean exit within its timeout
        stopped = True
        assert "capture queued" in server.log_path.read_text()
    finally:
        if not stopped:
            await bots.close()
            await people.close()
            server.stop()
            idp.stop()
