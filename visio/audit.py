"""The audit trail: security-relevant events as JSON lines, in a stream of their own.

One line per event, which an operator ships to their SIEM apart from the application's
logs: who (`by`: the account, the guest's browser, the participant, the client address
as visio.proxies resolved it), when (`ts`, UTC), what (`event`, and the fields that say
what it applied to: room, target, kind, file). Never any content: no chat or caption
text, no transcript, no media, and no display names (a guest types anything there; the
participant id ties a line to what the meeting showed, the account to a person).

A guest is known by a digest of their browser's guest key, never the key itself: the
audit trail links a guest's actions without handing out their cookie.

`audit_log` picks the stream: a folder of files, one per UTC day (`audit-2026-12-05.jsonl`,
appended to and never renamed, so that several processes on a host can share it, and
deleted once `audit_retention_days` old), `stderr`, or `off`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection

from visio.access import Identity
from visio.auth.cookies import GUEST, well_formed
from visio.config import ConfigError, Settings
from visio.db import User

AUDIT = logging.getLogger("visio.audit")
AUDIT.propagate = False  # never mixed into the application's logs
AUDIT.addHandler(logging.NullHandler())  # not configured (a library use): nothing written
log = logging.getLogger("visio.audit-trail")  # about the trail itself: the application's logs
FILE_NAME = re.compile(r"audit-(\d{4}-\d{2}-\d{2})\.jsonl")

Who = dict[str, str]


def who(
    identity: Identity | None,
    address: str | None,
    participant: str | None = None,
    role: str | None = None,
) -> Who:
    """The structured `by` (or `target`) of an event: only what is known, nothing else."""
    found: Who = {}
    if identity is not None and identity.user_id:
        found["user"] = identity.user_id
        if identity.email:
            found["email"] = identity.email
    elif identity is not None and identity.guest_key:
        found["guest"] = guest_digest(identity.guest_key)
    if participant:
        found["participant"] = participant
    if role:
        found["role"] = role
    if address:
        found["address"] = address
    return found


def waiting(identity: Identity, waiter_id: str) -> Who:
    """Someone in a lobby: known by their waiter id until they enter (with a new
    participant id)."""
    return {**who(identity, identity.address), "waiter": waiter_id}


def by_request(request: HTTPConnection, user: User | None) -> Who:
    """Who makes an HTTP request: their account, else their browser's guest key."""
    guest_key = request.cookies.get(GUEST, "")
    identity = Identity(
        user_id=user.id if user else None,
        email=user.email if user else None,
        guest_key=guest_key if well_formed(guest_key) else None,
    )
    return who(identity, request.client.host if request.client else None)


def guest_digest(guest_key: str) -> str:
    return hashlib.sha256(b"visio guest " + guest_key.encode()).hexdigest()[:16]


def record(event: str, by: Who | None, **fields: Any) -> None:
    """Write one event; fields that are None are left out."""
    details = {key: value for key, value in fields.items() if value is not None}
    AUDIT.info(event, extra={"audit": {"event": event, "by": by or {}, **details}})


def room_change(fields: dict[str, Any]) -> dict[str, Any]:
    """What a change of a room's settings says: which ones changed, and their new value
    but for the name (text its owner typed: only that it changed)."""
    changed = {key: value for key, value in fields.items() if value is not None}
    return {
        "changed": sorted(changed),
        **{key: value for key, value in changed.items() if key != "name"},
    }


class AuditFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        entry = {
            "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "logger": AUDIT.name,
            **getattr(record, "audit", {"event": record.getMessage()}),
        }
        return json.dumps(entry, ensure_ascii=False, default=str)


class DailyFiles(logging.Handler):
    """`audit-YYYY-MM-DD.jsonl` in `folder`, one per UTC day, readable by this user only.

    Each line is one append (O_APPEND) of a whole line: processes sharing the folder
    (server processes, `visio rooms`) never interleave or lose lines, and no file is
    ever renamed under another's feet. Files past the retention are deleted whenever a
    day's file is opened, and by `purge` (the server runs it hourly).
    """

    def __init__(self, folder: Path, retention_days: int) -> None:
        super().__init__()
        self.folder = folder
        self.retention_days = retention_days
        self.day: date | None = None
        self.fd: int | None = None
        self.failing = False
        self.setFormatter(AuditFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        day = datetime.fromtimestamp(record.created, UTC).date()
        line = (self.format(record) + "\n").encode()
        try:
            if day != self.day or self.fd is None:
                self._open(day)
            assert self.fd is not None
            os.write(self.fd, line)
        except OSError as exc:
            self._failed(exc)
            return
        self.failing = False

    def _open(self, day: date) -> None:
        self.close_file()
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.folder / f"audit-{day.isoformat()}.jsonl"
        created = not path.exists()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.day = day
        if created and os.geteuid() == 0:  # `visio rooms` run as root: the server writes on
            owner = self.folder.stat()
            os.fchown(self.fd, owner.st_uid, owner.st_gid)
        purge(self.folder, self.retention_days, today=day)

    def _failed(self, exc: OSError) -> None:
        if not self.failing:  # once per outage, not once per event
            log.error("cannot write the audit trail", extra={"error": str(exc)})
        self.failing = True
        self.close_file()

    def close_file(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd, self.day = None, None

    def close(self) -> None:
        self.close_file()
        super().close()


def purge(folder: Path, retention_days: int, today: date | None = None) -> list[Path]:
    """Delete the day files older than the retention; the ones deleted."""
    oldest = (today or datetime.now(UTC).date()) - timedelta(days=retention_days)
    deleted = []
    for path in folder.glob("audit-*.jsonl"):
        match = FILE_NAME.fullmatch(path.name)
        if match is None or date.fromisoformat(match.group(1)) >= oldest:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another process purged it first
        deleted.append(path)
    return deleted


def audit_folder(settings: Settings) -> Path | None:
    """Where the day files go; None for `stderr` and `off`."""
    if settings.audit_log in ("stderr", "off"):
        return None
    return Path(settings.audit_log) if settings.audit_log else settings.data_dir / "audit"


def setup_audit(settings: Settings, *, check: bool = True) -> None:
    """Send the audit events where `audit_log` says (replacing any earlier handler).

    `check` (the server): make the folder now and purge it, ConfigError if it cannot be
    written; a short command (`visio rooms`) leaves that to its first event."""
    for handler in AUDIT.handlers[:]:
        AUDIT.removeHandler(handler)
        handler.close()
    AUDIT.setLevel(logging.INFO)
    folder = audit_folder(settings)
    handler: logging.Handler
    if settings.audit_log == "off":
        handler = logging.NullHandler()
    elif folder is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(AuditFormatter())
    else:
        handler = DailyFiles(folder, settings.audit_retention_days)
        if check:
            _check_writable(folder, settings.audit_retention_days)
    AUDIT.addHandler(handler)


def _check_writable(folder: Path, retention_days: int) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        purge(folder, retention_days)
    except OSError as exc:
        raise ConfigError(f"cannot use audit_log folder {folder}: {exc.strerror or exc}") from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot use audit_log folder {folder}: not writable by this user")


def purge_expired(settings: Settings) -> None:
    folder = audit_folder(settings)
    if folder is not None and folder.is_dir():
        for path in purge(folder, settings.audit_retention_days):
            log.info("audit file expired", extra={"file": path.name})
