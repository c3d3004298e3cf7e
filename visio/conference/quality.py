"""Call quality as the clients measure it: their `quality` reports, in metrics and one line.

Each client sends what it measured over the last few seconds (loss, RTT, jitter, audio
concealment, video freezes, the layer received: `visio.protocol.QualityReport`). Every
report feeds the Prometheus histograms at once; each participant's reports add up, and when
they leave (or the meeting ends) one `call quality` log line sums up their call. Nothing in
it identifies a person beyond the participant id and the room: no name, no address, no
media (docs/OPERATIONS.md, "Call quality").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from visio import metrics
from visio.protocol import ProtocolError, QualityReport

MIN_INTERVAL_S = 4.0  # clients report every 10 s; sooner than this is refused
SLACK_S = 2.0  # a report counts for no more time than has passed since the previous one
LEVELS = ("good", "fair", "poor")


@dataclass
class CallQuality:
    """The quality reports of one participant, summed up."""

    started: float = field(default_factory=time.monotonic)
    last: float | None = None  # when the last report came
    reports: int = 0
    seconds: float = 0.0
    by_level: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEVELS, 0.0))
    sums: dict[str, float] = field(default_factory=dict)  # measure -> sum of value * seconds
    weights: dict[str, float] = field(default_factory=dict)  # measure -> seconds it was known
    worst: dict[str, float] = field(default_factory=dict)
    freezes: int = 0
    freeze_s: float = 0.0
    step_max: int = 0
    layers: dict[str, float] = field(default_factory=dict)  # best layer received -> seconds

    def add(self, report: QualityReport, now: float | None = None) -> float:
        """Counts a report; returns the seconds it counted for. Raises ProtocolError when it
        comes sooner than MIN_INTERVAL_S after the previous one."""
        now = time.monotonic() if now is None else now
        since = now - (self.last if self.last is not None else self.started)
        if self.last is not None and since < MIN_INTERVAL_S:
            raise ProtocolError(
                "rate_limited", "quality reports come every few seconds", retry_in=MIN_INTERVAL_S
            )
        self.last = now
        seconds = float(min(report.seconds, since + SLACK_S))
        self.reports += 1
        self.seconds += seconds
        self.by_level[report.level] += seconds
        for name in ("rtt_ms", "loss_pct", "up_loss_pct", "jitter_ms", "concealed_pct", "fps"):
            value = getattr(report, name)
            if value is None:
                continue
            self.sums[name] = self.sums.get(name, 0.0) + value * seconds
            self.weights[name] = self.weights.get(name, 0.0) + seconds
            self.worst[name] = max(self.worst.get(name, value), value)
        if report.freezes is not None:
            self.freezes += report.freezes
            self.freeze_s += report.freeze_s or 0.0
        self.step_max = max(self.step_max, report.step)
        if report.layer is not None:
            self.layers[report.layer] = self.layers.get(report.layer, 0.0) + seconds
        return seconds

    def mean(self, name: str) -> float | None:
        weight = self.weights.get(name, 0.0)
        return self.sums[name] / weight if weight else None

    def summary(self) -> dict[str, Any]:
        """The fields of the end-of-call line."""
        minutes = self.seconds / 60
        shares = {
            f"{level}_pct": round(100 * s / self.seconds, 1) if self.seconds else None
            for level, s in self.by_level.items()
        }
        return {
            "reports": self.reports,
            "measured_s": round(self.seconds),
            **shares,
            "rtt_ms": _round(self.mean("rtt_ms")),
            "rtt_ms_max": _round(self.worst.get("rtt_ms")),
            "loss_pct": _round(self.mean("loss_pct"), 2),
            "loss_pct_max": _round(self.worst.get("loss_pct"), 2),
            "up_loss_pct": _round(self.mean("up_loss_pct"), 2),
            "jitter_ms": _round(self.mean("jitter_ms"), 1),
            "concealed_pct": _round(self.mean("concealed_pct"), 2),
            "freezes_per_min": round(self.freezes / minutes, 2) if minutes else None,
            "frozen_s": round(self.freeze_s, 1),
            "fps": _round(self.mean("fps"), 1),
            "video_step_max": self.step_max,
            "layers_s": {layer: round(s) for layer, s in sorted(self.layers.items())},
        }


def _round(value: float | None, digits: int = 0) -> float | None:
    if value is None:
        return None
    return round(value, digits) if digits else float(round(value))


def observe(report: QualityReport, seconds: float) -> None:
    """One report into the metrics (docs/OPERATIONS.md lists them)."""
    metrics.QUALITY_REPORTS.labels(report.level).inc()
    metrics.QUALITY_SECONDS.labels(report.level).inc(seconds)
    metrics.VIDEO_STEP_REPORTS.labels(str(report.step)).inc()
    if report.rtt_ms is not None:
        metrics.CALL_RTT.observe(report.rtt_ms / 1000)
    if report.loss_pct is not None:
        metrics.CALL_LOSS.observe(report.loss_pct)
    if report.jitter_ms is not None:
        metrics.CALL_JITTER.observe(report.jitter_ms / 1000)
    if report.concealed_pct is not None:
        metrics.CALL_CONCEALED.observe(report.concealed_pct)
    if report.freezes is not None and seconds > 0:
        metrics.CALL_FREEZES.observe(report.freezes * 60 / seconds)
