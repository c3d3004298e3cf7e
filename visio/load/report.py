"""What a load run measured, step by step, and how it is printed (a table, or JSON)."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field

from visio.load.resources import Usage

CLIENT_SATURATED_CPU = 90.0  # % of a core: a load worker this busy paces its media late
CLIENT_SATURATED_LAG_MS = 50.0  # p95 of its event loop's lateness


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@dataclass
class Limits:
    loss_percent: float = 1.0
    join_p95_s: float = 1.0


@dataclass
class Step:
    participants: int  # joined and alive at the end of the window
    held: int  # of them, receiving media (or not meant to)
    joins: int  # attempted during the step
    join_failures: dict[str, int]
    join_p50_s: float
    join_p95_s: float
    join_max_s: float
    window_s: float
    audio_packets_per_s: float
    video_packets_per_s: float
    video_frames_per_s: float
    loss_percent: float
    audio_loss_percent: float
    video_loss_percent: float
    jitter_median_ms: float
    jitter_p95_ms: float
    errors: dict[str, int]  # clients dropped or publications down during the window
    keyframes_per_s: float
    processes: list[Usage]
    machine_busy_percent: float  # of all cores
    softirq_percent: float  # of a core: the kernel's packet work
    others_percent: float  # of a core: every process not measured (other users, the tool)
    client_lag_p95_ms: float
    janus_packets_per_core_s: float  # packets received by the clients / Janus CPU seconds
    # join phase (open, joined, offer, published, media) -> (p50, p95) s from the opening
    join_phases: dict[str, tuple[float, float]] = field(default_factory=dict)
    unhandled: dict[str, int] = field(default_factory=dict)  # in the clients' libraries
    silent: list[str] = field(default_factory=list)  # seats that receive nothing (some)
    problems: list[str] = field(default_factory=list)

    @property
    def good(self) -> bool:
        return not self.problems

    def cpu(self, role: str) -> float:
        return sum(u.cpu_percent for u in self.processes if u.role == role)

    @property
    def clients_saturated(self) -> bool:
        busiest = max((u.cpu_percent for u in self.processes if u.role == "client"), default=0)
        return busiest >= CLIENT_SATURATED_CPU or self.client_lag_p95_ms >= CLIENT_SATURATED_LAG_MS


def judge(step: Step, limits: Limits) -> None:
    """Fill `step.problems` with what makes the step's quality unacceptable."""
    if step.loss_percent > limits.loss_percent:
        step.problems.append(f"loss {step.loss_percent:.2f} % > {limits.loss_percent} %")
    if step.join_p95_s > limits.join_p95_s:
        step.problems.append(f"join p95 {step.join_p95_s:.2f} s > {limits.join_p95_s} s")
    if step.join_failures:
        step.problems.append(f"joins failed: {_codes(step.join_failures)}")
    if step.errors:
        step.problems.append(f"clients in trouble: {_codes(step.errors)}")
    if step.held < step.participants:
        step.problems.append(
            f"{step.participants - step.held} participants receive nothing "
            f"(e.g. {', '.join(step.silent[:3])})"
        )


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {code}" for code, n in Counter(counts).most_common())


@dataclass
class Report:
    scenario: str
    shape: str
    urls: list[str]
    steps: list[Step]
    stopped_because: str
    media: str

    @property
    def last_good(self) -> Step | None:
        good = [step for step in self.steps if step.good]
        return good[-1] if good else None

    def to_json(self) -> str:
        data = asdict(self)
        last = self.last_good
        data["last_good_participants"] = last.participants if last else None
        return json.dumps(data, indent=2, default=str)


def _f(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


COLUMNS = (
    "held",
    "joins",
    "join p50 s",
    "p95 s",
    "loss %",
    "audio/video loss %",
    "jitter p50/p95 ms",
    "pkt/s received",
    "janus %",
    "server %",
    "clients %",
    "janus pkt/s/core",
    "softirq %",
    "others %",
    "lag ms",
)


def _row(step: Step) -> list[str]:
    return [
        f"{step.held}/{step.participants}",
        str(step.joins),
        _f(step.join_p50_s, 2),
        _f(step.join_p95_s, 2),
        _f(step.loss_percent, 2),
        f"{_f(step.audio_loss_percent, 2)}/{_f(step.video_loss_percent, 2)}",
        f"{_f(step.jitter_median_ms)}/{_f(step.jitter_p95_ms)}",
        _f(step.audio_packets_per_s + step.video_packets_per_s, 0),
        _f(step.cpu("janus")),
        _f(step.cpu("server")),
        _f(step.cpu("client")),
        _f(step.janus_packets_per_core_s, 0),
        _f(step.softirq_percent, 0),
        _f(step.others_percent, 0),
        _f(step.client_lag_p95_ms, 0),
    ]


def table(headers: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str] | tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))

    return [line(headers), *(line(r) for r in rows)]


def render(report: Report) -> str:
    lines = [
        f"visio load — {report.scenario}: {report.shape}",
        f"target {', '.join(report.urls)}; media: {report.media}",
        "",
        *table(COLUMNS, [_row(step) for step in report.steps]),
        "",
    ]
    for number, step in enumerate(report.steps, 1):
        if not step.good:
            lines.append(f"step {number}: " + "; ".join(step.problems))
    last = report.last_good
    if last is None:
        lines.append("no step met the quality limits")
    else:
        lines += [f"last good step: {last.participants} participants held", *_detail(last)]
    if report.steps and not report.steps[-1].good:
        lines += ["the step where quality fell:", *_detail(report.steps[-1])]
    lines.append(f"stopped: {report.stopped_because}")
    return "\n".join(lines)


def _detail(step: Step) -> list[str]:
    phases = ", ".join(
        f"{name} {_f(p50, 2)}/{_f(p95, 2)}" for name, (p50, p95) in step.join_phases.items()
    )
    lines = [
        f"  {step.participants} participants, {step.held} receiving: join p95 "
        f"{_f(step.join_p95_s, 2)} s, loss {_f(step.loss_percent, 2)} %, "
        f"jitter p95 {_f(step.jitter_p95_ms)} ms",
        f"  join phases, s from the WebSocket's opening (p50/p95): {phases or '-'}",
        f"  received {_f(step.audio_packets_per_s, 0)} audio + "
        f"{_f(step.video_packets_per_s, 0)} video packets/s, {_f(step.video_frames_per_s, 0)} "
        f"video frames/s, {_f(step.keyframes_per_s, 2)} key frames sent/s",
        f"  Janus packets forwarded per second per core: {_f(step.janus_packets_per_core_s, 0)}",
    ]
    for usage in step.processes:
        lines.append(
            f"  {usage.role:6s} pid {usage.pid:<7d} CPU {_f(usage.cpu_percent):>6} % of a core, "
            f"RSS {_f(usage.rss_mib)} MiB"
        )
    lines.append(
        f"  machine busy {_f(step.machine_busy_percent)} % of all cores: kernel packet work "
        f"(softirq) {_f(step.softirq_percent)} % of a core, unmeasured processes "
        f"{_f(step.others_percent)} %; load clients' loop lateness p95 "
        f"{_f(step.client_lag_p95_ms)} ms"
    )
    if step.unhandled:
        lines.append(f"  exceptions nothing handled in the load clients: {_codes(step.unhandled)}")
    if step.clients_saturated:
        lines.append("  WARNING: the load clients were saturated: the limit may be theirs")
    return lines


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
