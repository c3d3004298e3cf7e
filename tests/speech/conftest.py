"""Speech tests: one Whisper model (the default, assembled from its wheels) per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from visio.speech.model import resolve_model_dir
from visio.speech.recognizer import Recognizer


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_model_dir(None, tmp_path_factory.mktemp("speech-cache"))


@pytest.fixture(scope="session")
def recognizer(model_dir: Path) -> Recognizer:
    return Recognizer(model_dir, threads=2)


@pytest.fixture(scope="session", autouse=True)
def _espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (test.sh installs it)")
