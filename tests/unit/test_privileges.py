"""privileges: root is refused unless allowed; what is written afterwards is private."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from visio.config import ConfigError, load_settings
from visio.privileges import private_files, refuse_root

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")


@as_root
def test_root_is_refused_with_what_to_do():
    with pytest.raises(ConfigError) as refused:
        refuse_root(load_settings(), "serve")
    message = str(refused.value)
    assert message.startswith("refusing to run `visio serve` as root")
    assert "runuser -u visio" in message and "User=visio" in message
    assert "allow_root = true" in message


@as_root
def test_allow_root_lets_root_run(monkeypatch):
    refuse_root(load_settings(allow_root=True), "worker")
    monkeypatch.setenv("VISIO_ALLOW_ROOT", "true")
    refuse_root(load_settings(), "serve")


@pytest.fixture
def umask() -> Iterator[None]:
    """private_files sets the process' umask: give the test run its own back."""
    previous = os.umask(0o022)
    os.umask(previous)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_and_folders_are_for_this_user_only(tmp_path, umask):
    os.umask(0o022)
    private_files(load_settings(data_dir=tmp_path / "new" / "data"))
    assert mode(tmp_path / "new" / "data") == 0o700
    (tmp_path / "janus.jcfg").write_text("api_secret = x")
    (tmp_path / "captures").mkdir()
    assert (mode(tmp_path / "janus.jcfg"), mode(tmp_path / "captures")) == (0o600, 0o700)


def test_a_data_dir_left_open_by_an_older_version_is_closed(tmp_path, umask):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "visio.db").write_text("")
    private_files(load_settings(data_dir=data))
    assert mode(data) == 0o700
