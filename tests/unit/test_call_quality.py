"""The server side of call quality: reports summed per participant (conference/quality.py)."""

from __future__ import annotations

import pytest

from visio.conference.quality import MIN_INTERVAL_S, CallQuality
from visio.protocol import ProtocolError, QualityReport


def report(**fields) -> QualityReport:
    return QualityReport(type="quality", **{"seconds": 10, "level": "good", **fields})


def test_reports_add_up_weighted_by_their_seconds():
    call = CallQuality(started=0.0)
    call.add(report(rtt_ms=100, loss_pct=0, freezes=0, freeze_s=0, layer="high"), now=10)
    call.add(
        report(level="poor", rtt_ms=400, loss_pct=20, freezes=3, freeze_s=2, layer="low", step=2),
        now=20,
    )
    summary = call.summary()
    assert summary["reports"] == 2 and summary["measured_s"] == 20
    assert summary["good_pct"] == 50 and summary["poor_pct"] == 50 and summary["fair_pct"] == 0
    assert summary["rtt_ms"] == 250 and summary["rtt_ms_max"] == 400
    assert summary["loss_pct"] == 10 and summary["loss_pct_max"] == 20
    assert summary["freezes_per_min"] == 9  # 3 freezes in 20 s
    assert summary["video_step_max"] == 2
    assert summary["layers_s"] == {"high": 10, "low": 10}
    assert summary["jitter_ms"] is None  # never reported: unknown, not zero


def test_a_report_counts_for_no_more_time_than_has_passed():
    call = CallQuality(started=0.0)
    assert call.add(report(seconds=120), now=5) == 7  # 5 s since joining, and 2 s of slack
    assert call.add(report(seconds=120), now=15) == 12


def test_reports_sooner_than_the_minimum_interval_are_refused_and_not_counted():
    call = CallQuality(started=0.0)
    call.add(report(), now=10)
    with pytest.raises(ProtocolError) as refused:
        call.add(report(level="poor"), now=10 + MIN_INTERVAL_S / 2)
    assert refused.value.code == "rate_limited" and refused.value.retry_in
    assert call.reports == 1 and call.by_level["poor"] == 0
    call.add(report(level="poor"), now=10 + MIN_INTERVAL_S)
    assert call.reports == 2


def test_the_summary_holds_no_name_and_no_media():
    call = CallQuality(started=0.0)
    call.add(report(rtt_ms=50), now=10)
    keys = set(call.summary())
    assert not keys & {"name", "display", "address", "ip", "sdp"}
