"""What an operator watches: `/metrics` in Prometheus' text format (docs/OPERATIONS.md lists
every metric).

Events are counted where they happen (joins, their latency, reconnections, errors, rooms
taken over); the state (meetings, participants, the load of each media node, captions,
queued jobs) is read when Prometheus scrapes. Metrics live in a registry of their own, so
that a test or a second app in the same process does not clash with the default one.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

JOINS = Counter(
    "visio_joins",
    "Joins handled, by outcome: joined (or resumed), lobby (waits to be let in), refused",
    ["outcome"],
    registry=REGISTRY,
)
for _outcome in ("joined", "lobby", "refused"):
    JOINS.labels(_outcome)
JOIN_SECONDS = Histogram(
    "visio_join_seconds",
    "Time from a join frame to the server's answer (joined or lobby)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
RECONNECTS = Counter(
    "visio_reconnects",
    "Participants back on a new connection within the grace (resumed)",
    registry=REGISTRY,
)
ERRORS = Counter(
    "visio_errors",
    "Error frames sent to clients, by code (docs/PROTOCOL.md)",
    ["code"],
    registry=REGISTRY,
)
LIMITED = Counter(
    "visio_limited",
    "Requests refused by a limit: kind (join, lobby, room_creation), limit (person, address, busy)",
    ["kind", "limit"],
    registry=REGISTRY,
)
ROOMS_TAKEN_OVER = Counter(
    "visio_rooms_taken_over",
    "Rooms this process took over from another (a crash or a drain)",
    registry=REGISTRY,
)
MEETINGS_MOVED = Counter(
    "visio_meetings_moved",
    "Meetings whose people moved to another media node (lost or drained)",
    registry=REGISTRY,
)
BUS_DROPPED = Gauge(
    "visio_bus_dropped_messages",
    "Messages between server processes refused (forged, malformed) since start",
    registry=REGISTRY,
)
MEETINGS = Gauge("visio_meetings", "Meetings this process holds", registry=REGISTRY)
PARTICIPANTS = Gauge(
    "visio_participants", "People in the meetings this process holds", registry=REGISTRY
)
WAITING = Gauge("visio_lobby_waiting", "People waiting in lobbies", registry=REGISTRY)
NODE_UP = Gauge("visio_node_up", "Media node reachable (1) or not", ["node"], registry=REGISTRY)
NODE_DRAINING = Gauge(
    "visio_node_draining", "Media node being drained by an operator", ["node"], registry=REGISTRY
)
NODE_STREAMS = Gauge(
    "visio_node_streams",
    "Streams a media node forwards (every server process's meetings)",
    ["node"],
    registry=REGISTRY,
)
NODE_PARTICIPANTS = Gauge(
    "visio_node_participants", "People placed on a media node", ["node"], registry=REGISTRY
)
NODE_CPU = Gauge(
    "visio_node_cpu",
    "Share of a media node's cores its Janus uses (reported by visio node)",
    ["node"],
    registry=REGISTRY,
)
CAPTION_MEETINGS = Gauge(
    "visio_caption_meetings", "Meetings with live captions on", registry=REGISTRY
)
CAPTION_FORWARDS = Gauge(
    "visio_caption_forwards", "Audio tracks forwarded to the captions engine", registry=REGISTRY
)
CAPTION_THREADS = Gauge(
    "visio_caption_threads", "Recognition threads (slots in use)", registry=REGISTRY
)
JOBS = Gauge(
    "visio_transcription_jobs", "Transcription jobs by status", ["status"], registry=REGISTRY
)


# What the clients measure of their calls (`quality` reports, visio/conference/quality.py).
QUALITY_REPORTS = Counter(
    "visio_call_quality_reports",
    "Call quality reports from clients, by the level they measured (good, fair, poor)",
    ["level"],
    registry=REGISTRY,
)
QUALITY_SECONDS = Counter(
    "visio_call_quality_seconds",
    "Seconds of calls measured by clients, by level (good, fair, poor)",
    ["level"],
    registry=REGISTRY,
)
for _level in ("good", "fair", "poor"):
    QUALITY_REPORTS.labels(_level)
    QUALITY_SECONDS.labels(_level)
VIDEO_STEP_REPORTS = Counter(
    "visio_call_video_step_reports",
    "Quality reports by how far the client stepped its received video down (0: not at all, "
    "1: medium layers, 2: low layers, 3: one video, 4: audio only)",
    ["step"],
    registry=REGISTRY,
)
CALL_RTT = Histogram(
    "visio_call_rtt_seconds",
    "Round-trip time between clients and the media server, per report",
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 2.0, 5.0),
    registry=REGISTRY,
)
CALL_LOSS = Histogram(
    "visio_call_loss_percent",
    "Packets lost on the way to clients (downlink), % per report",
    buckets=(0.1, 0.5, 1, 2, 5, 8, 15, 30, 100),
    registry=REGISTRY,
)
CALL_JITTER = Histogram(
    "visio_call_jitter_seconds",
    "Audio interarrival jitter clients measured, per report",
    buckets=(0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5),
    registry=REGISTRY,
)
CALL_CONCEALED = Histogram(
    "visio_call_concealed_percent",
    "Received audio that the decoder had to conceal (invent), % per report",
    buckets=(0.1, 0.5, 1, 3, 5, 10, 20, 50, 100),
    registry=REGISTRY,
)
CALL_FREEZES = Histogram(
    "visio_call_freezes_per_minute",
    "Received video freezes per minute, per report",
    buckets=(0, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
