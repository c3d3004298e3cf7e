"""Who spoke when on one audio track that may carry several voices (a room microphone).

`EmbeddingDiarizer` runs on the operator's CPUs with what ships on PyPI: Silero VAD (inside
faster-whisper) finds speech, resemblyzer's encoder (`voice_encoder`, numpy) embeds
sliding windows, and average-linkage agglomerative clustering on cosine similarity groups
them. `PyannoteDiarizer` is for operators who install pyannote.audio and its weights
themselves. `load_diarizer` picks one from a configuration string.
"""

from __future__ import annotations

import importlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from visio.speech.voice_encoder import (
    FRAME_S,
    HOP,
    SAMPLE_RATE,
    TARGET_DBFS,
    SpeakerModelError,
    VoiceEncoder,
    mel_spectrogram,
    window_starts,
)

__all__ = [
    "Diarizer",
    "EmbeddingDiarizer",
    "PyannoteDiarizer",
    "SpeakerModelError",
    "Turn",
    "diarization_error_rate",
    "load_diarizer",
]


@dataclass(frozen=True)
class Turn:
    """`speaker` talks from `start` to `end` (seconds from the start of the track)."""

    start: float
    end: float
    speaker: int


@runtime_checkable
class Diarizer(Protocol):
    def diarize(self, audio16k: np.ndarray, max_speakers: int = 8) -> list[Turn]:
        """Turns of 16 kHz mono float audio, speakers numbered 0, 1, … by first appearance."""
        ...


# -- embedded diarizer ---------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    start: int  # frames (10 ms)
    size: int
    region: int


class EmbeddingDiarizer:
    """Silero VAD + resemblyzer window embeddings + agglomerative clustering, numpy only.

    Clustering has three steps. Average linkage merges windows while their clusters'
    mean cosine similarity is at least `threshold`. Clusters with less than
    `min_speaker_s` of windows (5 s: about 4 s of speech) are folded into their nearest
    neighbour: a few outlying windows, or windows astride a change of speaker, must not
    invent a speaker. Then two clusters stay apart only if they are less
    similar to each other than to themselves by `min_contrast`, counting only pairs of
    windows that share no audio: how alike one voice's windows are varies from voice to
    voice, and this relative test is what keeps a single voice in one cluster
    (calibration in tests/speech/test_speakers.py). The encoder is loaded on first use.
    """

    def __init__(
        self,
        threshold: float = 0.70,
        min_contrast: float = 0.12,
        window_s: float = 1.5,
        hop_s: float = 0.75,
        min_speaker_s: float = 5.0,
        merge_gap_s: float = 0.5,
        encoder: VoiceEncoder | None = None,
    ) -> None:
        self.threshold = threshold
        self.min_contrast = min_contrast
        self.window_s = window_s
        self.hop_s = hop_s
        self.min_speaker_s = min_speaker_s
        self.merge_gap_s = merge_gap_s
        self._encoder = encoder

    @property
    def encoder(self) -> VoiceEncoder:
        if self._encoder is None:
            self._encoder = VoiceEncoder.load()
        return self._encoder

    def diarize(self, audio16k: np.ndarray, max_speakers: int = 8) -> list[Turn]:
        if max_speakers < 1:
            raise ValueError("max_speakers must be at least 1")
        audio = np.asarray(audio16k, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono audio (samples,), got shape {audio.shape}")
        regions = speech_regions(audio)
        if not regions:
            return []
        windows, embeddings = self._embed(audio, regions)
        labels = self._cluster(windows, embeddings, max_speakers)
        return _turns(regions, windows, labels, self.merge_gap_s)

    def _embed(
        self, audio: np.ndarray, regions: list[tuple[int, int]]
    ) -> tuple[list[_Window], np.ndarray]:
        mel = mel_spectrogram(audio) * _gain(audio, regions) ** 2  # power: gain squared
        size, hop = round(self.window_s / FRAME_S), round(self.hop_s / FRAME_S)
        windows = []
        for index, (a, b) in enumerate(regions):
            first, last = a // HOP, max(a // HOP + 1, b // HOP)
            starts, width = window_starts(last - first, size, hop)
            windows += [_Window(first + int(s), width, index) for s in starts]
        return windows, self._forward(mel, windows)

    def _forward(self, mel: np.ndarray, windows: list[_Window]) -> np.ndarray:
        """Embeds windows batched by length (all full-size but those of short regions)."""
        out = np.empty((len(windows), 256), dtype=np.float32)
        for width in {w.size for w in windows}:
            chosen = [i for i, w in enumerate(windows) if w.size == width]
            batch = np.stack([mel[windows[i].start : windows[i].start + width] for i in chosen])
            out[chosen] = self.encoder.forward(batch)
        return out

    def _cluster(
        self, windows: list[_Window], embeddings: np.ndarray, max_speakers: int
    ) -> np.ndarray:
        weights = np.array([w.size for w in windows], dtype=np.float64) * FRAME_S
        labels = agglomerate(embeddings, self.threshold, max_speakers, weights)
        labels = fold_small_clusters(labels, embeddings, weights, self.min_speaker_s)
        pairs = pair_weights(windows)
        return merge_low_contrast(labels, embeddings, weights, pairs, self.min_contrast)


def speech_regions(audio16k: np.ndarray) -> list[tuple[int, int]]:
    """Speech as (start, end) sample ranges, from faster-whisper's Silero VAD."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio16k.size == 0 or not np.any(audio16k):
        return []
    options = VadOptions(
        threshold=0.5, min_speech_duration_ms=200, min_silence_duration_ms=300, speech_pad_ms=100
    )
    stamps = get_speech_timestamps(audio16k, options, sampling_rate=SAMPLE_RATE)
    return [(int(s["start"]), int(s["end"])) for s in stamps if s["end"] > s["start"]]


def _gain(audio: np.ndarray, regions: list[tuple[int, int]]) -> np.float32:
    """The factor that raises the speech (not the silences) to the encoder's level, as
    resemblyzer's normalize_volume (never lowered)."""
    energy = sum(float(np.dot(audio[a:b], audio[a:b])) for a, b in regions)
    samples = sum(b - a for a, b in regions)
    if energy == 0.0:
        return np.float32(1.0)
    dbfs = 10 * np.log10(energy / samples)  # full scale is 1.0 for float samples
    return np.float32(10 ** (max(0.0, TARGET_DBFS - dbfs) / 20))


def agglomerate(
    embeddings: np.ndarray,
    threshold: float,
    max_clusters: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Average-linkage clustering of unit vectors on cosine similarity; labels (n,).

    Merges the most similar pair of clusters until none is above `threshold` and there
    are at most `max_clusters`. Each row keeps its best partner, so that a merge costs
    O(n) updates plus a rescan of the rows that pointed at the merged pair.
    """
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    sim = embeddings.astype(np.float32) @ embeddings.T.astype(np.float32)
    np.fill_diagonal(sim, -np.inf)
    mass = weights.copy()
    alive = np.ones(n, dtype=bool)
    labels = np.arange(n)
    best = np.argmax(sim, axis=1)
    rows = np.arange(n)
    clusters = n
    while clusters > 1:
        i = int(np.argmax(np.where(alive, sim[rows, best], -np.inf)))
        j = int(best[i])
        if sim[i, j] < threshold and clusters <= max_clusters:
            break
        merged = (mass[i] * sim[i] + mass[j] * sim[j]) / (mass[i] + mass[j])
        sim[i], sim[:, i] = merged, merged
        sim[i, i] = -np.inf
        sim[j], sim[:, j] = -np.inf, -np.inf
        mass[i] += mass[j]
        alive[j] = False
        labels[labels == j] = i
        clusters -= 1
        stale = alive & ((best == i) | (best == j))
        best[stale] = np.argmax(sim[stale], axis=1)
        better = alive & (sim[:, i] > sim[rows, best])
        best[better] = i
        best[i] = int(np.argmax(sim[i]))
    return np.unique(labels, return_inverse=True)[1]


def fold_small_clusters(
    labels: np.ndarray, embeddings: np.ndarray, weights: np.ndarray, min_mass: float
) -> np.ndarray:
    """Moves every cluster lighter than `min_mass` into the nearest heavier one (centroids)."""
    labels = labels.copy()
    while True:
        ids, inverse = np.unique(labels, return_inverse=True)
        mass = np.bincount(inverse, weights=weights)
        if len(ids) < 2 or mass.min() >= min_mass:
            return np.unique(labels, return_inverse=True)[1]
        centroids = np.stack([embeddings[inverse == k].mean(axis=0) for k in range(len(ids))])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        small = int(np.argmin(mass))
        sim = centroids @ centroids[small]
        sim[small] = -np.inf
        labels[inverse == small] = ids[int(np.argmax(sim))]


def pair_weights(windows: Sequence[_Window]) -> np.ndarray:
    """Weights of window pairs for cluster similarities: the product of their durations,
    zero for pairs that share audio (their similarity says nothing about the voice)."""
    starts = np.array([w.start for w in windows])
    ends = starts + np.array([w.size for w in windows])
    disjoint = (starts[:, None] >= ends[None, :]) | (starts[None, :] >= ends[:, None])
    duration = ((ends - starts) * FRAME_S).astype(np.float32)
    return np.outer(duration, duration) * disjoint


def cluster_similarities(
    labels: np.ndarray, similarity: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean cosine similarity of window pairs, weighted by `pairs`, within each cluster (k,)
    and between clusters (k, k); NaN where no pair has weight. `similarity` is the windows'
    cosine matrix."""
    members = np.zeros((len(labels), int(labels.max()) + 1), dtype=np.float32)
    members[np.arange(len(labels)), labels] = 1.0
    weighted = members.T @ (similarity * pairs) @ members
    total = members.T @ pairs @ members
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(total > 0, weighted / total, np.nan)
    return np.diag(mean).copy(), mean


def merge_low_contrast(
    labels: np.ndarray,
    embeddings: np.ndarray,
    weights: np.ndarray,
    pairs: np.ndarray,
    min_contrast: float,
) -> np.ndarray:
    """Merges the pair of clusters with the lowest contrast while it is below `min_contrast`.

    Contrast: the two clusters' within-cluster similarities, averaged by speech duration
    (a few near-identical windows must not keep a cluster apart), minus their
    between-cluster similarity. `pairs` weighs window pairs (see `pair_weights`).
    """
    labels = np.unique(labels, return_inverse=True)[1]
    similarity = embeddings @ embeddings.T
    while labels.max() > 0:
        within, between = cluster_similarities(labels, similarity, pairs)
        mass = np.where(np.isnan(within), 0.0, np.bincount(labels, weights=weights))
        own = np.nan_to_num(within) * mass
        with np.errstate(invalid="ignore", divide="ignore"):
            contrast = (own[:, None] + own[None, :]) / (mass[:, None] + mass[None, :]) - between
        contrast[~np.isfinite(contrast)] = np.inf  # nothing to compare: left apart
        np.fill_diagonal(contrast, np.inf)
        i, j = np.unravel_index(int(np.argmin(contrast)), contrast.shape)
        if contrast[i, j] >= min_contrast:
            break
        labels = np.unique(np.where(labels == j, i, labels), return_inverse=True)[1]
    return labels


def _turns(
    regions: list[tuple[int, int]], windows: list[_Window], labels: np.ndarray, merge_gap_s: float
) -> list[Turn]:
    """Each speech frame takes the label of the nearest window centre in its region."""
    pieces: list[tuple[float, float, int]] = []
    centres = np.array([w.start + w.size / 2 for w in windows])
    owner = np.array([w.region for w in windows])
    for index, (a, b) in enumerate(regions):
        mine = np.flatnonzero(owner == index)  # in time order
        frames = np.arange(a // HOP, max(a // HOP + 1, b // HOP)) + 0.5
        nearest = mine[_nearest(centres[mine], frames)]
        changes = np.flatnonzero(np.diff(labels[nearest])) + 1
        bounds = [a / SAMPLE_RATE, *((a // HOP + changes) * FRAME_S), b / SAMPLE_RATE]
        segment_labels = labels[nearest[np.concatenate([[0], changes])]]
        pieces += [(bounds[k], bounds[k + 1], int(lab)) for k, lab in enumerate(segment_labels)]
    return _renumber(_merge(pieces, merge_gap_s))


def _nearest(sorted_points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of the nearest of `sorted_points` for each query."""
    right = np.clip(np.searchsorted(sorted_points, queries), 1, len(sorted_points) - 1)
    left = right - 1
    if len(sorted_points) == 1:
        return np.zeros(len(queries), dtype=np.int64)
    closer_left = queries - sorted_points[left] <= sorted_points[right] - queries
    return np.where(closer_left, left, right)


def _merge(pieces: list[tuple[float, float, int]], gap: float) -> list[tuple[float, float, int]]:
    merged: list[tuple[float, float, int]] = []
    for start, end, label in pieces:
        if merged and merged[-1][2] == label and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], end, label)
        else:
            merged.append((start, end, label))
    return merged


def _renumber(pieces: Sequence[tuple[float, float, Any]]) -> list[Turn]:
    """Speakers become 0, 1, … in order of first appearance."""
    order: dict[Any, int] = {}
    turns = []
    for start, end, label in sorted(pieces, key=lambda p: (p[0], p[1])):
        speaker = order.setdefault(label, len(order))
        turns.append(Turn(round(float(start), 3), round(float(end), 3), speaker))
    return turns


# -- pyannote adapter ----------------------------------------------------------------


class PyannoteDiarizer:
    """pyannote.audio's pipeline from a local configuration (the operator's own weights).

    pyannote.audio (and torch) are not Visio dependencies: install them, download the
    pipeline and its models yourself, and point `config_path` at the pipeline's
    config.yaml. Nothing is fetched from a hub.
    """

    def __init__(self, config_path: str | Path) -> None:
        try:
            from pyannote.audio import Pipeline  # type: ignore[import-not-found]
        except ImportError as exc:
            raise SpeakerModelError(
                "the pyannote diarizer needs pyannote.audio, which Visio does not install: "
                "pip install pyannote.audio, and give the path of a local pipeline config.yaml"
            ) from exc
        path = Path(config_path)
        if not path.is_file():
            raise SpeakerModelError(f"pyannote pipeline configuration not found: {path}")
        self._pipeline = Pipeline.from_pretrained(path)

    def diarize(self, audio16k: np.ndarray, max_speakers: int = 8) -> list[Turn]:
        import torch  # type: ignore[import-not-found]

        waveform = torch.from_numpy(np.asarray(audio16k, dtype=np.float32)[None, :])
        result = self._pipeline(
            {"waveform": waveform, "sample_rate": SAMPLE_RATE}, max_speakers=max_speakers
        )
        annotation = getattr(result, "speaker_diarization", result)  # pyannote 4 wraps it
        pieces = [
            (float(seg.start), float(seg.end), label)
            for seg, _track, label in annotation.itertracks(yield_label=True)
        ]
        return _renumber(pieces)


def load_diarizer(spec: str) -> Diarizer:
    """The diarizer a setting names: "" or "embedded" (EmbeddingDiarizer),
    "pyannote:/path/config.yaml", or "package.module:ClassName" (built with no argument)."""
    spec = spec.strip()
    if spec in ("", "embedded"):
        return EmbeddingDiarizer()
    if spec.startswith("pyannote:"):
        path = spec.removeprefix("pyannote:").strip()
        if not path:
            raise ValueError("diarizer 'pyannote:' needs a path: pyannote:/path/to/config.yaml")
        return PyannoteDiarizer(path)
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name.isidentifier():
        raise ValueError(
            f"bad diarizer {spec!r}: expected '', 'embedded', 'pyannote:/path/config.yaml' "
            "or 'package.module:ClassName'"
        )
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"bad diarizer {spec!r}: {exc}") from exc
    diarizer = cls()
    if not callable(getattr(diarizer, "diarize", None)):
        raise ValueError(f"bad diarizer {spec!r}: {class_name} has no diarize() method")
    return diarizer


# -- evaluation ----------------------------------------------------------------------

_DER_STEP = 0.01


def diarization_error_rate(
    reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.25
) -> float:
    """(missed + false alarm + confusion) / reference speech, on 10 ms frames.

    Frames within `collar` seconds of a reference turn's start or end are not scored.
    Hypothesis speakers are mapped one-to-one onto reference speakers to maximise the
    agreement (exhaustive for up to 8 speakers, greedy beyond). Overlapping speech
    counts once per speaker. No reference speech: 0.0 if the hypothesis is silent too,
    else infinity.
    """
    end = max((t.end for t in (*reference, *hypothesis)), default=0.0)
    n = math.ceil(end / _DER_STEP) + 1
    scored = np.ones(n, dtype=bool)
    for turn in reference:
        for edge in (turn.start, turn.end):
            scored[_frame(edge - collar) : _frame(edge + collar)] = False
    ref = _activity(reference, n)[:, scored]
    hyp = _activity(hypothesis, n)[:, scored]
    ref_count, hyp_count = ref.sum(axis=0), hyp.sum(axis=0)
    total = int(ref_count.sum())
    if total == 0:
        return 0.0 if hyp_count.sum() == 0 else math.inf
    overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)
    matched = _best_mapping(overlap)
    missed = np.maximum(ref_count - hyp_count, 0).sum()
    false_alarm = np.maximum(hyp_count - ref_count, 0).sum()
    confusion = np.minimum(ref_count, hyp_count).sum() - matched
    return float(missed + false_alarm + confusion) / total


def _frame(t: float) -> int:
    return max(0, round(t / _DER_STEP))


def _activity(turns: Sequence[Turn], n: int) -> np.ndarray:
    speakers = sorted({t.speaker for t in turns})
    active = np.zeros((len(speakers), n), dtype=bool)
    for turn in turns:
        active[speakers.index(turn.speaker), _frame(turn.start) : _frame(turn.end)] = True
    return active


def _best_mapping(overlap: np.ndarray) -> int:
    """The largest total overlap of a one-to-one reference↔hypothesis speaker mapping."""
    if overlap.size == 0:
        return 0
    if overlap.shape[0] < overlap.shape[1]:
        overlap = overlap.T
    rows, cols = overlap.shape  # cols <= rows: each column picks a distinct row
    if rows <= 8:
        return max(
            int(sum(overlap[r, c] for c, r in enumerate(perm)))
            for perm in itertools.permutations(range(rows), cols)
        )
    total, free = 0, overlap.astype(np.float64)
    for _ in range(cols):
        r, c = np.unravel_index(int(np.argmax(free)), free.shape)
        total += int(overlap[r, c])
        free[r, :], free[:, c] = -1, -1
    return total
