"""`visio transcribe FILE…`: the meeting pipeline from the command line, as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from visio.testing.speech import speak

ALICE = "The quarterly report is ready for everyone to read."
BOB = "Thank you, I will send my comments before the weekend."


def visio(model_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VISIO_SPEECH_MODEL_DIR": str(model_dir), "VISIO_DATA_DIR": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "visio", "transcribe", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def padded(path: Path, seconds: float) -> Path:
    """The same speech after some silence, so that two files do not overlap in time."""
    out = path.with_name(f"late-{path.name}")
    delay = f"adelay={int(seconds * 1000)}:all=1"
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(path), "-af", delay]
    subprocess.run([*command, str(out)], check=True)
    return out


def test_two_files_are_two_speakers_in_order(model_dir: Path, tmp_path: Path):
    alice = speak(ALICE, tmp_path / "alice.wav")
    bob = padded(speak(BOB, tmp_path / "bob.wav", voice="en-gb"), 5.0)
    result = visio(model_dir, str(alice), str(bob), "--speaker", "Alice", "--speaker", "Bob",
                   "-o", "out", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(Path(line).name for line in result.stdout.split())
    assert written == [f"transcript.{e}" for e in ("docx", "json", "md", "srt", "vtt")]
    transcript = json.loads((tmp_path / "out" / "transcript.json").read_text())
    assert [s["speaker"] for s in transcript["segments"]] == ["Alice", "Bob"]
    assert "quarterly report" in transcript["segments"][0]["text"].lower()
    assert transcript["language"] == "en"
    assert transcript["segments"][1]["start"] > 4.5


def test_one_track_with_two_voices_is_split(model_dir: Path, tmp_path: Path):
    """A meeting room on one microphone: the voices become "Name (speaker N)"."""
    lines = [
        (ALICE, "en-us", 50),
        (BOB, "en-us+f3", 50),
        ("We meet again next Tuesday at ten in the large room.", "en-us", 50),
        ("Perfect, I will book the room and order some coffee.", "en-us+f3", 50),
    ]
    pause = np.zeros(16_000, dtype=np.float32)
    parts = []
    for index, (text, voice, pitch) in enumerate(lines):
        wav = speak(text, tmp_path / f"{index}.wav", voice=voice, pitch=pitch)
        parts += [_samples(wav), pause]
    room = tmp_path / "room.wav"
    _write_wav(room, np.concatenate(parts))
    result = visio(model_dir, str(room), "--speaker", "Room", "-o", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    segments = json.loads((tmp_path / "room.json").read_text())["segments"]
    speakers = [s["speaker"] for s in segments]
    assert set(speakers) == {"Room (speaker 1)", "Room (speaker 2)"}, segments
    first = {s["speaker"] for s in segments if "quarterly" in s["text"].lower()}
    second = {s["speaker"] for s in segments if "comments" in s["text"].lower()}
    assert first and second and first != second


def test_the_default_model_goes_to_the_user_cache_not_the_working_folder(tmp_path: Path):
    """Run anywhere, `visio transcribe` assembles Whisper in ~/.cache (XDG), not in ./var."""
    work, cache = tmp_path / "work", tmp_path / "cache"
    work.mkdir()
    speak(ALICE, work / "alice.wav")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VISIO_")}
    env["XDG_CACHE_HOME"] = str(cache)
    result = subprocess.run(
        [sys.executable, "-m", "visio", "transcribe", "alice.wav"],
        capture_output=True, text=True, env=env, cwd=work, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (cache / "visio" / "models" / "whisper-base" / "model.bin").is_file()
    assert sorted(p.name for p in work.iterdir()) == [
        f"alice.{e}" for e in ("docx", "json", "md", "srt", "vtt", "wav")
    ]


def test_bad_input_gives_clear_errors(model_dir: Path, tmp_path: Path):
    missing = visio(model_dir, "nope.wav", cwd=tmp_path)
    assert missing.returncode == 2 and "no such file: nope.wav" in missing.stderr
    (tmp_path / "broken.wav").write_bytes(b"RIFF" + os.urandom(2000))
    broken = visio(model_dir, "broken.wav", cwd=tmp_path)
    assert broken.returncode == 1 and "broken.wav" in broken.stderr
    assert "Traceback" not in broken.stderr
    assert not (tmp_path / "broken.json").exists()
    names = visio(model_dir, "broken.wav", "--speaker", "A", "--speaker", "B", cwd=tmp_path)
    assert names.returncode == 2 and "one per file" in names.stderr
    env_model = visio(tmp_path / "no-model", "broken.wav", cwd=tmp_path)
    assert env_model.returncode == 1 and "no-model" in env_model.stderr


def _samples(wav: Path) -> np.ndarray:
    from visio.speech.audio import load_audio

    return load_audio(wav)


def _write_wav(path: Path, samples: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype(np.int16).tobytes())
