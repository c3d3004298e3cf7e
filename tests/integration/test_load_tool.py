"""The load tool against the real server and Janus: packets counted, nothing decoded."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import psutil
import pytest

from visio.load.client import LoadClient, Role
from visio.load.media import ALWAYS_TALKING, TalkSchedule, encode_media
from visio.load.report import render
from visio.load.run import Plan, run
from visio.load.scenarios import MeetingShape

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def media():
    return encode_media(video_seconds=2.0, speech_seconds=1.0)


def janus_pid(server) -> int:
    children = psutil.Process(server.process.pid).children(recursive=True)
    return next(child.pid for child in children if child.name() == "janus")


async def test_clients_count_packets_and_decode_nothing(server, room, media):
    publisher = LoadClient(
        server.base_url, room, "Speaker", Role(True, True, ALWAYS_TALKING), media
    )
    listeners = [
        LoadClient(
            server.base_url,
            room,
            f"Listener {i}",
            Role(False, True, TalkSchedule(1, 2, 1e9)),
            media,
        )
        for i in range(2)
    ]
    try:
        await publisher.join(15, expect_media=False)
        for listener in listeners:
            await listener.join(15, expect_media=True)
            assert 0 < listener.join_time < 5
        await asyncio.sleep(3)
        now = time.monotonic()
        for listener in listeners:
            video, audio = listener.totals("video"), listener.totals("audio")
            assert video.frames > 30 and video.packets >= video.frames  # ~15 fps
            assert audio.packets > 100  # the speaker's 50/s (and the other's DTX)
            assert video.lost == audio.lost == 0
            assert listener.receiving(now) and not listener.errors
            assert all(0 <= j < 50 for j in listener.jitters_ms(now))
            # nearly all of them on the fast path, at the socket
            at_socket = sum(counter.at_socket for counter in listener.counters.values())
            assert at_socket > 0.9 * (video.packets + audio.packets)
        # aiortc decodes in one thread per track, named after the kind: none may run.
        decoders = [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]
        assert decoders == []
        assert publisher.video_track is not None and publisher.video_track.keyframes_sent >= 1
    finally:
        for client in (publisher, *listeners):
            await client.leave()


async def test_a_newcomer_on_a_reused_m_line_is_counted(server, room, media):
    """Janus gives the m-line of someone who left to the next one, with a new SSRC; with
    two audio m-lines its payload type does not tell aiortc where it belongs."""
    quiet = TalkSchedule(1 - int(time.time() // 1e9) % 2, 2, 1e9)  # silent for the test
    listener = LoadClient(server.base_url, room, "Listener", Role(False, False, quiet), media)
    stayer = LoadClient(server.base_url, room, "Stayer", Role(True, True, quiet), media)
    talkers = [
        LoadClient(server.base_url, room, f"Talker {i}", Role(False, True, ALWAYS_TALKING), media)
        for i in range(2)
    ]
    try:
        await stayer.join(15, expect_media=False)
        await listener.join(15, expect_media=True)
        await talkers[0].join(15, expect_media=True)
        await asyncio.sleep(1)
        await talkers[0].leave()
        await talkers[1].join(15, expect_media=True)
        await asyncio.sleep(1)  # the listener's subscription is updated
        before = listener.totals("audio").packets
        await asyncio.sleep(2)
        assert listener.totals("audio").packets - before > 80  # 50/s from the newcomer
    finally:
        for client in (listener, stayer, *talkers):
            await client.leave()


async def test_a_short_run_reports_every_figure(server):
    plan = Plan(
        urls=[server.base_url],
        scenario="small",
        participants=3,
        shape=MeetingShape(size=3, cameras=1, turn_s=2.0),
        hold_s=4.0,
        settle_s=1.0,
        workers=2,
        max_seconds=60,
        server_pids=[server.process.pid],
        janus_pids=[janus_pid(server)],
    )
    report = await run(plan, progress=lambda line: None)

    assert report.stopped_because == "fixed run done", render(report)
    (step,) = report.steps
    assert (step.participants, step.held, step.joins, step.join_failures) == (3, 3, 3, {})
    assert 0 < step.join_p50_s <= step.join_p95_s < 5
    assert list(step.join_phases) == ["open", "joined", "offer", "published", "media"]
    assert step.join_phases["joined"][1] <= step.join_phases["media"][1] == step.join_p95_s
    assert step.loss_percent < 5 and step.errors == {}
    # 2 receivers of the one camera, 15 fps each; audio: a talker at 50/s, DTX otherwise
    assert 20 < step.video_frames_per_s < 40
    assert step.audio_packets_per_s > 40
    assert 0 <= step.jitter_median_ms <= step.jitter_p95_ms < 100
    roles = sorted(usage.role for usage in step.processes)
    assert roles == ["client", "client", "janus", "server"]
    assert all(usage.rss_mib > 1 and usage.cpu_percent >= 0 for usage in step.processes)
    assert step.cpu("janus") > 0 and step.janus_packets_per_core_s > 0
    assert report.last_good is step
    text = render(report)
    assert "last good step: 3 participants held" in text
    assert '"last_good_participants": 3' in report.to_json()


async def test_the_command_line_runs_and_writes_json(server, tmp_path):
    report = tmp_path / "load.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "visio",
        "load",
        "--url",
        server.base_url,
        "--participants",
        "3",
        "--meeting-size",
        "3",
        "--hold",
        "2",
        "--settle",
        "1",
        "--server-pid",
        str(server.process.pid),
        "--json",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert "last good step: 3 participants held" in out.decode()
    data = json.loads(report.read_text())
    assert data["last_good_participants"] == 3
    assert data["steps"][0]["processes"][0]["role"] == "server"
