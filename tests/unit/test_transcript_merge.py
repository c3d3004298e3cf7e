"""Merging per-track recognition into one meeting transcript (visio.transcripts.merge)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from visio.transcripts.merge import TrackText, merge, sentences
from visio.transcripts.transcript import Segment, Word, words_text


def said(*words: tuple[float, float, str], speaker: str = "") -> Segment:
    """A segment of Whisper-style words (each but the first with its leading space)."""
    timed = tuple(
        Word(start, end, text if i == 0 else f" {text}")
        for i, (start, end, text) in enumerate(words)
    )
    return Segment(speaker, timed[0].start, timed[-1].end, words_text(timed), timed)


def track(speaker: str, *segments: Segment, offset: float = 0.0) -> TrackText:
    return TrackText(
        speaker=speaker, source=f"mic-{speaker}", offset=offset, segments=list(segments)
    )


def summary(segments: list[Segment]) -> list[tuple[str, str]]:
    return [(s.speaker, s.text) for s in segments]


def test_an_interjection_interleaves_with_the_sentences_around_it():
    alice = said(
        (0.0, 0.5, "We"), (0.5, 1.0, "ship"), (1.0, 1.8, "today."),
        (2.0, 2.5, "Then"), (2.5, 3.0, "we"), (3.0, 3.4, "test."),
        (3.6, 4.0, "Finally"), (4.0, 4.8, "release."),
    )  # fmt: skip
    bob = said((3.5, 3.9, "Wait,"), (3.9, 4.3, "what?"))
    merged = merge([track("Alice", alice), track("Bob", bob)])
    assert summary(merged) == [
        ("Alice", "We ship today. Then we test."),
        ("Bob", "Wait, what?"),
        ("Alice", "Finally release."),
    ]
    assert [(s.start, s.end) for s in merged] == [(0.0, 3.4), (3.5, 4.3), (3.6, 4.8)]
    assert merged[1].end > merged[2].start  # overlapping speech stays, in two segments


def test_offsets_move_segments_and_words_onto_the_meeting_timeline():
    merged = merge([track("Alice", said((1.0, 2.0, "Hello.")), offset=10.0)])
    assert [(s.start, s.end) for s in merged] == [(11.0, 12.0)]
    assert merged[0].words == (Word(11.0, 12.0, "Hello."),)
    assert merged[0].source == "mic-Alice"


def test_a_later_track_interleaves_by_its_offset():
    early = track("Alice", said((0.0, 1.0, "One.")), said((5.0, 6.0, "Three.")))
    late = track("Bob", said((0.0, 1.0, "Two.")), offset=3.0)
    assert [s.text for s in merge([late, early])] == ["One.", "Two.", "Three."]


def test_a_speakers_sentences_join_across_a_short_pause_only():
    short = merge([track("Alice", said((0.0, 1.0, "One.")), said((2.0, 3.0, "Two.")))])
    assert summary(short) == [("Alice", "One. Two.")]
    assert short[0].words == (Word(0.0, 1.0, "One."), Word(2.0, 3.0, "Two."))
    paused = [track("Alice", said((0.0, 1.0, "One.")), said((2.5, 3.0, "Two.")))]
    assert summary(merge(paused)) == [("Alice", "One."), ("Alice", "Two.")]
    assert summary(merge(paused, join_gap=2.0)) == [("Alice", "One. Two.")]


def test_speakers_named_per_segment_within_one_track_stay_apart():
    first = said((0.0, 1.0, "Hi."), speaker="Alice (speaker 1)")
    second = said((1.2, 2.0, "Hello."), speaker="Alice (speaker 2)")
    plain = said((2.2, 3.0, "Hey."))
    merged = merge([track("Alice", first, second, plain)])
    assert summary(merged) == [
        ("Alice (speaker 1)", "Hi."),
        ("Alice (speaker 2)", "Hello."),
        ("Alice", "Hey."),
    ]


def test_segments_without_words_are_kept_whole_and_shifted():
    plain = Segment("", 1.0, 4.0, "  First sentence. Second\nsentence!  ")
    merged = merge([track("Alice", plain, offset=2.0)])
    assert merged == [
        Segment("Alice", 3.0, 6.0, "First sentence. Second sentence!", (), "mic-Alice")
    ]


def test_empty_tracks_and_empty_segments_disappear():
    assert merge([]) == []
    assert merge([track("Alice"), track("Bob", Segment("", 0.0, 1.0, "   "))]) == []


def test_equal_starts_order_by_end_then_speaker_whatever_the_track_order():
    tracks = [
        track("Carol", said((1.0, 3.0, "Long."))),
        track("Bob", said((1.0, 2.0, "Short."))),
        track("Alice", said((1.0, 2.0, "Same."))),
    ]
    expected = [("Alice", "Same."), ("Bob", "Short."), ("Carol", "Long.")]
    assert summary(merge(tracks)) == expected
    assert summary(merge(tracks[::-1])) == expected


def test_a_single_sentence_keeps_the_recognisers_text_and_bounds():
    word = Word(1.2, 1.8, "hello")
    segment = Segment("Alice", 1.0, 2.0, "Hello!", (word,))
    assert sentences(segment) == [segment]


def test_sentence_ends_after_closing_quotes_and_ellipses():
    segment = said((0, 1, 'He said "no."'), (1, 2, "Well…"), (2, 3, "fine"))
    assert [s.text for s in sentences(segment)] == ['He said "no."', "Well…", "fine"]


_MARKS = st.sampled_from(["", "", "", ".", "?", "!", ","])


@st.composite
def meetings(draw: st.DrawFn) -> list[TrackText]:
    serial = 0
    tracks = []
    for name in draw(st.lists(st.sampled_from(["Alice", "Bob", "Carol"]), max_size=4)):
        segments, clock = [], 0.0
        for _ in range(draw(st.integers(0, 4))):
            words = []
            for _ in range(draw(st.integers(0, 6))):
                clock += draw(st.floats(0.0, 3.0))
                length = draw(st.floats(0.0, 1.0))
                serial += 1
                words.append(Word(clock, clock + length, f" w{serial}{draw(_MARKS)}"))
                clock += length
            if words:
                segments.append(Segment("", words[0].start, clock, words_text(words), tuple(words)))
        offset = draw(st.floats(0.0, 60.0))
        tracks.append(TrackText(name, name.lower(), offset, segments))
    return tracks


@settings(max_examples=150, deadline=None)
@given(meetings(), st.floats(0.0, 3.0))
def test_merge_keeps_every_word_once_and_sorts_by_start(tracks, join_gap):
    merged = merge(tracks, join_gap=join_gap)
    expected = Counter(
        (t.speaker, w.text, w.start + t.offset, w.end + t.offset)
        for t in tracks
        for s in t.segments
        for w in s.words
    )
    found = Counter((s.speaker, w.text, w.start, w.end) for s in merged for w in s.words)
    assert found == expected
    assert [s.start for s in merged] == sorted(s.start for s in merged)
    for segment in merged:
        assert segment.text == words_text(segment.words)
        assert segment.start <= min(w.start for w in segment.words)
        assert segment.end >= max(w.end for w in segment.words)
    assert merge(tracks, join_gap=join_gap) == merged
