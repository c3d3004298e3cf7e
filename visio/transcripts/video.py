"""The meeting as one video: who speaks when, which tile goes where, and the ffmpeg graph.

The steps, each a plain function that can be read and tested alone:
1. `speech_spans`: a track's loudness, frame by frame, becomes the stretches where its
   participant speaks, with hysteresis (a hangover bridges the pauses between words, and
   a blip too short to be speech is dropped), so that the layout does not flicker.
2. `plan`: the meeting's timeline becomes shots. Each shot has the speaker it follows
   and the screen share it shows, if any; the speaker changes only to someone who is
   speaking, and not before the current one was shown `MIN_SHOT_S`.
3. `filter_graph`: the shots become one ffmpeg filter graph. Every video clip is placed
   on a dark canvas with an `overlay` enabled exactly in its shots (large alone, or
   small beside a screen share shown large), with its name drawn on the tile; a
   participant without video at that moment gets a name card; the audio tracks are
   delayed to their place and mixed.
4. `render`: ffmpeg runs the graph into an MP4 (H.264 + AAC, with the transcript as a
   mov_text captions track when there is one), reporting its progress.

Names are user input: they reach ffmpeg only through files (`textfile`, with text
expansion off), never inside the graph's text.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Span = tuple[float, float]
Progress = Callable[[float], None]

WIDTH, HEIGHT, FPS = 1280, 720, 25
SCREEN_BOX = (0, 0, 960, 720)  # a screen share, shown large
SIDE_BOX = (960, 0, 320, 180)  # the speaker, small beside it
FULL_BOX = (0, 0, WIDTH, HEIGHT)  # the speaker, when nobody shares a screen
BACKGROUND = "0x202124"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core

FRAME_S = 0.05  # loudness is measured on frames this long
STEP_S = 0.1  # the layout is decided this often
HANGOVER_S = 1.0  # a pause shorter than this does not end someone's speech
MIN_SPEECH_S = 0.3  # shorter bursts (a cough, a click) are not speech
FLOOR_DB = -50.0  # never counted as speech, whatever the track's noise
ABOVE_NOISE_DB = 12.0  # speech is this much louder than the track's quiet moments
MIN_SHOT_S = 2.0  # the view stays on a speaker at least this long


class VideoError(Exception):
    """The video cannot be made; the message says why."""


@dataclass(frozen=True)
class Clip:
    """One video recording, placed on the meeting's timeline."""

    path: Path
    participant: str
    label: str  # the name drawn on its tile
    screen: bool  # a screen share (else a camera)
    start: float
    end: float


@dataclass(frozen=True)
class Voice:
    """Where one participant speaks (their microphones together)."""

    participant: str
    label: str
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Sound:
    """An audio track for the mix."""

    path: Path
    offset: float


@dataclass(frozen=True)
class Shot:
    """A stretch of the video with one layout."""

    start: float
    end: float
    speaker: str | None  # the participant the view follows
    screen: int | None  # index of the screen clip shown large


# -- 1. who speaks ------------------------------------------------------------------------


def loudness(samples: np.ndarray, rate: int, frame_s: float = FRAME_S) -> np.ndarray:
    """The RMS level of each frame of mono samples in [-1, 1], in dBFS."""
    size = max(1, int(rate * frame_s))
    count = len(samples) // size
    if not count:
        return np.zeros(0)
    frames = samples[: count * size].astype(np.float64).reshape(count, size)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-5))


def speech_spans(levels: np.ndarray, frame_s: float = FRAME_S, offset: float = 0.0) -> list[Span]:
    """The stretches of speech in a track's loudness, on the meeting's timeline."""
    if not len(levels):
        return []
    threshold = max(FLOOR_DB, float(np.percentile(levels, 10)) + ABOVE_NOISE_DB)
    loud = np.flatnonzero(levels > threshold)
    spans: list[list[float]] = []
    for index in loud:
        start, end = index * frame_s, (index + 1) * frame_s
        if spans and start - spans[-1][1] < HANGOVER_S:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [
        (round(offset + float(start), 3), round(offset + float(end), 3))
        for start, end in spans
        if end - start >= MIN_SPEECH_S
    ]


# -- 2. the layout --------------------------------------------------------------------------


def plan(
    duration: float, clips: list[Clip], voices: list[Voice], step: float = STEP_S
) -> list[Shot]:
    """The shots of the video: whom it follows and which screen share it shows."""
    steps = max(1, int(np.ceil(duration / step)))
    speaking = {voice.participant: _mask(voice.spans, steps, step) for voice in voices}
    screens = [i for i, clip in enumerate(clips) if clip.screen]
    focus = _first_person(clips, voices)
    shown_since = 0.0
    talk_started: dict[str, float] = {}
    shots: list[Shot] = []
    for n in range(steps):
        moment = n * step
        active = [p for p, mask in speaking.items() if mask[n]]
        for participant in list(talk_started):
            if participant not in active:
                del talk_started[participant]
        for participant in active:
            talk_started.setdefault(participant, moment)
        if active and focus not in active and moment - shown_since >= MIN_SHOT_S:
            focus = max(active, key=lambda p: talk_started[p])  # the newest voice
            shown_since = moment
        live = [i for i in screens if clips[i].start <= moment < clips[i].end]
        screen = max(live, key=lambda i: clips[i].start) if live else None
        end = min(duration, moment + step)
        if shots and (shots[-1].speaker, shots[-1].screen) == (focus, screen):
            shots[-1] = Shot(shots[-1].start, end, focus, screen)
        else:
            shots.append(Shot(moment, end, focus, screen))
    return [Shot(round(s.start, 3), round(s.end, 3), s.speaker, s.screen) for s in shots]


def _mask(spans: Iterable[Span], steps: int, step: float) -> np.ndarray:
    mask = np.zeros(steps, dtype=bool)
    for start, end in spans:
        mask[int(start / step) : int(np.ceil(end / step))] = True
    return mask


def _first_person(clips: list[Clip], voices: list[Voice]) -> str | None:
    """Whom the video shows before anyone speaks: the first camera, else the first voice."""
    cameras = sorted((c for c in clips if not c.screen), key=lambda c: c.start)
    if cameras:
        return cameras[0].participant
    return voices[0].participant if voices else None


# -- 3. the filter graph ------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """A clip (or a name card, when `clip` is None) drawn in a box at some moments."""

    clip: int | None
    participant: str
    box: tuple[int, int, int, int]
    spans: tuple[Span, ...]


def placements(shots: list[Shot], clips: list[Clip]) -> list[Placement]:
    """Where each clip is drawn and when; name cards where the speaker has no video."""
    placed: list[Placement] = []
    for index, clip in enumerate(clips):
        if clip.screen:
            spans = [(s.start, s.end) for s in shots if s.screen == index]
            boxes = {SCREEN_BOX: spans}
        else:
            mine = [s for s in shots if s.speaker == clip.participant]
            boxes = {
                FULL_BOX: [(s.start, s.end) for s in mine if s.screen is None],
                SIDE_BOX: [(s.start, s.end) for s in mine if s.screen is not None],
            }
        for box, spans in boxes.items():
            seen = intersect(spans, [(clip.start, clip.end)])
            if seen:
                placed.append(Placement(index, clip.participant, box, tuple(seen)))
    for participant in dict.fromkeys(s.speaker for s in shots if s.speaker is not None):
        filmed = merge_spans(
            (c.start, c.end) for c in clips if c.participant == participant and not c.screen
        )
        mine = [s for s in shots if s.speaker == participant]
        for box, spans in (
            (FULL_BOX, [(s.start, s.end) for s in mine if s.screen is None]),
            (SIDE_BOX, [(s.start, s.end) for s in mine if s.screen is not None]),
        ):
            unseen = subtract(merge_spans(spans), filmed)
            if unseen:
                placed.append(Placement(None, participant, box, tuple(unseen)))
    return placed


def filter_graph(
    duration: float,
    clips: list[Clip],
    shots: list[Shot],
    sounds: list[Sound],
    labels: dict[str, str],
    font: Path = FONT,
) -> str:
    """The ffmpeg filter graph, one chain a line. Inputs are the clips in order, then the
    sounds; `labels` maps each participant (and `clip<i>`) to the file holding its name.
    Outputs are [v] and [a]."""
    chains = [f"color=c={BACKGROUND}:s={WIDTH}x{HEIGHT}:r={FPS}:d={duration:.3f}[base0]"]
    laid = placements(shots, clips)
    cards = [p for p in laid if p.clip is None]
    tiles = [p for p in laid if p.clip is not None]
    layer = "base0"
    for n, card in enumerate(cards):
        text = _drawtext(labels[card.participant], card.box, font, centred=True)
        chains.append(f"[{layer}]{text}:enable='{_enable(card.spans)}'[card{n}]")
        layer = f"card{n}"
    by_clip: dict[int, list[Placement]] = {}
    for tile in tiles:
        assert tile.clip is not None
        by_clip.setdefault(tile.clip, []).append(tile)
    for index, uses in by_clip.items():
        clip = clips[index]
        names = [f"c{index}p{n}" for n in range(len(uses))]
        source = f"[{index}:v]setpts=PTS-STARTPTS+{clip.start:.3f}/TB"
        if len(uses) > 1:
            chains.append(f"{source},split={len(uses)}" + "".join(f"[{m}in]" for m in names))
        for use, name in zip(uses, names, strict=True):
            head = f"[{name}in]" if len(uses) > 1 else source + ","
            label = labels[f"clip{index}"]
            chains.append(f"{head}{_fit(use.box)},{_drawtext(label, use.box, font)}[{name}]")
            x, y, _, _ = use.box
            chains.append(
                f"[{layer}][{name}]overlay=x={x}:y={y}:eof_action=pass:"
                f"enable='{_enable(use.spans)}'[{name}on]"
            )
            layer = f"{name}on"
    chains.append(f"[{layer}]format=yuv420p[v]")
    chains.append(_mix(sounds, first_input=len(clips)))
    return ";\n".join(chains) + "\n"


def _fit(box: tuple[int, int, int, int]) -> str:
    """Scale into the box, keeping the aspect ratio; black bars fill the rest."""
    _, _, w, h = box
    return (
        f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1"
    )


def _drawtext(
    textfile: str, box: tuple[int, int, int, int], font: Path, centred: bool = False
) -> str:
    x, y, w, h = box
    size = max(14, h // (8 if centred else 20))
    where = (
        f"x={x}+({w}-tw)/2:y={y}+({h}-th)/2"
        if centred
        else f"x={max(6, size // 2)}:y=h-th-{max(6, size // 2)}"
    )
    return (
        f"drawtext=fontfile={font}:textfile={textfile}:expansion=none:fontsize={size}:"
        f"fontcolor=white:box=1:boxcolor=black@0.55:boxborderw={max(4, size // 4)}:{where}"
    )


def _enable(spans: Iterable[Span]) -> str:
    return "+".join(f"between(t,{start:.3f},{end:.3f})" for start, end in spans)


def _mix(sounds: list[Sound], first_input: int) -> str:
    if not sounds:
        return "anullsrc=r=48000:cl=stereo[a]"
    chains = []
    for n, sound in enumerate(sounds):
        delay = round(sound.offset * 1000)
        chains.append(f"[{first_input + n}:a]aresample=48000,adelay={delay}:all=1[s{n}]")
    labels = "".join(f"[s{n}]" for n in range(len(sounds)))
    chains.append(f"{labels}amix=inputs={len(sounds)}:normalize=0:dropout_transition=0[a]")
    return ";\n".join(chains)


# -- span arithmetic ------------------------------------------------------------------------


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    merged: list[list[float]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def intersect(spans: Iterable[Span], within: Iterable[Span]) -> list[Span]:
    result = []
    for start, end in merge_spans(spans):
        for low, high in merge_spans(within):
            a, b = max(start, low), min(end, high)
            if b > a:
                result.append((a, b))
    return merge_spans(result)


def subtract(spans: Iterable[Span], holes: Iterable[Span]) -> list[Span]:
    result = merge_spans(spans)
    for low, high in merge_spans(holes):
        cut: list[Span] = []
        for start, end in result:
            if high <= start or low >= end:
                cut.append((start, end))
                continue
            if start < low:
                cut.append((start, low))
            if high < end:
                cut.append((high, end))
        result = cut
    return result


# -- 4. rendering ------------------------------------------------------------------------------


def render(
    duration: float,
    clips: list[Clip],
    voices: list[Voice],
    sounds: list[Sound],
    target: Path,
    work: Path,
    captions: Path | None = None,
    threads: int = 2,
    progress: Progress = lambda _: None,
) -> Path:
    """Make the MP4 of the meeting; `work` holds the graph and the name files."""
    if duration <= 0:
        raise VideoError("the meeting has no length to film")
    work.mkdir(parents=True, exist_ok=True)
    labels = _write_labels(work, clips, voices)
    shots = plan(duration, clips, voices)
    (work / "graph.txt").write_text(filter_graph(duration, clips, shots, sounds, labels))
    command = ["ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1"]
    for clip in clips:
        command += ["-reinit_filter", "0", "-i", str(clip.path)]
    for sound in sounds:
        command += ["-i", str(sound.path)]
    maps = ["-map", "[v]", "-map", "[a]"]
    if captions is not None:
        command += ["-i", str(captions)]
        maps += ["-map", f"{len(clips) + len(sounds)}:s", "-c:s", "mov_text"]
    partial = target.with_suffix(".part.mp4")
    command += [
        "-filter_complex_script", "graph.txt", *maps,
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-r", str(FPS),
        "-c:a", "aac", "-b:a", "96k", "-t", f"{duration:.3f}",
        "-threads", str(threads), "-movflags", "+faststart", "-f", "mp4", str(partial),
    ]  # fmt: skip
    _run_ffmpeg(command, work, duration, progress)
    partial.replace(target)
    (work / "shots.json").write_text(json.dumps([s.__dict__ for s in shots]))
    return target


def _write_labels(work: Path, clips: list[Clip], voices: list[Voice]) -> dict[str, str]:
    """One file per name, relative to `work` (ffmpeg runs there)."""
    names: dict[str, str] = {}
    for voice in voices:
        names.setdefault(voice.participant, voice.label)
    for clip in clips:
        if not clip.screen:
            names.setdefault(clip.participant, clip.label)
    labels: dict[str, str] = {}
    for n, (participant, name) in enumerate(names.items()):
        labels[participant] = _label_file(work, f"name{n}.txt", name)
    for index, clip in enumerate(clips):
        labels[f"clip{index}"] = _label_file(work, f"clip{index}.txt", clip.label)
    return labels


def _label_file(work: Path, name: str, text: str) -> str:
    (work / name).write_text(" ".join(text.split())[:80] or "?", encoding="utf-8")
    return name


def _run_ffmpeg(command: list[str], cwd: Path, duration: float, progress: Progress) -> None:
    log = cwd / "ffmpeg.log"  # a file, not a pipe: a damaged stream may say a lot
    with log.open("w") as errors:
        child = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert child.stdout is not None
        for line in child.stdout:
            key, _, value = line.strip().partition("=")
            if key == "out_time_us" and value.lstrip("-").isdigit():
                progress(min(1.0, max(0.0, int(value) / 1e6 / duration)))
        code = child.wait()
    if code != 0:
        said = log.read_text(errors="replace").strip()[-300:]
        raise VideoError(f"ffmpeg could not make the video: {said}")
