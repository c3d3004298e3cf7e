"""The meeting's video: speech detection, the active-speaker plan, and the ffmpeg graph
(visio.transcripts.video). The graph is also run through the real ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from visio.testing.frames import frame_at, mean_colour
from visio.transcripts.video import (
    FULL_BOX,
    MIN_SHOT_S,
    SCREEN_BOX,
    SIDE_BOX,
    Clip,
    Shot,
    Sound,
    Voice,
    filter_graph,
    intersect,
    loudness,
    placements,
    plan,
    render,
    speech_spans,
    subtract,
)

RATE = 16_000


def burst(*spans: tuple[float, float], length: float = 10.0, noise: float = 0.001) -> np.ndarray:
    """A quiet track (a little noise) with a loud tone in the given stretches."""
    rng = np.random.default_rng(1)
    samples = rng.normal(0, noise, int(length * RATE)).astype(np.float32)
    t = np.arange(len(samples)) / RATE
    for start, end in spans:
        inside = (t >= start) & (t < end)
        samples[inside] += 0.3 * np.sin(2 * np.pi * 220 * t[inside]).astype(np.float32)
    return samples


def camera(participant: str, start: float = 0.0, end: float = 60.0) -> Clip:
    return Clip(Path(f"{participant}.webm"), participant, participant, False, start, end)


def screen(participant: str, start: float, end: float) -> Clip:
    return Clip(
        Path(f"{participant}-screen.webm"), participant, f"{participant} (screen)", True, start, end
    )


def voice(participant: str, *spans: tuple[float, float]) -> Voice:
    return Voice(participant, participant, spans)


def test_speech_spans_bridge_pauses_drop_clicks_and_follow_the_offset():
    samples = burst((1.0, 2.0), (2.5, 3.5), (6.0, 6.1), (8.0, 9.0))
    spans = speech_spans(loudness(samples, RATE), offset=5.0)
    # 1-2 and 2.5-3.5 are one turn (a 0.5 s pause); the 0.1 s click at 6 is no speech.
    assert [(round(a, 1), round(b, 1)) for a, b in spans] == [(6.0, 8.5), (13.0, 14.0)]
    assert speech_spans(loudness(np.zeros(RATE * 3, np.float32), RATE)) == []
    assert speech_spans(np.zeros(0)) == []


def test_the_view_follows_the_speaker_and_never_flickers():
    shots = plan(20.0, [camera("A"), camera("B")], [voice("A", (1, 5)), voice("B", (6, 9))])
    assert [(s.speaker, s.start, s.end) for s in shots] == [("A", 0, 6), ("B", 6, 20)]
    # B's one-word interjection inside A's turn does not move the view; when A stops,
    # B (still speaking) gets it, and no shot is shorter than the minimum.
    shots = plan(
        20.0, [camera("A"), camera("B")], [voice("A", (0, 8)), voice("B", (3, 3.4), (7, 12))]
    )
    assert [(s.speaker, s.start) for s in shots] == [("A", 0), ("B", 8)]
    chatter = [
        voice("A", *[(t, t + 0.5) for t in range(0, 20, 1)]),
        voice("B", *[(t + 0.5, t + 1) for t in range(20)]),
    ]
    shots = plan(20.0, [camera("A"), camera("B")], chatter)
    assert all(s.end - s.start >= MIN_SHOT_S - 1e-9 for s in shots[:-1])


def test_a_screen_share_is_large_with_the_speaker_small_beside_it():
    clips = [camera("A"), camera("B", 0, 12), screen("A", 4, 14)]
    shots = plan(20.0, clips, [voice("A", (0, 3)), voice("B", (6, 16))])
    assert [(s.speaker, s.screen, s.start, s.end) for s in shots] == [
        ("A", None, 0, 4), ("A", 2, 4, 6), ("B", 2, 6, 14), ("B", None, 14, 20),
    ]  # fmt: skip
    laid = {(p.clip, p.participant, p.box): p.spans for p in placements(shots, clips)}
    assert laid[(0, "A", FULL_BOX)] == ((0, 4),)
    assert laid[(0, "A", SIDE_BOX)] == ((4, 6),)
    assert laid[(1, "B", SIDE_BOX)] == ((6, 12),)
    assert laid[(2, "A", SCREEN_BOX)] == ((4, 14),)
    # B's camera ended at 12: a name card stands in for it, small then large.
    assert laid[(None, "B", SIDE_BOX)] == ((12, 14),)
    assert laid[(None, "B", FULL_BOX)] == ((14, 20),)
    assert (1, "B", FULL_BOX) not in laid


def test_span_arithmetic():
    assert intersect([(0, 5), (7, 9)], [(4, 8)]) == [(4, 5), (7, 8)]
    assert subtract([(0, 10)], [(2, 3), (5, 12)]) == [(0, 2), (3, 5)]
    assert subtract([(0, 1)], []) == [(0, 1)]


def test_the_graph_draws_names_from_files_and_mixes_every_track_at_its_place():
    clips = [camera("A"), screen("A", 4, 14)]
    shots = [Shot(0, 4, "A", None), Shot(4, 14, "A", 1)]
    labels = {"A": "name0.txt", "clip0": "clip0.txt", "clip1": "clip1.txt"}
    sounds = [Sound(Path("a.opus"), 0.0), Sound(Path("b.opus"), 2.5)]
    graph = filter_graph(14.0, clips, shots, sounds, labels)
    assert "textfile=clip0.txt:expansion=none" in graph  # names never inside the graph
    assert "[0:v]setpts=PTS-STARTPTS+0.000/TB,split=2" in graph  # large, then small
    assert "[1:v]setpts=PTS-STARTPTS+4.000/TB" in graph
    assert "enable='between(t,4.000,14.000)'" in graph
    assert "[3:a]aresample=48000,adelay=2500:all=1" in graph
    assert "amix=inputs=2" in graph and graph.rstrip().endswith("[a]")


def colour_clip(folder: Path, colour: str, seconds: float) -> Path:
    path = folder / f"{colour}.webm"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"color=c={colour}:s=160x120:r=10:d={seconds}", "-c:v", "libvpx", str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_render_makes_an_mp4_with_each_speaker_large_in_turn(tmp_path: Path):
    red, blue = colour_clip(tmp_path, "red", 6), colour_clip(tmp_path, "blue", 6)
    clips = [Clip(red, "A", "Ann 'x': %{pts}", False, 0, 6), Clip(blue, "B", "Bo", False, 0, 6)]
    voices = [voice("A", (0.5, 2.5)), voice("B", (3.5, 5.5))]
    seen: list[float] = []
    video = render(
        6.0, clips, voices, [], tmp_path / "out.mp4", tmp_path / "work", progress=seen.append
    )
    red_at = mean_colour(frame_at(video, 2.0), FULL_BOX)
    blue_at = mean_colour(frame_at(video, 5.0), FULL_BOX)
    assert red_at[0] > 180 and red_at[2] < 80, red_at
    assert blue_at[2] > 180 and blue_at[0] < 80, blue_at
    assert seen and seen[-1] > 0.9
