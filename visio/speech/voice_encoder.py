"""Resemblyzer's speaker encoder (GE2E, 3-layer LSTM) run with numpy only, without torch.

The weights are the `pretrained.pt` shipped inside the `resemblyzer` wheel (installed with
`--no-deps`; the package itself is never imported, as it imports torch). The checkpoint is
read by a restricted unpickler that understands the two torch file formats and turns
tensors into numpy arrays; nothing but tensors, storages and ordered dicts may be built.

Preprocessing follows resemblyzer 0.1.4: 16 kHz audio raised to -30 dBFS (never lowered),
a 40-band slaney mel power spectrogram (25 ms Hann window, 10 ms hop, centred frames as
librosa computes them), and partial utterances of 160 frames for `embed_utterance`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.metadata
import pickle
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
FRAME_S = HOP / SAMPLE_RATE
PARTIAL_FRAMES = 160
HIDDEN = 256
N_LAYERS = 3
EMBEDDING_SIZE = 256
TARGET_DBFS = -30.0
INT16_MAX = 2**15 - 1

INSTALL_HINT = (
    'install resemblyzer==0.1.4 with --no-deps: pip install --no-deps "resemblyzer==0.1.4"'
)


class SpeakerModelError(RuntimeError):
    """The speaker encoder's weights are missing or unreadable."""


# -- torch checkpoint reader ----------------------------------------------------------

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,  # no numpy equivalent: refused below
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: Any


class _Storage:
    """A torch storage; legacy files only give its bytes after the main pickle."""

    def __init__(self, dtype: Any, numel: int) -> None:
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.array: np.ndarray | None = None

    def fill(self, data: bytes) -> None:
        if len(data) != self.numel * self.dtype.itemsize:
            raise SpeakerModelError("truncated tensor data in the checkpoint")
        self.array = np.frombuffer(data, dtype=self.dtype.newbyteorder("<"))


@dataclass(frozen=True)
class _View:
    base: _Storage
    offset: int
    numel: int


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage | _View
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        storage, offset = self.storage, self.offset
        if isinstance(storage, _View):
            storage, offset = storage.base, offset + storage.offset
        if storage.array is None:
            raise SpeakerModelError("a tensor's storage is missing from the checkpoint")
        last = offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride, strict=True))
        if self.shape and min(self.shape) > 0 and last >= storage.numel:
            raise SpeakerModelError("a tensor reaches past its storage in the checkpoint")
        flat = storage.array[offset:]
        strides = tuple(s * flat.itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(flat, self.shape, strides).copy()


def _rebuild_tensor_v2(
    storage: _Storage | _View, offset: int, shape: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _Tensor:
    return _Tensor(storage, offset, tuple(shape), tuple(stride))


def _rebuild_parameter(data: _Tensor, *_: Any) -> _Tensor:
    return data


def _globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): OrderedDict,
    }
    for name, dtype in _DTYPES.items():
        if dtype is not None:
            allowed["torch", name] = _StorageType(dtype)
    return allowed


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], storage: Callable[[tuple[Any, ...]], Any]) -> None:
        super().__init__(file)
        self._storage = storage
        self._allowed = _globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"unexpected object in checkpoint: {module}.{name}"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id in checkpoint: {pid!r}")
        if not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type in checkpoint: {pid[1]!r}")
        return self._storage(pid)


def _materialize(value: Any) -> Any:
    if isinstance(value, _Tensor):
        return value.to_numpy()
    if isinstance(value, dict):
        return type(value)((k, _materialize(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_materialize(v) for v in value)
    return value


def _load_legacy(file: IO[bytes]) -> Any:
    """torch < 1.6 format: magic, version, sys info, main pickle, storage keys, raw storages."""
    magic = pickle.load(file)
    if magic != 0x1950A86A20F9469CFC6C:
        raise SpeakerModelError("not a torch checkpoint (bad magic number)")
    if pickle.load(file) != 1001:
        raise SpeakerModelError("unsupported torch checkpoint version")
    sys_info = pickle.load(file)
    if not sys_info.get("little_endian", True):
        raise SpeakerModelError("big-endian torch checkpoints are not supported")
    roots: dict[str, _Storage] = {}

    def storage(pid: tuple[Any, ...]) -> _Storage | _View:
        _, kind, key, _location, numel, view = pid
        root = roots.setdefault(key, _Storage(kind.dtype, numel))
        if view is None:
            return root
        _view_key, offset, view_numel = view
        return _View(root, offset, view_numel)

    result = _CheckpointUnpickler(file, storage).load()
    for key in pickle.load(file):
        root = roots[key]
        numel = int.from_bytes(file.read(8), "little")
        if numel != root.numel:
            raise SpeakerModelError("tensor size mismatch in the checkpoint")
        root.fill(file.read(numel * root.dtype.itemsize))
    return _materialize(result)


def _load_zip(path: Path) -> Any:
    """torch >= 1.6 format: a zip with <name>/data.pkl and one <name>/data/<key> per storage."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise SpeakerModelError("not a torch checkpoint (no single data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in archive.namelist():
            if archive.read(prefix + "byteorder").strip() != b"little":
                raise SpeakerModelError("big-endian torch checkpoints are not supported")
        storages: dict[str, _Storage] = {}

        def storage(pid: tuple[Any, ...]) -> _Storage:
            _, kind, key, _location, numel = pid[:5]
            if key not in storages:
                storages[key] = _Storage(kind.dtype, numel)
                storages[key].fill(archive.read(f"{prefix}data/{key}"))
            return storages[key]

        with archive.open(pickles[0]) as data:
            return _materialize(_CheckpointUnpickler(data, storage).load())


def load_checkpoint(path: Path) -> Any:
    """A torch checkpoint's content with every tensor as a numpy array."""
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with path.open("rb") as file:
            return _load_legacy(file)
    except (OSError, EOFError, KeyError, ValueError, TypeError, pickle.UnpicklingError) as exc:
        raise SpeakerModelError(f"cannot read the speaker encoder weights {path}: {exc}") from exc


def weights_path() -> Path:
    """resemblyzer's `pretrained.pt`, found through the package's installed file list."""
    try:
        files = importlib.metadata.files("resemblyzer") or []
    except importlib.metadata.PackageNotFoundError:
        raise SpeakerModelError(f"speaker encoder weights not found: {INSTALL_HINT}") from None
    for entry in files:
        if entry.name == "pretrained.pt":
            path = Path(str(entry.locate()))
            if path.is_file():
                return path
    raise SpeakerModelError(f"resemblyzer has no pretrained.pt: {INSTALL_HINT}")


# -- features ------------------------------------------------------------------------


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_region = hz >= 1000.0
    mel[log_region] = 15.0 + np.log(hz[log_region] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = mel * (200.0 / 3)
    log_region = mel >= 15.0
    hz[log_region] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_region] - 15.0))
    return hz


@functools.cache
def mel_filterbank(sr: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels) (slaney scale and norm):
    (n_mels, 1 + n_fft // 2)."""
    fft_hz = np.linspace(0.0, sr / 2, 1 + n_fft // 2)
    edges = np.array([0.0, sr / 2])
    band_hz = _mel_to_hz(np.linspace(*_hz_to_mel(edges), n_mels + 2))
    widths = np.diff(band_hz)
    ramps = band_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (band_hz[2:] - band_hz[:-2]))[:, None]
    weights.setflags(write=False)
    return weights


@functools.cache
def _hann() -> np.ndarray:
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic, as librosa's
    window.setflags(write=False)
    return window


def mel_spectrogram(wav: np.ndarray, block: int = 1024) -> np.ndarray:
    """Mel power spectrogram, (1 + len(wav) // HOP, N_MELS) float32, not logarithmic.

    Frames are centred with reflect padding (librosa's default before 0.10, which the
    encoder was trained with). Computed in blocks of frames to bound memory on long audio.
    """
    wav = np.asarray(wav, dtype=np.float32)
    if wav.size == 0:
        return np.zeros((0, N_MELS), dtype=np.float32)
    padded = np.pad(wav, N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    basis = mel_filterbank().T
    out = np.empty((len(frames), N_MELS), dtype=np.float32)
    for start in range(0, len(frames), block):
        chunk = frames[start : start + block].astype(np.float64) * _hann()
        power = np.abs(np.fft.rfft(chunk, axis=1)) ** 2
        out[start : start + block] = power @ basis
    return out


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the level to `target_dbfs`, as resemblyzer's preprocess_wav."""
    wav = np.asarray(wav, dtype=np.float32)
    rms = float(np.sqrt(np.mean(np.square(wav * INT16_MAX, dtype=np.float64)))) if wav.size else 0
    if rms == 0.0:
        return wav
    change = target_dbfs - 20 * np.log10(rms / INT16_MAX)
    if change < 0:
        return wav
    return (wav * np.float32(10 ** (change / 20))).astype(np.float32)


# -- network -------------------------------------------------------------------------


@dataclass(frozen=True)
class _LstmLayer:
    w_ih: np.ndarray  # (input, 4H), gates in PyTorch's order i, f, g, o
    w_hh: np.ndarray  # (H, 4H)
    bias: np.ndarray  # (4H,) = bias_ih + bias_hh


# tanh(x/2)/2 + 1/2 is the logistic function: one tanh call serves all four gates.
_GATE_SCALE = np.concatenate(
    [np.full(HIDDEN, 0.5), np.full(HIDDEN, 0.5), np.ones(HIDDEN), np.full(HIDDEN, 0.5)]
).astype(np.float32)


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if array.shape != shape:
        raise SpeakerModelError(f"{name} has shape {array.shape}, expected {shape}")
    return array.astype(np.float32)


def _layers(state: dict[str, np.ndarray]) -> list[_LstmLayer]:
    layers = []
    for k in range(N_LAYERS):
        n_in = N_MELS if k == 0 else HIDDEN
        w_ih = _check_shape(
            f"lstm.weight_ih_l{k}", state[f"lstm.weight_ih_l{k}"], (4 * HIDDEN, n_in)
        )
        w_hh = _check_shape(
            f"lstm.weight_hh_l{k}", state[f"lstm.weight_hh_l{k}"], (4 * HIDDEN, HIDDEN)
        )
        b_ih = _check_shape(f"lstm.bias_ih_l{k}", state[f"lstm.bias_ih_l{k}"], (4 * HIDDEN,))
        b_hh = _check_shape(f"lstm.bias_hh_l{k}", state[f"lstm.bias_hh_l{k}"], (4 * HIDDEN,))
        layers.append(
            _LstmLayer(np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), b_ih + b_hh)
        )
    return layers


class VoiceEncoder:
    """Speaker embeddings: 256 non-negative values of unit norm; same voice, high cosine."""

    _cached: VoiceEncoder | None = None
    _lock = threading.Lock()

    def __init__(self, state: dict[str, np.ndarray]) -> None:
        try:
            self._layers = _layers(state)
            self._linear_w = np.ascontiguousarray(
                _check_shape("linear.weight", state["linear.weight"], (EMBEDDING_SIZE, HIDDEN)).T
            )
            self._linear_b = _check_shape("linear.bias", state["linear.bias"], (EMBEDDING_SIZE,))
        except KeyError as exc:
            raise SpeakerModelError(f"speaker encoder weights lack {exc}") from None

    @classmethod
    def load(cls, path: Path | None = None) -> VoiceEncoder:
        """The encoder with resemblyzer's weights (loaded once per process by default)."""
        if path is not None:
            return cls(_model_state(load_checkpoint(path)))
        with cls._lock:
            if cls._cached is None:
                cls._cached = cls(_model_state(load_checkpoint(weights_path())))
            return cls._cached

    def forward(self, mels: np.ndarray, batch: int = 64) -> np.ndarray:
        """Embeddings of a batch of equally long mel windows (B, T, N_MELS) -> (B, 256)."""
        mels = np.asarray(mels, dtype=np.float32)
        if mels.ndim != 3 or mels.shape[2] != N_MELS or mels.shape[1] == 0:
            raise ValueError(f"expected mel windows (batch, frames, {N_MELS}), got {mels.shape}")
        parts = [self._forward(mels[i : i + batch]) for i in range(0, len(mels), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, EMBEDDING_SIZE), np.float32)

    def _forward(self, mels: np.ndarray) -> np.ndarray:
        with single_threaded_blas():
            return self._network(mels)

    def _network(self, mels: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(mels.transpose(1, 0, 2))  # (T, B, features): time-major
        for layer in self._layers[:-1]:
            x = _run_lstm(layer, x, keep_outputs=True)[1]
        hidden = _run_lstm(self._layers[-1], x, keep_outputs=False)[0]
        raw = np.maximum(hidden @ self._linear_w + self._linear_b, 0.0)
        return _unit(raw)

    def embed_utterance(
        self, audio16k: np.ndarray, rate: float = 1.3, min_coverage: float = 0.75
    ) -> np.ndarray:
        """One embedding for a whole utterance: the normalised mean of 1.6 s partials."""
        wav = normalize_volume(_mono(audio16k))
        if wav.size == 0:
            raise ValueError("cannot embed empty audio")
        wav_slices, mel_slices = partial_slices(len(wav), rate, min_coverage)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = mel_spectrogram(wav)
        partials = self.forward(np.stack([mel[s] for s in mel_slices]))
        return _unit(partials.mean(axis=0))

    def embed_windows(
        self,
        audio16k: np.ndarray,
        window_s: float = 1.5,
        hop_s: float = 0.75,
        normalize: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of sliding windows: (centres in seconds (n,), embeddings (n, 256)).

        Audio shorter than a window gives one window over all of it; otherwise a last window
        is aligned on the end so that the tail is covered.
        """
        wav = _mono(audio16k)
        if normalize:
            wav = normalize_volume(wav)
        if wav.size == 0:
            return np.zeros(0), np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
        mel = mel_spectrogram(wav)
        starts, size = window_starts(len(mel), round(window_s / FRAME_S), round(hop_s / FRAME_S))
        windows = np.stack([mel[s : s + size] for s in starts])
        centres = (starts + size / 2) * FRAME_S
        return centres, self.forward(windows)


def _run_lstm(
    layer: _LstmLayer, x: np.ndarray, keep_outputs: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """One LSTM layer over time-major input (T, B, in): last hidden state (B, H), and all
    of them (T, B, H) if asked. The input projection of every step is one matrix product."""
    steps, batch = x.shape[:2]
    projected = (x.reshape(steps * batch, -1) @ layer.w_ih + layer.bias).reshape(steps, batch, -1)
    h = np.zeros((batch, HIDDEN), dtype=np.float32)
    c = np.zeros((batch, HIDDEN), dtype=np.float32)
    outputs = np.empty((steps, batch, HIDDEN), dtype=np.float32) if keep_outputs else None
    for t in range(steps):
        gates = np.tanh((projected[t] + h @ layer.w_hh) * _GATE_SCALE)
        i, f, g, o = np.split(gates, 4, axis=1)
        c = (0.5 * f + 0.5) * c + (0.5 * i + 0.5) * g
        h = (0.5 * o + 0.5) * np.tanh(c)
        if outputs is not None:
            outputs[t] = h
    return h, outputs


# -- BLAS threads --------------------------------------------------------------------

_BLAS_LOCK = threading.Lock()
_blas_users = 0
_blas_threads_before = 0


@functools.cache
def _openblas_controls() -> tuple[Any, Any] | None:
    """(set, get) thread-count functions of the OpenBLAS numpy has loaded, if any."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower()}
    for path in sorted(p for p in paths if p.startswith("/")):
        library = ctypes.CDLL(path)  # already loaded: the same handle, nothing is re-run
        for name in ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_"):
            for variant in (name, name.removesuffix("64_")):
                setter = getattr(library, variant.format("set"), None)
                getter = getattr(library, variant.format("get"), None)
                if setter is not None and getter is not None:
                    return setter, getter
    return None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Runs the block with numpy's OpenBLAS on one thread (process-wide while it lasts).

    The LSTM makes hundreds of small matrix products per window. On a busy machine (Whisper
    on the same cores) OpenBLAS' second thread waits for a core at every one of them:
    measured 4 to 17 times slower than one thread, which is only 1.3 times slower when
    the machine is idle.
    """
    global _blas_users, _blas_threads_before
    controls = _openblas_controls()
    if controls is None:
        yield
        return
    set_threads, get_threads = controls
    with _BLAS_LOCK:
        if _blas_users == 0:
            _blas_threads_before = int(get_threads())
            set_threads(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _blas_users -= 1
            if _blas_users == 0:
                set_threads(_blas_threads_before)


def partial_slices(
    n_samples: int, rate: float = 1.3, min_coverage: float = 0.75
) -> tuple[list[slice], list[slice]]:
    """resemblyzer's VoiceEncoder.compute_partial_slices: (wav slices, mel slices)."""
    if not 0 < min_coverage <= 1:
        raise ValueError("min_coverage must be in (0, 1]")
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    frame_step = int(np.round((SAMPLE_RATE / rate) / HOP))
    if not 0 < frame_step <= PARTIAL_FRAMES:
        raise ValueError(f"rate {rate} out of range")
    steps = max(1, n_frames - PARTIAL_FRAMES + frame_step + 1)
    mel_slices = [slice(i, i + PARTIAL_FRAMES) for i in range(0, steps, frame_step)]
    wav_slices = [slice(s.start * HOP, s.stop * HOP) for s in mel_slices]
    last = wav_slices[-1]
    coverage = (n_samples - last.start) / (last.stop - last.start)
    if coverage < min_coverage and len(mel_slices) > 1:
        mel_slices, wav_slices = mel_slices[:-1], wav_slices[:-1]
    return wav_slices, mel_slices


def window_starts(n_frames: int, size: int, hop: int) -> tuple[np.ndarray, int]:
    """Start frames of sliding windows over `n_frames`, and the (possibly shortened) size."""
    if size <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if n_frames <= size:
        return np.zeros(1, dtype=np.int64), n_frames
    starts = list(range(0, n_frames - size + 1, hop))
    if starts[-1] + size < n_frames:
        starts.append(n_frames - size)
    return np.array(starts, dtype=np.int64), size


def _model_state(checkpoint: Any) -> dict[str, np.ndarray]:
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise SpeakerModelError("the checkpoint has no model_state")
    return state


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (samples,), got shape {audio.shape}")
    return audio


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
