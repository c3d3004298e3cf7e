"""Clients' call-quality reports reach the metrics and the end-of-call log line."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from tests.integration.test_metrics import scrape, value

pytestmark = pytest.mark.integration


async def measured_report(pc: RTCPeerConnection, seconds: float) -> dict:
    """A `quality` frame from what an aiortc subscriber measured (its getStats)."""
    received = lost = 0
    jitters = []
    for stats in (await pc.getStats()).values():
        if stats.type != "inbound-rtp":
            continue
        received += stats.packetsReceived
        lost += max(0, stats.packetsLost)
        if stats.kind == "audio":
            jitters.append(stats.jitter * 1000 / 48)  # RTP timestamp units at 48 kHz, in ms
    assert received > 0
    return {
        "type": "quality",
        "seconds": seconds,
        "level": "good",
        "loss_pct": 100 * lost / (received + lost),
        "jitter_ms": max(jitters),
        "rtt_ms": 12,
        "layer": "high",
        "video_tiles": 1,
    }


async def test_a_clients_reports_reach_the_metrics_and_one_line_when_it_leaves(server, bots, room):
    _, before = scrape(server)
    alice = await bots.join(room, "Alice Quality")
    bob = await bots.join(room, "Bob")
    await alice.wait_frames(bob.id, "video", count=20)
    assert alice.subscriber is not None

    await alice.send(await measured_report(alice.subscriber, 5))
    _, text = scrape(server)
    good = 'visio_call_quality_reports_total{level="good"}'
    assert value(text, good) == value(before, good) + 1
    assert (
        value(text, "visio_call_rtt_seconds_count")
        == value(before, "visio_call_rtt_seconds_count") + 1
    )
    assert value(text, "visio_call_loss_percent_count") >= 1
    assert value(text, "visio_call_jitter_seconds_count") >= 1

    # Too soon after the previous one: refused, and not counted.
    await alice.send({"type": "quality", "seconds": 5, "level": "poor", "ref": "again"})
    refused = await alice.wait_for(lambda f: f.get("ref") == "again")
    assert refused["code"] == "rate_limited" and refused["retry_in"] > 0
    assert value(scrape(server)[1], 'visio_call_quality_reports_total{level="poor"}') == value(
        before, 'visio_call_quality_reports_total{level="poor"}'
    )

    await alice.leave()
    await bob.wait_until(lambda: alice.id not in bob.participants)
    lines = [line for line in server.log_tail(400).splitlines() if "call quality" in line]
    mine = [line for line in lines if alice.id in line]
    assert len(mine) == 1, lines
    assert "reports=1" in mine[0] or '"reports": 1' in mine[0], mine[0]
    assert "Alice" not in mine[0]  # the participant id, never the name


@pytest.mark.parametrize(
    "report",
    [
        {"seconds": 10, "level": "excellent"},
        {"seconds": 10, "level": "good", "loss_pct": 101},
        {"seconds": 10, "level": "good", "rtt_ms": -5},
        {"seconds": 0, "level": "good"},
        {"seconds": 10, "level": "good", "fps": "many"},
        {"seconds": 10, "level": "good", "step": 9},
        {"seconds": 10, "level": "good", "layer": "ultra"},
    ],
)
async def test_a_report_out_of_bounds_is_refused_with_a_clear_error(bots, room, report):
    alice = await bots.join(room, "Alice", publish=False)
    await alice.send({"type": "quality", "ref": "q", **report})
    error = await alice.wait_for(lambda f: f.get("ref") == "q")
    assert error["type"] == "error" and error["code"] == "bad_message", error


async def test_a_video_turned_off_with_layer_stops_coming_and_comes_back(bots, room):
    """`layer` `off` (the web app's step-down to fewer videos): Janus stops sending it."""
    alice = await bots.join(room, "Alice")
    bob = await bots.join(room, "Bob")
    await bob.wait_frames(alice.id, "video", count=10)
    [mid] = [
        mid
        for mid, s in bob.streams.items()
        if s["participant"] == alice.id and s["media"] == "video"
    ]

    await bob.send({"type": "layer", "mid": mid, "quality": "off"})
    await asyncio.sleep(1.0)  # what was on its way arrives
    stopped_at = bob.frames_from(alice.id, "video")
    await asyncio.sleep(2.0)
    assert bob.frames_from(alice.id, "video") - stopped_at <= 2
    assert bob.frames_from(alice.id, "audio") > 0  # the sound goes on

    await bob.send({"type": "layer", "mid": mid, "quality": "low"})
    await bob.wait_frames(alice.id, "video", count=stopped_at + 20)
    assert not [e for e in bob.errors if e.get("code") != "rate_limited"], bob.errors
