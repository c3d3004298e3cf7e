"""The web app's call-quality arithmetic (visio/web/js/quality.js), run by Node.

quality.js has no DOM, so Node imports it as the browser does; each check prints JSON.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "visio" / "web" / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (test.sh installs it)")


def run(body: str) -> object:
    """Runs `body` (which ends by giving `result` a value) with quality.js imported as q."""
    script = f"""
        const q = await import({json.dumps((JS / "quality.js").as_uri())});
        let result;
        {body}
        console.log(JSON.stringify(result));
    """
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_each_measure_is_classified_by_its_thresholds():
    result = run("""
        result = {
            loss: [1, 2, 7.9, 8, 30].map((v) => q.levelOf('lossPct', v)),
            rtt: [100, 300, 699, 700].map((v) => q.levelOf('rttMs', v)),
            concealed: [0, 3, 10].map((v) => q.levelOf('concealedPct', v)),
            unknown: q.levelOf('jitterMs', null),
        };
    """)
    assert result == {
        "loss": ["good", "fair", "fair", "poor", "poor"],
        "rtt": ["good", "fair", "fair", "poor"],
        "concealed": ["good", "fair", "poor"],
        "unknown": None,
    }


def test_a_summary_is_as_bad_as_its_worst_measure_and_missing_fields_do_not_count():
    result = run("""
        result = [
            q.classify({ lossPct: 0, rttMs: 80, jitterMs: 5 }),
            q.classify({ lossPct: 0, rttMs: 400 }),
            q.classify({ lossPct: 12, rttMs: 20 }),
            q.classify({ camera: true, fps: 3 }),
            q.classify({ camera: false, fps: 3 }),   // a screen share may send few frames
            q.classify({ lossPct: null, freezePct: undefined }),
        ];
    """)
    assert result == ["good", "fair", "poor", "poor", None, None]


def test_a_track_summary_is_made_of_the_window_deltas():
    result = run("""
        const prev = { kind: 'video', packetsReceived: 1000, packetsLost: 10, bytesReceived: 1e6,
                       framesDecoded: 300, freezeCount: 1, totalFreezesDuration: 0.5 };
        const cur = { kind: 'video', packetsReceived: 1180, packetsLost: 30, bytesReceived: 1.25e6,
                      framesDecoded: 330, framesPerSecond: 15, frameWidth: 320, frameHeight: 180,
                      freezeCount: 2, totalFreezesDuration: 0.9, jitter: 0.012 };
        result = q.trackSummary(cur, prev, 2, { camera: true });
    """)
    assert result["received"] == 180 and result["lost"] == 20
    assert result["lossPct"] == pytest.approx(10.0)
    assert result["kbps"] == pytest.approx(1000.0)
    assert result["fps"] == 15 and result["width"] == 320
    assert result["freezes"] == 1 and result["freezeS"] == pytest.approx(0.4)
    assert result["freezePct"] == pytest.approx(20.0)
    assert result["jitterMs"] == pytest.approx(12.0)


def test_a_freeze_that_ends_a_pause_is_not_counted():
    # Video that was off (the tile paused, or the sender's camera off) resumes: Chromium
    # counts the whole pause as one freeze on the first frame.
    result = run("""
        const prev = { kind: 'video', packetsReceived: 10, framesDecoded: 5, freezeCount: 0,
                       totalFreezesDuration: 0 };
        const cur = { kind: 'video', packetsReceived: 200, framesDecoded: 60, freezeCount: 1,
                      totalFreezesDuration: 40 };
        const after = q.trackSummary(cur, prev, 2, { camera: true, wasFlowing: false });
        const flowing = q.trackSummary(cur, prev, 2, { camera: true, wasFlowing: true });
        result = [after.freezes ?? null, flowing.freezeS];
    """)
    assert result == [None, 2]  # and a freeze never lasts longer than the window


def test_firefox_stats_without_freeze_fields_leave_freezes_unknown():
    result = run("""
        const prev = { kind: 'video', packetsReceived: 10, framesDecoded: 5 };
        const cur = { kind: 'video', packetsReceived: 70, framesDecoded: 65, framesPerSecond: 30 };
        const s = q.trackSummary(cur, prev, 2, { camera: true });
        result = [s.freezes ?? null, s.freezePct ?? null, q.classify(s)];
    """)
    assert result == [None, None, "good"]


def test_audio_concealment_and_the_downlink_totals():
    result = run("""
        const a = q.trackSummary(
            { kind: 'audio', packetsReceived: 200, packetsLost: 0, concealedSamples: 4800,
              totalSamplesReceived: 96000, jitter: 0.02 },
            { kind: 'audio', packetsReceived: 100, packetsLost: 0, concealedSamples: 0,
              totalSamplesReceived: 0 }, 2);
        const v = { kind: 'video', camera: true, received: 300, lost: 100, fps: 10, kbps: 500,
                    freezes: 1, freezeS: 0.5 };
        const total = q.combine([a, v], 2);
        result = { concealedPct: a.concealedPct, total };
    """)
    assert result["concealedPct"] == pytest.approx(5.0)
    total = result["total"]
    assert total["lossPct"] == pytest.approx(20.0)  # 100 lost of 500
    assert total["fps"] == 10 and total["freezes"] == 1
    assert total["freezePct"] == pytest.approx(25.0)  # 0.5 s of one 2 s video window
    assert total["jitterMs"] == pytest.approx(20.0)


def test_the_indicator_worsens_at_once_and_recovers_after_two_good_samples():
    result = run("""
        const steady = new q.SteadyLevel(2);
        const levels = ['good', 'poor', 'good', 'poor', 'good', 'good', 'fair'];
        result = levels.map((l) => steady.update(l));
    """)
    assert result == ["good", "poor", "poor", "poor", "poor", "good", "fair"]


def test_the_telemetry_frame_sums_a_window_of_samples():
    result = run("""
        const w = new q.TelemetryWindow();
        const sample = (level, lost, rtt) => ({
            seconds: 2, level,
            up: { lossPct: 1, outKbps: 1500 },
            down: { rttMs: rtt, received: 100 - lost, lost, jitterMs: 10, concealed: 10,
                    samples: 1000, freezes: 1, freezeS: 0.25, fps: 30 },
        });
        w.add(sample('good', 0, 100), { layer: 'high', videoTiles: 2, step: 0 });
        w.add(sample('poor', 20, 300), { layer: 'low', videoTiles: 1, step: 2 });
        result = w.frame();
    """)
    assert result == {
        "type": "quality",
        "seconds": 4,
        "level": "poor",
        "rtt_ms": 200,
        "loss_pct": 10,
        "up_loss_pct": 1,
        "jitter_ms": 10,
        "concealed_pct": 1,
        "freezes": 2,
        "freeze_s": 0.5,
        "fps": 30,
        "layer": "low",
        "video_tiles": 1,
        "step": 2,
        "out_kbps": 1500,
    }


def test_the_cap_lowers_layers_and_keeps_one_video_or_none():
    # grid.js imports the DOM helpers, which Node lacks; cappedLayer is the same arithmetic.
    grid = (JS / "grid.js").read_text()
    start = grid.index("const LAYER_ORDER")
    end = grid.index("// Columns that give")
    result = run(
        grid[start:end].replace("export function", "function")
        + """
        result = [
            cappedLayer('high', null),
            cappedLayer('high', { maxLayer: 'medium', video: 'all' }),
            cappedLayer('low', { maxLayer: 'medium', video: 'all' }),
            cappedLayer('high', { maxLayer: 'low', video: 'one' }, { chosen: true }),
            cappedLayer('high', { maxLayer: 'low', video: 'one' }, { chosen: false }),
            cappedLayer('medium', { maxLayer: 'low', video: 'none' }),
        ];
    """
    )
    assert result == ["high", "medium", "low", "low", "off", "off"]


def governor(samples: str) -> object:
    """Feeds downlink.js' governor `samples` (a JS array of downlink summaries)."""
    return run(f"""
        const d = await import({json.dumps((JS / "downlink.js").as_uri())});
        const steps = [];
        const g = new d.DownlinkGovernor({{ onStep: (step) => steps.push(step) }});
        for (const down of {samples}) g.update(down);
        result = {{ steps, step: g.step, upAfter: g.upAfter }};
    """)


BAD = "{ received: 100, lossPct: 15, rttMs: 50 }"
SEVERE = "{ received: 100, lossPct: 60, rttMs: 50 }"
GOOD = "{ received: 100, lossPct: 0, rttMs: 50 }"


def test_video_steps_down_after_two_congested_samples_and_up_after_four_clean_ones():
    result = governor(f"[...Array(4).fill({BAD}), ...Array(8).fill({GOOD})]")
    assert result["steps"] == [1, 2, 1, 0]
    assert result["step"] == 0


def test_a_severely_congested_sample_goes_to_low_layers_at_once_then_down_each_sample():
    # A link that carries a fraction of what comes (60 % lost): no waiting for a second
    # sample, and no stop at medium layers.
    assert governor(f"[{GOOD}, {SEVERE}]")["steps"] == [2]
    assert governor(f"[{GOOD}, {SEVERE}, {SEVERE}, {SEVERE}, {SEVERE}]")["steps"] == [2, 3, 4]
    queue = "{ received: 100, lossPct: 0, rttMs: 1200 }"  # a queue a second long
    assert governor(f"[{GOOD}, {queue}]")["steps"] == [2]
    # The loss counted when the flow comes back after a dropped link is no weak link.
    silent = "{ received: 0, lossPct: null }"
    assert governor(f"[{GOOD}, {silent}, {SEVERE}, {GOOD}]")["steps"] == []
    # Back up one step at a time, as after any congestion.
    assert governor(f"[{SEVERE}, ...Array(8).fill({GOOD})]")["steps"] == [2, 1, 0]


def test_one_congested_sample_is_not_enough():
    result = governor(f"[{BAD}, {GOOD}, {BAD}, {GOOD}, {BAD}]")
    assert result["steps"] == []


def test_steps_go_down_to_audio_only_and_no_further():
    result = governor(f"Array(14).fill({BAD})")
    assert result["steps"] == [1, 2, 3, 4]


def test_a_rising_round_trip_is_congestion_too():
    queued = "{ received: 100, lossPct: 0, rttMs: 400 }"
    result = governor(f"[{GOOD}, {GOOD}, {queued}, {queued}]")
    assert result["steps"] == [1]


def test_an_up_step_that_brings_congestion_back_makes_the_next_wait_longer():
    # Down twice, up once after 4 clean samples, congested again at once: back down, and the
    # next attempt waits 8 clean samples, not 4.
    result = governor(
        f"[...Array(4).fill({BAD}), ...Array(4).fill({GOOD}), ...Array(2).fill({BAD}),"
        f" ...Array(7).fill({GOOD})]"
    )
    assert result["steps"] == [1, 2, 1, 2]
    assert result["upAfter"] == 8 and result["step"] == 2
    assert governor(
        f"[...Array(4).fill({BAD}), ...Array(4).fill({GOOD}), ...Array(2).fill({BAD}),"
        f" ...Array(8).fill({GOOD})]"
    )["steps"] == [1, 2, 1, 2, 1]


def test_freezes_without_loss_are_a_busy_cpu_not_a_congested_link():
    frozen = "{ received: 100, lossPct: 0, freezePct: 40, concealedPct: 20, rttMs: 50 }"
    frozen_and_lossy = "{ received: 100, lossPct: 1.5, freezePct: 40, rttMs: 50 }"
    assert governor(f"Array(6).fill({frozen})")["steps"] == []
    assert governor(f"Array(2).fill({frozen_and_lossy})")["steps"] == [1]


def test_nothing_received_is_not_judged():
    result = governor("Array(10).fill({ received: 0, lossPct: null })")
    assert result["steps"] == []
