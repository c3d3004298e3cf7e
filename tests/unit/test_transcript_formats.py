"""Transcript writers: JSON, WebVTT, SRT, Markdown, DOCX (visio.transcripts.formats)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import docx

from visio.transcripts import formats
from visio.transcripts.formats import (
    cues,
    to_docx,
    to_json,
    to_markdown,
    to_srt,
    to_webvtt,
    write_all,
)
from visio.transcripts.transcript import Segment, Transcript, Word, words_text


def long_segment(speaker: str = "Alice", start: float = 10.0) -> Segment:
    """Forty words over twenty seconds: too long for one subtitle cue."""
    words = tuple(
        Word(start + i * 0.5, start + i * 0.5 + 0.4, f"{' ' if i else ''}word{i}")
        for i in range(40)
    )
    return Segment(speaker, start, words[-1].end, words_text(words), words, "mic")


def meeting() -> Transcript:
    return Transcript(
        title="Weekly *sync*",
        language="fr",
        duration=3725.0,
        started_at="2024-05-02T14:03:00+00:00",
        segments=[
            Segment("Alice", 0.0, 1.5, "Bonjour à tous.", (Word(0.0, 1.5, "Bonjour", 0.9),), "a"),
            Segment("Eve <b>&", 62.25, 63.0, "Salut, 2 < 3 & *vrai*."),
            Segment("Alice", 3723.456, 3724.5, "Fin de la réunion."),
        ],
    )


def test_json_round_trips_and_names_its_format():
    transcript = meeting()
    text = to_json(transcript)
    data = json.loads(text)
    assert data["format"] == "visio-transcript/1"
    assert data["speakers"] == ["Alice", "Eve <b>&"]
    assert "réunion" in text  # UTF-8, not \\u escapes
    assert Transcript.from_dict(data) == transcript


def test_webvtt_cues_with_exact_times_and_escaped_voices():
    assert to_webvtt(meeting()) == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 00:00:01.500\n<v Alice>Bonjour à tous.\n\n"
        "2\n00:01:02.250 --> 00:01:03.000\n<v Eve &lt;b&gt;&amp;>Salut, 2 &lt; 3 &amp; *vrai*.\n\n"
        "3\n01:02:03.456 --> 01:02:04.500\n<v Alice>Fin de la réunion.\n"
    )


def test_srt_numbers_cues_and_uses_commas():
    assert to_srt(meeting()) == (
        "1\n00:00:00,000 --> 00:00:01,500\nAlice: Bonjour à tous.\n\n"
        "2\n00:01:02,250 --> 00:01:03,000\nEve <b>&: Salut, 2 < 3 & *vrai*.\n\n"
        "3\n01:02:03,456 --> 01:02:04,500\nAlice: Fin de la réunion.\n"
    )


def test_times_clamp_at_zero_and_pass_a_hundred_hours():
    transcript = Transcript("t", "en", 0.0, [Segment("A", -2.0, 0.5, "x")])
    transcript.segments.append(Segment("A", 360_000.0, 360_001.0, "y"))
    vtt = to_webvtt(transcript)
    assert "00:00:00.000 --> 00:00:00.500" in vtt
    assert "100:00:00.000 --> 100:00:01.000" in vtt


def test_a_long_segment_splits_into_short_cues_at_its_words():
    segment = long_segment()
    split = cues(Transcript("t", "en", 40.0, [segment]))
    assert len(split) > 2
    assert all(c.speaker == "Alice" for c in split)
    assert all(c.end - c.start <= formats.MAX_CUE_SECONDS for c in split)
    assert all(len(c.text) <= formats.MAX_CUE_CHARS for c in split)
    assert " ".join(c.text for c in split) == segment.text
    assert (split[0].start, split[-1].end) == (segment.start, segment.end)
    assert all(a.end <= b.start for a, b in itertools.pairwise(split))
    srt = to_srt(Transcript("t", "en", 40.0, [segment]))
    assert srt.count("Alice: ") == len(split)
    assert srt.startswith("1\n00:00:10,000 --> ")


def test_a_long_segment_without_words_splits_by_length():
    text = " ".join(f"mot{i}" for i in range(60))
    split = cues(Transcript("t", "fr", 30.0, [Segment("Bob", 0.0, 30.0, text)]))
    assert len(split) >= 5  # thirty seconds at most seven each
    assert " ".join(c.text for c in split) == text
    assert all(len(c.text) <= formats.MAX_CUE_CHARS for c in split)
    assert (split[0].start, split[-1].end) == (0.0, 30.0)
    assert all(a.end == b.start for a, b in itertools.pairwise(split))


def test_markdown_lists_speakers_and_escapes_text():
    markdown = to_markdown(meeting())
    assert markdown.startswith("# Weekly \\*sync\\*\n")
    assert "- **Date:** 2024-05-02 14:03 UTC" in markdown
    assert "- **Language:** fr" in markdown
    assert "- **Speakers:** Alice, Eve \\<b\\>\\&" in markdown
    assert "**[00:00:00] Alice** — Bonjour à tous." in markdown
    assert "**[00:01:02] Eve \\<b\\>\\&** — Salut, 2 \\< 3 \\& \\*vrai\\*." in markdown
    assert "**[01:02:03] Alice** — Fin de la réunion." in markdown


def test_docx_holds_every_segment_and_its_properties(tmp_path: Path):
    path = tmp_path / "meeting.docx"
    to_docx(meeting(), path)
    document = docx.Document(str(path))
    assert document.core_properties.title == "Weekly *sync*"
    assert document.core_properties.language == "fr"
    body = "\n".join(p.text for p in document.paragraphs)
    cells = {c.text for row in document.tables[0].rows for c in row.cells}
    assert "Weekly *sync*" in body
    assert {"Language", "fr", "Speakers", "Alice, Eve <b>&"} <= cells
    for segment in meeting().segments:
        assert segment.speaker in body
        assert segment.text in body
    assert "01:02:03" in body


def test_write_all_writes_the_five_formats(tmp_path: Path):
    folder = tmp_path / "out"
    paths = write_all(meeting(), folder)
    assert set(paths) == {"json", "vtt", "srt", "md", "docx"}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"transcript.{ext}" for ext in ("json", "vtt", "srt", "md", "docx")
    )
    assert Transcript.from_dict(json.loads(paths["json"].read_text("utf-8"))) == meeting()
    assert paths["vtt"].read_text("utf-8") == to_webvtt(meeting())
    docx.Document(str(paths["docx"]))
    again = write_all(meeting(), folder, stem="again")
    assert again["md"] == folder / "again.md"
    assert len(list(folder.iterdir())) == 10  # no temporary files left behind
