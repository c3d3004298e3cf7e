"""Least privilege (security audit H2, M4): the server, its Janus and the transcription
tools run as an unprivileged user, root is refused, and what they write is private."""

from __future__ import annotations

import asyncio
import os
import pwd
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from tests.integration.speaking import wait_for_status
from visio.testing.server import SERVICE_USER

pytestmark = pytest.mark.integration


def groups_of(pid: int) -> set[int]:
    """The supplementary groups of a process (the `Groups:` line of /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Groups:"):
            return {int(group) for group in line.split()[1:]}
    raise AssertionError(f"no Groups line for {pid}")


def test_the_server_and_its_janus_run_as_the_service_user(server):
    account = pwd.getpwnam(SERVICE_USER)
    assert account.pw_uid != 0 and account.pw_gid != 0
    visio = psutil.Process(server.process.pid)
    janus = [child for child in visio.children(recursive=True) if child.name() == "janus"]
    assert len(janus) == 1, visio.children(recursive=True)
    for process in (visio, *janus):
        assert set(process.uids()) == {account.pw_uid}, process
        assert set(process.gids()) == {account.pw_gid}, process
        assert groups_of(process.pid) <= {account.pw_gid}, process


def private(path: Path) -> bool:
    return stat.S_IMODE(path.lstat().st_mode) & 0o077 == 0


async def test_what_the_server_writes_is_private_to_its_user(server, people, bots):
    """A meeting recorded and mixed (Janus, janus-pp-rec, ffmpeg): every file and folder
    under the data dir is its user's alone, Janus' secrets and the database included."""
    alice = await people.signed_in("alice")
    room = await alice.new_room(name="Private")
    owner = await bots.join(room, "Alice", cookies=alice.cookies)
    await owner.send({"type": "capture", "kind": "recording", "on": True})
    await owner.wait_for(lambda f: f["type"] == "room" and f["room"]["capture"]["recording"])
    await asyncio.sleep(2)
    await owner.send({"type": "end"})
    await owner.wait_for(lambda f: f["type"] == "ended")
    capture = await wait_for_status(alice, room, "done", "failed")
    assert capture["status"] == "done", capture["error"]

    data = server.data_dir
    folder = data / "captures" / capture["id"]
    written = [
        data / "visio.db",
        data / "session_secret",
        data / "janus" / "janus.jcfg",
        data / "janus" / "janus.plugin.videoroom.jcfg",
        folder / "manifest.json",
        folder / "recording.ogg",
    ]
    uid = pwd.getpwnam(SERVICE_USER).pw_uid
    for path in written:
        assert path.stat().st_uid == uid, path
    everything = [data, *data.rglob("*")]
    exposed = [f"{p} {stat.filemode(p.lstat().st_mode)}" for p in everything if not private(p)]
    assert not exposed, exposed


def test_serve_refuses_to_run_as_root(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "visio", "serve", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("VISIO_")},
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to run `visio serve` as root" in result.stderr
    assert "allow_root" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_serve_says_when_its_user_cannot_write_the_data_dir():
    account = pwd.getpwnam(SERVICE_USER)
    data = Path(tempfile.mkdtemp(prefix="visio-test-root-owned-"))
    data.chmod(0o755)  # the service user may look, not write
    try:
        result = subprocess.run(
            [sys.executable, "-m", "visio", "serve", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("VISIO_")},
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            timeout=30,
        )
    finally:
        data.rmdir()
    assert result.returncode == 2, result.stderr
    assert f"cannot use data_dir {data} as user {SERVICE_USER}: not writable" in result.stderr
    assert f"chown -R {SERVICE_USER} {data}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_speech_model_its_user_cannot_read_is_named_as_such():
    """An operator's model folder readable by root only: the job says so, not 'missing'."""
    account = pwd.getpwnam(SERVICE_USER)
    closed = Path(tempfile.mkdtemp(prefix="visio-test-model-"))  # 0700, root's
    try:
        result = subprocess.run(
            [sys.executable, "-c", CHECK_MODEL, str(closed / "whisper")],
            capture_output=True,
            text=True,
            user=account.pw_uid,
            group=account.pw_gid,
            extra_groups=[],
            timeout=30,
        )
    finally:
        closed.rmdir()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"speech_model_dir {closed / 'whisper'} cannot be read by the user Visio runs as "
        f"(uid {account.pw_uid})"
    ), result.stdout


CHECK_MODEL = """
import sys
from pathlib import Path
from visio.speech.model import ModelError, check_model_dir
try:
    check_model_dir(Path(sys.argv[1]))
except ModelError as exc:
    print(exc)
"""
