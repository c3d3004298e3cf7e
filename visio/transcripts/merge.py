"""Per-track recognition into one meeting transcript, ordered on the meeting's timeline.

Each participant's track is recognised on its own, with times local to that track. Merging
shifts them onto the meeting timeline, cuts them into sentences at word timings so that
interjections interleave where they were said, orders everything by start, and joins a
speaker's consecutive sentences back together where nobody else spoke in between.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from visio.transcripts.transcript import Segment, Word, words_text

__all__ = ["DEFAULT_JOIN_GAP", "TrackText", "merge", "sentences"]

DEFAULT_JOIN_GAP = 1.5  # seconds

_SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
_CLOSERS = "\"'”’»)]"  # may follow a sentence's final mark: «He said "no."»


@dataclass(frozen=True)
class TrackText:
    """One track's recognised segments, with times local to the track."""

    speaker: str  # used for segments that carry no speaker of their own
    source: str
    offset: float  # where the track starts on the meeting timeline, in seconds
    segments: list[Segment] = field(default_factory=list)


def merge(tracks: Iterable[TrackText], join_gap: float = DEFAULT_JOIN_GAP) -> list[Segment]:
    """All tracks' speech as one list of segments on the meeting timeline, sorted by start.

    Speech from different speakers that overlaps stays in separate, overlapping segments.
    """
    parts = [
        part for track in tracks for segment in track.segments for part in _place(track, segment)
    ]
    # Stable sort: equal keys keep track and segment order, so the result is deterministic.
    parts.sort(key=lambda s: (s.start, s.end, s.speaker))
    return _join(parts, join_gap)


def sentences(segment: Segment) -> list[Segment]:
    """`segment` cut after each word that ends a sentence; without words, the segment whole.

    The outer sentences keep the segment's own bounds where those are wider than its words.
    """
    text = _normalise(segment.text)
    if not segment.words:
        return [dataclasses.replace(segment, text=text)] if text else []
    groups = _sentence_words(segment.words)
    cut = [_sentence(segment, words) for words in groups]
    if len(cut) == 1 and text:  # not cut: keep the recogniser's own text
        cut[0] = dataclasses.replace(cut[0], text=text)
    cut[0] = dataclasses.replace(cut[0], start=min(segment.start, cut[0].start))
    cut[-1] = dataclasses.replace(cut[-1], end=max(segment.end, cut[-1].end))
    return [s for s in cut if s.text]


def _sentence(segment: Segment, words: tuple[Word, ...]) -> Segment:
    start = min(w.start for w in words)
    end = max(w.end for w in words)
    return dataclasses.replace(segment, start=start, end=end, text=words_text(words), words=words)


def _place(track: TrackText, segment: Segment) -> list[Segment]:
    """`segment`'s sentences, attributed and moved onto the meeting timeline."""
    shift = track.offset
    placed = dataclasses.replace(
        segment,
        speaker=segment.speaker or track.speaker,
        source=segment.source or track.source,
        start=segment.start + shift,
        end=segment.end + shift,
        words=tuple(_shift_word(w, shift) for w in segment.words),
    )
    return sentences(placed)


def _shift_word(word: Word, shift: float) -> Word:
    return dataclasses.replace(word, start=word.start + shift, end=word.end + shift)


def _sentence_words(words: Sequence[Word]) -> list[tuple[Word, ...]]:
    groups: list[tuple[Word, ...]] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        if _ends_sentence(word.text):
            groups.append(tuple(current))
            current = []
    if current:
        groups.append(tuple(current))
    return groups


def _ends_sentence(text: str) -> bool:
    return text.strip().rstrip(_CLOSERS).endswith(_SENTENCE_ENDS)


def _join(parts: list[Segment], join_gap: float) -> list[Segment]:
    """Consecutive sentences of one speaker joined where the pause between them is short.

    `parts` is sorted by start, so neighbours have no one else's sentence begun between them.
    """
    joined: list[Segment] = []
    for part in parts:
        last = joined[-1] if joined else None
        if last is not None and _continues(last, part, join_gap):
            joined[-1] = dataclasses.replace(
                last,
                end=max(last.end, part.end),
                text=f"{last.text} {part.text}",
                words=last.words + part.words,
            )
        else:
            joined.append(part)
    return joined


def _continues(last: Segment, part: Segment, join_gap: float) -> bool:
    same = last.speaker == part.speaker and last.source == part.source
    return same and part.start - last.end < join_gap


def _normalise(text: str) -> str:
    return " ".join(text.split())
