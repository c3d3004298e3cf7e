"""The client→server messages of the WebSocket protocol (docs/PROTOCOL.md).

Parsing turns any frame into either a typed message or a `ProtocolError` carrying the
code and text of the error frame to send back; it never raises anything else.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

ROOM_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$"
REACTIONS = ("👍", "👏", "😂", "❤️", "🎉", "😮")
MAX_SDP = 60_000

Target = Literal["camera", "screen"]
# Control, format (bidi overrides, zero-width), separator, surrogate and private-use
# characters: a name could otherwise read as someone else's (audit M6).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def _visible(name: str) -> str:
    for i, c in enumerate(name):
        if unicodedata.category(c) in INVISIBLE_CATEGORIES and not _joins_emoji(name, i):
            raise ValueError("a name cannot hold control, direction or invisible characters")
    return " ".join(name.split())


def _joins_emoji(name: str, i: int) -> bool:
    """A zero-width joiner inside an emoji sequence (👨‍👩‍👧, 🏳️‍🌈) is part of the emoji."""
    before, after = name[i - 1 : i], name[i + 1 : i + 2]
    return (
        name[i] == "\u200d"
        and unicodedata.category(before or " ") in ("So", "Mn")
        and unicodedata.category(after or " ") == "So"
    )


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_visible),
]
Sdp = Annotated[str, StringConstraints(min_length=10, max_length=MAX_SDP)]


class ProtocolError(Exception):
    def __init__(
        self, code: str, message: str, ref: str | None = None, retry_in: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref
        self.retry_in = retry_in  # seconds, when trying again later will do

    def frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.ref is not None:
            frame["ref"] = self.ref
        if self.retry_in is not None:
            frame["retry_in"] = round(self.retry_in, 1)
        return frame


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    ref: Annotated[str, StringConstraints(max_length=64)] | None = None


class Join(Message):
    type: Literal["join"]
    room: Annotated[str, StringConstraints(pattern=ROOM_ID_PATTERN)]
    name: Name
    audio: bool = True
    video: bool = True
    resume: Annotated[str, StringConstraints(max_length=128)] | None = None


class Publish(Message):
    type: Literal["publish"]
    target: Target
    sdp: Sdp
    audio: bool = True
    video: bool = True


class Unpublish(Message):
    type: Literal["unpublish"]
    target: Target


class Answer(Message):
    type: Literal["answer"]
    sdp: Sdp


class IceCandidate(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)
    candidate: Annotated[str, StringConstraints(max_length=1024)]
    sdpMid: Annotated[str, StringConstraints(max_length=32)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=255)] | None = None


class Candidate(Message):
    type: Literal["candidate"]
    target: Literal["camera", "screen", "subscriber"]
    candidate: IceCandidate | None


class Resubscribe(Message):
    type: Literal["resubscribe"]


class RestartIce(Message):
    """A publisher's offer with new ICE credentials: its connection stopped getting through."""

    type: Literal["restart_ice"]
    target: Target
    sdp: Sdp


Quality = Literal["off", "low", "medium", "high"]


class Layer(Message):
    """The simulcast layer wanted for one received video; "off": none, for now."""

    type: Literal["layer"]
    mid: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    quality: Quality


def _bounded(high: float) -> Any:
    return Annotated[float | int, Field(ge=0, le=high, allow_inf_nan=False)] | None


class QualityReport(Message):
    """What the client measured of the call over the last `seconds` (docs/PROTOCOL.md)."""

    type: Literal["quality"]
    seconds: Annotated[float | int, Field(ge=1, le=120)]
    level: Literal["good", "fair", "poor"]
    rtt_ms: _bounded(60_000) = None
    loss_pct: _bounded(100) = None
    up_loss_pct: _bounded(100) = None
    jitter_ms: _bounded(10_000) = None
    concealed_pct: _bounded(100) = None
    freezes: Annotated[int, Field(ge=0, le=10_000)] | None = None
    freeze_s: _bounded(3600) = None
    fps: _bounded(240) = None
    layer: Quality | None = None
    video_tiles: Annotated[int, Field(ge=0, le=1000)] | None = None
    step: Annotated[int, Field(ge=0, le=4)] = 0
    out_kbps: _bounded(1_000_000) = None


class State(Message):
    type: Literal["state"]
    audio: bool | None = None
    video: bool | None = None
    hand: bool | None = None


class Chat(Message):
    type: Literal["chat"]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class Reaction(Message):
    type: Literal["reaction"]
    emoji: Literal[REACTIONS]  # type: ignore[valid-type]


class Ping(Message):
    type: Literal["ping"]


class Captions(Message):
    """Show me live captions (or stop)."""

    type: Literal["captions"]
    on: bool


class Leave(Message):
    type: Literal["leave"]


# -- moderators only ---------------------------------------------------------------------

ParticipantId = Annotated[str, StringConstraints(pattern=r"^p-[0-9a-f]{8}$")]
WaiterId = Annotated[str, StringConstraints(pattern=r"^w-[0-9a-f]{8}$")]


class _OneOrAll(Message):
    """Names one person by `id`, or everybody with `all: true`; exactly one of them."""

    all: bool = False

    @model_validator(mode="after")
    def _one_or_all(self) -> _OneOrAll:
        if self.all == (getattr(self, "id", None) is not None):
            raise ValueError("give either id or all: true")
        return self


class Admit(_OneOrAll):
    type: Literal["admit"]
    id: WaiterId | None = None


class Deny(_OneOrAll):
    type: Literal["deny"]
    id: WaiterId | None = None


class Moderate(_OneOrAll):
    type: Literal["moderate"]
    action: Literal["mute", "camera_off", "stop_screen", "remove"]
    id: ParticipantId | None = None

    @model_validator(mode="after")
    def _all_only_mutes(self) -> Moderate:
        if self.all and self.action != "mute":
            raise ValueError("all: true is only for mute")
        return self


class Lock(Message):
    type: Literal["lock"]
    locked: bool


class End(Message):
    type: Literal["end"]


class Capture(Message):
    """Start or stop transcription or recording of the meeting."""

    type: Literal["capture"]
    kind: Literal["transcription", "recording"]
    on: bool


# -- breakout rooms (visio.conference.breakout) ------------------------------------------

MAX_BREAKOUT_ROOMS = 50
BreakoutRoom = Annotated[int, Field(ge=1, le=MAX_BREAKOUT_ROOMS)]  # rooms are 1..N


class BreakoutOpen(Message):
    """Split the meeting into `count` rooms: people assigned at random, by the moderator
    (`assignments`, then `breakout_move`), or left to choose; an optional timer."""

    type: Literal["breakout_open"]
    count: BreakoutRoom
    names: Annotated[list[Name], Field(max_length=MAX_BREAKOUT_ROOMS)] = []
    assign: Literal["random", "manual", "choose"] = "manual"
    assignments: Annotated[dict[ParticipantId, BreakoutRoom], Field(max_length=1000)] = {}
    duration_s: Annotated[int, Field(ge=10, le=86_400)] | None = None

    @model_validator(mode="after")
    def _fits(self) -> BreakoutOpen:
        if self.names and len(self.names) != self.count:
            raise ValueError("names: give one name per room, or none")
        if any(room > self.count for room in self.assignments.values()):
            raise ValueError("assignments: a room number is beyond count")
        return self


class BreakoutMove(Message):
    """Move someone (`id`; oneself when left out) to a room, or back to the main room
    (`room`: null). A moderator moves anyone; others only themselves, when they may choose."""

    type: Literal["breakout_move"]
    id: ParticipantId | None = None
    room: BreakoutRoom | None


class BreakoutBroadcast(Message):
    """A moderator's message to every room."""

    type: Literal["breakout_broadcast"]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class BreakoutClose(Message):
    """Call everyone back to the main room, now or after a warning `after_s` seconds."""

    type: Literal["breakout_close"]
    after_s: Annotated[int, Field(ge=0, le=600)] = 0


# -- large meetings and webinars (visio.conference.rights): moderators only ---------------

Right = Literal["speak", "present"]  # publish the camera (and microphone); the screen


class Grant(Message):
    """Let someone speak or present in a room whose attendees may not publish (or stop)."""

    type: Literal["grant"]
    id: ParticipantId
    right: Right
    on: bool


class LowerHand(_OneOrAll):
    type: Literal["lower_hand"]
    id: ParticipantId | None = None


class Spotlight(Message):
    """Show one person large to everyone; `id: null` ends it."""

    type: Literal["spotlight"]
    id: ParticipantId | None


class Promote(Message):
    """Make someone a moderator for the rest of this meeting."""

    type: Literal["promote"]
    id: ParticipantId


class Demote(Message):
    """Take back what `promote` gave."""

    type: Literal["demote"]
    id: ParticipantId


ClientMessage = Annotated[
    Join
    | Publish
    | Unpublish
    | Answer
    | Candidate
    | Resubscribe
    | RestartIce
    | Layer
    | QualityReport
    | State
    | Chat
    | Reaction
    | Ping
    | Captions
    | Leave
    | Admit
    | Deny
    | Moderate
    | Lock
    | End
    | Capture
    | BreakoutOpen
    | BreakoutMove
    | BreakoutBroadcast
    | BreakoutClose
    | Grant
    | LowerHand
    | Spotlight
    | Promote
    | Demote,
    Field(discriminator="type"),
]
_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)
MESSAGE_TYPES = frozenset(
    (
        "join",
        "publish",
        "unpublish",
        "answer",
        "candidate",
        "resubscribe",
        "restart_ice",
        "layer",
        "quality",
        "state",
        "chat",
        "reaction",
        "ping",
        "captions",
        "leave",
        "admit",
        "deny",
        "moderate",
        "lock",
        "end",
        "capture",
        "breakout_open",
        "breakout_move",
        "breakout_broadcast",
        "breakout_close",
        "grant",
        "lower_hand",
        "spotlight",
        "promote",
        "demote",
    )
)
MODERATOR_MESSAGES = (Admit, Deny, Moderate, Lock, End, Capture)
BREAKOUT_MESSAGES = (BreakoutOpen, BreakoutMove, BreakoutBroadcast, BreakoutClose)
STAGE_MESSAGES = (Grant, LowerHand, Spotlight, Promote, Demote)


def parse(raw: str | bytes, max_bytes: int) -> Message:
    """Parse one frame; raise ProtocolError with the right code for anything wrong."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise ProtocolError("too_large", f"frame is over {max_bytes} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError("bad_json", "frame is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "frame must be a JSON object")
    ref = data.get("ref") if isinstance(data.get("ref"), str) else None
    if ref is not None and len(ref) > 64:
        ref = None
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) <= 32 else "?"
        raise ProtocolError("unknown_type", f"unknown message type {shown!r}", ref)
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        raise ProtocolError("bad_message", _describe(exc), ref) from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(p) for p in error["loc"][1:]) or "message"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def participant_id_ok(value: str) -> bool:
    return re.fullmatch(r"p-[0-9a-f]{8}", value) is not None
