"""A recognised word with its timing, shared by transcripts and captions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Word:
    start: float  # seconds
    end: float
    text: str
    probability: float = 1.0
