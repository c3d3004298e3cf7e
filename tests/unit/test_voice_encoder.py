"""The torch-free port of resemblyzer's speaker encoder: weights, features, network, voices."""

from __future__ import annotations

import importlib.metadata
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from visio.speech import voice_encoder as ve
from visio.speech.voice_encoder import SpeakerModelError, VoiceEncoder

LSTM_SHAPES = {
    **{f"lstm.weight_ih_l{k}": (1024, 40 if k == 0 else 256) for k in range(3)},
    **{f"lstm.weight_hh_l{k}": (1024, 256) for k in range(3)},
    **{f"lstm.bias_ih_l{k}": (1024,) for k in range(3)},
    **{f"lstm.bias_hh_l{k}": (1024,) for k in range(3)},
    "linear.weight": (256, 256),
    "linear.bias": (256,),
}


@pytest.fixture(scope="module")
def state() -> dict[str, np.ndarray]:
    return ve.load_checkpoint(ve.weights_path())["model_state"]


@pytest.fixture(scope="module")
def encoder() -> VoiceEncoder:
    return VoiceEncoder.load()


def test_the_weight_reader_gives_the_network_s_arrays(state: dict[str, np.ndarray]) -> None:
    for name, shape in LSTM_SHAPES.items():
        assert state[name].shape == shape, name
        assert state[name].dtype == np.float32
        assert np.isfinite(state[name]).all()
    # The LSTM weights are views into one flattened (cuDNN) storage: they must differ.
    assert not np.array_equal(state["lstm.weight_hh_l0"], state["lstm.weight_hh_l1"])


def test_the_zip_format_reads_the_same_tensors(
    tmp_path: Path, state: dict[str, np.ndarray]
) -> None:
    """resemblyzer ships the legacy format; torch >= 1.6 writes a zip of the same pickle."""
    legacy = ve.weights_path().read_bytes()
    archive = tmp_path / "zipped.pt"
    with zipfile.ZipFile(archive, "w") as out:
        for name, data in _legacy_parts(legacy).items():
            out.writestr(f"zipped/{name}", data)
    zipped = ve.load_checkpoint(archive)["model_state"]
    assert zipped.keys() == state.keys()
    for name in state:
        np.testing.assert_array_equal(zipped[name], state[name])


def _legacy_parts(data: bytes) -> dict[str, bytes]:
    """Splits a legacy checkpoint into the files a zip checkpoint holds."""
    import io

    stream = io.BytesIO(data)
    for _ in range(3):  # magic number, protocol version, system info
        pickle.load(stream)
    start = stream.tell()
    ve._CheckpointUnpickler(stream, lambda pid: ve._Storage(pid[1].dtype, pid[4])).load()
    parts = {"data.pkl": data[start : stream.tell()], "byteorder": b"little"}
    for key in pickle.load(stream):
        numel = int.from_bytes(stream.read(8), "little")
        parts[f"data/{key}"] = stream.read(numel * 4)  # all float32 in this checkpoint
    return parts


def test_a_checkpoint_may_only_build_tensors(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with path.open("wb") as out:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, out, protocol=2)
        pickle.dump({"model_state": print}, out, protocol=2)  # a global: builtins.print
    with pytest.raises(SpeakerModelError, match=r"unexpected object in checkpoint: .*\.print"):
        ve.load_checkpoint(path)


def test_missing_weights_say_how_to_install_them(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", not_installed)
    with pytest.raises(SpeakerModelError, match=r"resemblyzer==0\.1\.4 with --no-deps"):
        ve.weights_path()


def test_the_mel_filterbank_is_librosa_s() -> None:
    """faster-whisper carries its own port of librosa.filters.mel (slaney): same matrix."""
    from faster_whisper.feature_extractor import FeatureExtractor

    expected = FeatureExtractor.get_mel_filters(16_000, 400, n_mels=40)
    np.testing.assert_allclose(ve.mel_filterbank(), expected, atol=1e-12)


def test_the_mel_spectrogram_has_centred_10_ms_frames() -> None:
    t = np.arange(16_000) / 16_000
    mel = ve.mel_spectrogram(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert mel.shape == (1 + 16_000 // 160, 40)
    band_centres = ve._mel_to_hz(np.linspace(0, ve._hz_to_mel(np.array([8000.0]))[0], 42))[1:-1]
    assert abs(band_centres[int(np.argmax(mel[50]))] - 1000) < 100


def test_partial_slices_follow_resemblyzer() -> None:
    # 1 s: a single partial, kept although it covers only 62 % of 1.6 s.
    assert ve.partial_slices(16_000)[1] == [slice(0, 160)]
    # 3 s: a partial every 77 frames (1.3 per second); the last one covers 91 %.
    wav_slices, mel_slices = ve.partial_slices(48_000)
    assert mel_slices == [slice(0, 160), slice(77, 237), slice(154, 314)]
    assert wav_slices[-1] == slice(154 * 160, 314 * 160)


def test_the_batched_lstm_is_pytorch_s_lstm(
    encoder: VoiceEncoder, state: dict[str, np.ndarray]
) -> None:
    """Against a step-by-step transcription of torch.nn.LSTM's documented equations."""
    mels = np.random.default_rng(0).random((3, 20, 40), dtype=np.float32)
    np.testing.assert_allclose(encoder.forward(mels), _reference(state, mels), atol=2e-5)


def _reference(state: dict[str, np.ndarray], mels: np.ndarray) -> np.ndarray:
    def sigmoid(x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))

    out = []
    for sequence in mels.astype(np.float64):
        inputs = list(sequence)
        for k in range(3):
            h, c, outputs = np.zeros(256), np.zeros(256), []
            for x in inputs:
                z = (
                    state[f"lstm.weight_ih_l{k}"] @ x
                    + state[f"lstm.bias_ih_l{k}"]
                    + state[f"lstm.weight_hh_l{k}"] @ h
                    + state[f"lstm.bias_hh_l{k}"]
                )
                i, f, g, o = z[:256], z[256:512], z[512:768], z[768:]
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
                outputs.append(h)
            inputs = outputs
        raw = np.maximum(state["linear.weight"] @ h + state["linear.bias"], 0)
        out.append(raw / np.linalg.norm(raw))
    return np.array(out)


def test_windows_cover_the_audio(encoder: VoiceEncoder) -> None:
    noise = np.random.default_rng(1).normal(0, 0.1, 16_000 * 4).astype(np.float32)
    times, embeddings = encoder.embed_windows(noise)
    assert embeddings.shape == (len(times), 256)
    np.testing.assert_allclose(times, [0.75, 1.5, 2.25, 3.0, 3.26])  # last one on the end
    times, embeddings = encoder.embed_windows(noise[:8000])
    assert embeddings.shape == (1, 256) and times[0] == pytest.approx(0.255)
    times, embeddings = encoder.embed_windows(np.zeros(0, dtype=np.float32))
    assert times.shape == (0,) and embeddings.shape == (0, 256)


# -- on speech -----------------------------------------------------------------------

# Two clearly different espeak-ng voices: the default American English (male) and its
# female variant f3. Measured: the same voice on two sentences ~0.92, across ~0.68.
VOICE_A, VOICE_B = "en-us", "en-us+f3"
SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please remember to send the quarterly report before Friday afternoon.",
]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], np.ndarray]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (test.sh installs it)")
    from visio.speech.audio import load_audio
    from visio.testing.speech import speak

    folder = tmp_path_factory.mktemp("voices")
    return {
        (voice, n): load_audio(speak(text, folder / f"{voice}-{n}.wav", voice=voice))
        for voice in (VOICE_A, VOICE_B)
        for n, text in enumerate(SENTENCES)
    }


def test_embeddings_are_unit_norm_and_non_negative(
    encoder: VoiceEncoder, speech: dict[tuple[str, int], np.ndarray]
) -> None:
    for audio in speech.values():
        embedding = encoder.embed_utterance(audio)
        assert embedding.shape == (256,) and embedding.dtype == np.float32
        assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)
        assert embedding.min() >= 0  # ReLU before the normalisation


def test_the_same_voice_is_closer_than_another_voice(
    encoder: VoiceEncoder, speech: dict[tuple[str, int], np.ndarray]
) -> None:
    e = {key: encoder.embed_utterance(audio) for key, audio in speech.items()}
    same = [float(e[v, 0] @ e[v, 1]) for v in (VOICE_A, VOICE_B)]
    across = [float(e[VOICE_A, i] @ e[VOICE_B, j]) for i in range(2) for j in range(2)]
    assert min(same) > 0.85, same
    assert max(across) < 0.8, across
    assert min(same) - max(across) > 0.1
