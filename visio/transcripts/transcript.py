"""A transcript: ordered segments, each said by one speaker, with word timings.

Times are seconds from the start of the capture (the meeting's timeline).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from visio.speech.words import Word

__all__ = ["Segment", "Transcript", "Word", "words_text"]


@dataclass(frozen=True)
class Segment:
    speaker: str
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    source: str = ""  # the track it came from (a participant's microphone or screen)


@dataclass
class Transcript:
    title: str
    language: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    started_at: str = ""  # ISO 8601 wall-clock time of the timeline's zero, if known

    @property
    def speakers(self) -> list[str]:
        """Speakers in order of first appearance."""
        return list(dict.fromkeys(segment.speaker for segment in self.segments))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["speakers"] = self.speakers
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        segments = [
            Segment(
                speaker=s["speaker"],
                start=float(s["start"]),
                end=float(s["end"]),
                text=s["text"],
                words=tuple(Word(**w) for w in s.get("words", ())),
                source=s.get("source", ""),
            )
            for s in data.get("segments", [])
        ]
        return cls(
            title=data.get("title", ""),
            language=data.get("language", ""),
            duration=float(data.get("duration", 0.0)),
            segments=segments,
            started_at=data.get("started_at", ""),
        )


def words_text(words: Sequence[Word]) -> str:
    """The words as one line of text, whitespace collapsed."""
    texts = [word.text for word in words]
    # Whisper's words carry their own leading space (" world", "'s" has none): keep its joins.
    glue = "" if any(text[:1].isspace() for text in texts[1:]) else " "
    return " ".join(glue.join(texts).split())
