"""Least privilege for the long-running commands, `visio serve` and `visio worker`.

Janus, janus-pp-rec, ffmpeg and PyAV parse what anonymous participants send. They are
children of the server (or worker) and run as its user, so that user must not be root:
the service manager (systemd's `User=`, run.sh's `runuser`) picks it before any code runs,
and these commands refuse root rather than silently keep it. What they write (Janus'
secrets, the database, transcripts, recordings) is readable by that user alone.
"""

from __future__ import annotations

import os
import pwd

from visio.config import ConfigError, Settings


def refuse_root(settings: Settings, command: str) -> None:
    """ConfigError when running as root, unless `allow_root` says otherwise."""
    if os.geteuid() != 0 or settings.allow_root:
        return
    raise ConfigError(
        f"refusing to run `visio {command}` as root: Janus, janus-pp-rec and ffmpeg would "
        "parse what participants send with root's rights. Run it as an unprivileged user "
        "(sudo ./run.sh does: runuser -u visio; systemd: User=visio), or set "
        "allow_root = true (VISIO_ALLOW_ROOT=true) to take that risk"
    )


def private_files(settings: Settings) -> None:
    """From now on, files and folders are created for this user only; data_dir is made
    private too (older versions left it readable to every local account)."""
    os.umask(0o077)
    folder = settings.data_dir
    try:
        folder.mkdir(parents=True, exist_ok=True)
        info = folder.stat()
        if info.st_uid == os.geteuid() and info.st_mode & 0o077:
            folder.chmod(0o700)
    except OSError as exc:
        raise ConfigError(_unusable(folder, exc.strerror or str(exc))) from exc
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        raise ConfigError(_unusable(folder, "not writable"))


def _unusable(folder: os.PathLike[str], why: str) -> str:
    user = _user_name()
    return (
        f"cannot use data_dir {folder} as user {user}: {why}. "
        f"Make it owned by that user (chown -R {user} {folder})"
    )


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
