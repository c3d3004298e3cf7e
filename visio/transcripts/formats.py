"""A transcript written out as JSON, WebVTT, SRT, Markdown and DOCX."""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import docx

from visio.transcripts.transcript import Segment, Transcript, Word, words_text

__all__ = [
    "FORMAT",
    "MAX_CUE_CHARS",
    "MAX_CUE_SECONDS",
    "Cue",
    "cues",
    "to_docx",
    "to_json",
    "to_markdown",
    "to_srt",
    "to_webvtt",
    "write_all",
]

FORMAT = "visio-transcript/1"
# Subtitle readability: about two lines of 42 characters, on screen for a few seconds.
MAX_CUE_SECONDS = 7.0
MAX_CUE_CHARS = 84


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    speaker: str
    text: str


def to_json(transcript: Transcript) -> str:
    data = {"format": FORMAT, **transcript.to_dict()}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def to_webvtt(transcript: Transcript) -> str:
    blocks = ["WEBVTT"]
    for number, cue in enumerate(cues(transcript), 1):
        timing = f"{_clock(cue.start)} --> {_clock(cue.end)}"
        blocks.append(f"{number}\n{timing}\n<v {_vtt_escape(cue.speaker)}>{_vtt_escape(cue.text)}")
    return "\n\n".join(blocks) + "\n"


def to_srt(transcript: Transcript) -> str:
    blocks = []
    for number, cue in enumerate(cues(transcript), 1):
        timing = f"{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}"
        blocks.append(f"{number}\n{timing}\n{_one_line(cue.speaker)}: {cue.text}\n")
    return "\n".join(blocks)


def to_markdown(transcript: Transcript) -> str:
    lines = [f"# {_md_escape(transcript.title or 'Transcript')}", ""]
    lines += [f"- **{label}:** {_md_escape(value)}" for label, value in _metadata(transcript)]
    for segment in transcript.segments:
        stamp = _seconds_clock(segment.start)
        speaker = _md_escape(segment.speaker)
        lines += ["", f"**[{stamp}] {speaker}** — {_md_escape(_one_line(segment.text))}"]
    return "\n".join(lines) + "\n"


def to_docx(transcript: Transcript, path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = _xml_safe(transcript.title)
    document.core_properties.language = _xml_safe(transcript.language)
    document.add_heading(_xml_safe(transcript.title or "Transcript"), level=0)
    table = document.add_table(rows=0, cols=2)
    table.style = "Table Grid"
    for label, value in _metadata(transcript):
        cells = table.add_row().cells
        cells[0].text = label
        cells[1].text = _xml_safe(value)
    for segment in transcript.segments:
        paragraph = document.add_paragraph()
        paragraph.add_run(_xml_safe(segment.speaker)).bold = True
        paragraph.add_run(f"  {_seconds_clock(segment.start)}").italic = True
        paragraph.add_run().add_break()
        paragraph.add_run(_xml_safe(_one_line(segment.text)))
    document.save(str(path))


def write_all(transcript: Transcript, folder: Path, stem: str = "transcript") -> dict[str, Path]:
    """Every format, each file replaced atomically; the paths by extension."""
    folder.mkdir(parents=True, exist_ok=True)
    renderers = {"json": to_json, "vtt": to_webvtt, "srt": to_srt, "md": to_markdown}
    writers: dict[str, Callable[[Path], object]] = {
        extension: _bytes_writer(render(transcript).encode())
        for extension, render in renderers.items()
    }
    writers["docx"] = lambda path: to_docx(transcript, path)
    return {
        extension: _replace(folder / f"{stem}.{extension}", write)
        for extension, write in writers.items()
    }


def cues(
    transcript: Transcript,
    max_seconds: float = MAX_CUE_SECONDS,
    max_chars: int = MAX_CUE_CHARS,
) -> list[Cue]:
    """Subtitle cues, in order of start: a long segment becomes several, cut between words."""
    found = [cue for s in transcript.segments for cue in _segment_cues(s, max_seconds, max_chars)]
    return sorted(found, key=lambda cue: cue.start)


def _segment_cues(segment: Segment, max_seconds: float, max_chars: int) -> list[Cue]:
    text = _one_line(segment.text)
    end = max(segment.start, segment.end)
    if not text:
        return []
    if end - segment.start <= max_seconds and len(text) <= max_chars:
        return [Cue(segment.start, end, segment.speaker, text)]
    if segment.words:
        return _cues_by_words(segment, max_seconds, max_chars)
    return _cues_by_characters(segment, max_seconds, max_chars)


def _cues_by_words(segment: Segment, max_seconds: float, max_chars: int) -> list[Cue]:
    groups: list[list[Word]] = [[]]
    for word in segment.words:
        if groups[-1] and _overflows([*groups[-1], word], max_seconds, max_chars):
            groups.append([])
        groups[-1].append(word)
    found = [Cue(g[0].start, g[-1].end, segment.speaker, words_text(g)) for g in groups]
    found[0] = replace(found[0], start=min(segment.start, found[0].start))
    found[-1] = replace(found[-1], end=max(segment.end, found[-1].end))
    return [cue for cue in found if cue.text]


def _overflows(words: list[Word], max_seconds: float, max_chars: int) -> bool:
    return words[-1].end - words[0].start > max_seconds or len(words_text(words)) > max_chars


def _cues_by_characters(segment: Segment, max_seconds: float, max_chars: int) -> list[Cue]:
    """Without word timings: even lines of text, timed in proportion to their length."""
    text = _one_line(segment.text)
    duration = max(0.0, segment.end - segment.start)
    count = max(math.ceil(duration / max_seconds), math.ceil(len(text) / max_chars), 1)
    lines = _wrap(text, min(max_chars, math.ceil(len(text) / count)))
    total = sum(len(line) for line in lines)
    found, done = [], 0
    for line in lines:
        start = segment.start + duration * done / total
        done += len(line)
        found.append(Cue(start, segment.start + duration * done / total, segment.speaker, line))
    return found


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def _metadata(transcript: Transcript) -> list[tuple[str, str]]:
    rows = []
    if transcript.started_at:
        rows.append(("Date", _date(transcript.started_at)))
    if transcript.language:
        rows.append(("Language", transcript.language))
    rows.append(("Duration", _seconds_clock(transcript.duration)))
    rows.append(("Speakers", ", ".join(transcript.speakers)))
    return rows


def _date(started_at: str) -> str:
    try:
        when = datetime.fromisoformat(started_at)
    except ValueError:
        return started_at
    return f"{when:%Y-%m-%d %H:%M} {when:%Z}".strip()


def _clock(seconds: float, separator: str = ".") -> str:
    """HH:MM:SS.mmm; hours grow past two digits rather than wrap."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def _seconds_clock(seconds: float) -> str:
    return _clock(math.floor(max(0.0, seconds)))[:-4]


def _one_line(text: str) -> str:
    # A blank line would end a WebVTT or SRT cue early; Markdown paragraphs likewise.
    return " ".join(text.split())


def _vtt_escape(text: str) -> str:
    text = _one_line(text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MD_SPECIALS = re.compile(r"([\\`*_\[\]<>~|&#])")


def _md_escape(text: str) -> str:
    return _MD_SPECIALS.sub(r"\\\1", _one_line(text))


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _XML_INVALID.sub("", text)


def _bytes_writer(content: bytes) -> Callable[[Path], object]:
    return lambda path: path.write_bytes(content)


def _replace(target: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary file beside `target`, then swap it in."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        write(temporary)
        with temporary.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
