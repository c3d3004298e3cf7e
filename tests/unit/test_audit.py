"""The audit trail's stream: day files kept private and for their retention, stderr, off."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from visio import audit
from visio.access import Identity
from visio.config import ConfigError, load_settings


@pytest.fixture(autouse=True)
def no_audit_stream() -> Iterator[None]:
    yield
    for handler in audit.AUDIT.handlers[:]:
        audit.AUDIT.removeHandler(handler)
        handler.close()
    audit.AUDIT.addHandler(logging.NullHandler())


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def day_file(folder: Path, days_ago: int) -> Path:
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    return folder / f"audit-{day.isoformat()}.jsonl"


def test_events_are_json_lines_in_a_private_file_of_the_day(tmp_path):
    audit.setup_audit(load_settings(data_dir=tmp_path))
    by = audit.who(Identity(user_id="u-1", email="a@x.org"), "192.0.2.7", "p-1", "owner")
    audit.record("moderated", by, room="abc-defg-hij", action="mute", target={"participant": "p-2"})
    path = tmp_path / "audit" / f"audit-{today()}.jsonl"
    (line,) = path.read_text().splitlines()
    event = json.loads(line)
    assert event.pop("ts").endswith("Z")
    assert event == {
        "logger": "visio.audit",
        "event": "moderated",
        "by": {
            "user": "u-1",
            "email": "a@x.org",
            "participant": "p-1",
            "role": "owner",
            "address": "192.0.2.7",
        },
        "room": "abc-defg-hij",
        "action": "mute",
        "target": {"participant": "p-2"},
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_audit_events_stay_out_of_the_application_logs(tmp_path, capsys):
    logging.getLogger().addHandler(handler := logging.StreamHandler())
    try:
        audit.setup_audit(load_settings(data_dir=tmp_path))
        audit.record("sign_out", {"user": "u-1"})
    finally:
        logging.getLogger().removeHandler(handler)
    assert "sign_out" not in capsys.readouterr().err


def test_processes_sharing_the_folder_append_to_the_same_day_file(tmp_path):
    first, second = (audit.DailyFiles(tmp_path, 30) for _ in range(2))
    for n in range(50):
        for handler in (first, second):
            handler.handle(logging.makeLogRecord({"audit": {"event": "e", "n": n}}))
    first.close()
    second.close()
    lines = (tmp_path / f"audit-{today()}.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["n"] for line in lines) == sorted(list(range(50)) * 2)


def test_files_past_the_retention_are_deleted_and_nothing_else(tmp_path):
    folder = tmp_path / "audit"
    folder.mkdir()
    old, kept = day_file(folder, 8), day_file(folder, 7)
    other = folder / "notes.txt"
    for path in (old, kept, other):
        path.write_text("{}\n")
    audit.setup_audit(load_settings(data_dir=tmp_path, audit_retention_days=7))
    assert not old.exists() and kept.exists() and other.exists()
    day_file(folder, 9).write_text("{}\n")
    audit.purge_expired(load_settings(data_dir=tmp_path, audit_retention_days=7))
    assert not day_file(folder, 9).exists() and kept.exists()


def test_stderr_and_off(tmp_path, capsys):
    audit.setup_audit(load_settings(data_dir=tmp_path, audit_log="stderr"))
    audit.record("room_created", {"guest": "abc"}, room="abc-defg-hij")
    event = json.loads(capsys.readouterr().err)
    assert event["event"] == "room_created" and event["by"] == {"guest": "abc"}
    audit.setup_audit(load_settings(data_dir=tmp_path, audit_log="off"))
    audit.record("room_created", {"guest": "abc"}, room="abc-defg-hij")
    assert capsys.readouterr().err == "" and not (tmp_path / "audit").exists()


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "taken").write_text("a file")
    settings = load_settings(data_dir=tmp_path, audit_log=str(tmp_path / "taken"))
    with pytest.raises(ConfigError, match="cannot use audit_log folder"):
        audit.setup_audit(settings)


def test_a_guest_is_known_by_a_digest_of_their_key():
    by = audit.who(Identity(guest_key="k" * 24), None)
    assert by == {"guest": audit.guest_digest("k" * 24)} and "k" * 24 not in by["guest"]


def test_a_room_name_change_says_only_that_it_changed():
    change = audit.room_change({"name": "Secret merger", "access": "trusted", "language": None})
    assert change == {"changed": ["access", "name"], "access": "trusted"}
