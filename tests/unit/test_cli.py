"""The `visio` command line: help, rooms (create, list, show, set, members, delete), errors,
bot link parsing. Rooms are checked in a real SQLite store, and with the access decisions
a joining person gets."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest

from visio import __version__
from visio.access import Identity, lobby_reason, role_in
from visio.cli import main
from visio.client.bot import split_link
from visio.db import RoomPolicy, Store

ISSUER = "https://idp.example.org"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def in_store(data_dir: Path, action):
    """Run `action(store)` on the command line's own SQLite database."""

    async def go():
        store = Store(f"sqlite+aiosqlite:///{data_dir / 'visio.db'}")
        try:
            await store.migrate()
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(go())


def sign_in(data_dir: Path, email: str, name: str, issuer: str = ISSUER) -> Identity:
    """Someone signing in through the web app, as the server records them."""
    user = in_store(data_dir, lambda store: store.sign_in(issuer, email, email, name))
    return Identity(user_id=user.id, email=user.email, name=user.name)


def policy(data_dir: Path, room: str) -> RoomPolicy:
    return in_store(data_dir, lambda store: store.policy(room))


def shown(out: str) -> list[tuple[str, str]]:
    return [tuple(line.split(None, 1)) for line in out.splitlines()]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "rooms", "bot"):
        assert re.search(rf"^\s+{command}\s", out, re.MULTILINE), command


def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out.strip() == f"visio {__version__}"


@pytest.mark.parametrize("argv", [[], ["rooms"], ["dance"], ["rooms", "create", "--nope"]])
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: visio" in capsys.readouterr().err


def test_create_a_named_room_then_list_it(capsys, data_dir):
    code, out, err = run(capsys, "rooms", "create", "--id", "team-weekly", "--name", "Weekly")
    assert (code, err) == (0, "")
    assert out == "http://localhost:8080/team-weekly\n"
    assert (data_dir / "visio.db").exists()

    code, out, _ = run(capsys, "rooms", "list")
    assert code == 0
    assert re.fullmatch(r"team-weekly\tpermanent\t\d{4}-\d\d-\d\d \d\d:\d\d\tWeekly\n", out), out


def test_create_a_random_meeting(capsys, data_dir):
    code, out, _ = run(capsys, "rooms", "create")
    assert code == 0
    room = re.fullmatch(r"http://localhost:8080/([a-z]{3}-[a-z]{4}-[a-z]{3})\n", out).group(1)
    code, out, _ = run(capsys, "rooms", "list")
    assert out.startswith(f"{room}\tmeeting\t")


def test_permanent_flag_keeps_a_random_room(capsys, data_dir):
    run(capsys, "rooms", "create", "--permanent")
    assert "\tpermanent\t" in run(capsys, "rooms", "list")[1]


def test_links_use_the_public_url(capsys, data_dir, monkeypatch):
    monkeypatch.setenv("VISIO_PUBLIC_URL", "https://visio.example.org/")
    _, out, _ = run(capsys, "rooms", "create", "--id", "all-hands")
    assert out == "https://visio.example.org/all-hands\n"


def test_data_dir_option(capsys, tmp_path):
    folder = tmp_path / "elsewhere"
    assert run(capsys, "rooms", "--data-dir", str(folder), "create", "--id", "abc")[0] == 0
    assert (folder / "visio.db").exists()
    assert run(capsys, "rooms", "--data-dir", str(folder), "list")[1].startswith("abc\t")


def test_config_option(capsys, tmp_path):
    config = tmp_path / "visio.toml"
    config.write_text(f'data_dir = "{tmp_path / "from-toml"}"\nport = 9443\n')
    _, out, _ = run(capsys, "rooms", "--config", str(config), "create", "--id", "abc")
    assert out == "http://localhost:9443/abc\n"
    assert (tmp_path / "from-toml" / "visio.db").exists()


def test_list_of_no_rooms_is_empty(capsys, data_dir):
    assert run(capsys, "rooms", "list") == (0, "", "")


@pytest.mark.parametrize("room_id", ["Team_Weekly", "-abc", "ab", "a" * 65, "abc-"])
def test_invalid_room_id_exits_2_with_a_message(capsys, data_dir, room_id):
    code, out, err = run(capsys, "rooms", "create", f"--id={room_id}")
    assert code == 2
    assert out == ""
    assert f"invalid room id {room_id!r}" in err
    assert "Traceback" not in err
    assert not (data_dir / "visio.db").exists()


def test_duplicate_room_id_exits_1(capsys, data_dir):
    run(capsys, "rooms", "create", "--id", "team-weekly")
    code, out, err = run(capsys, "rooms", "create", "--id", "team-weekly")
    assert (code, out) == (1, "")
    assert err == "visio: room 'team-weekly' exists already\n"


def test_invalid_configuration_exits_2_without_traceback(capsys, data_dir, monkeypatch):
    monkeypatch.setenv("VISIO_PORT", "abc")
    code, out, err = run(capsys, "rooms", "list")
    assert (code, out) == (2, "")
    assert err.startswith("visio: invalid configuration: port: ")
    assert "Traceback" not in err


def test_unreadable_config_file_exits_2(capsys, tmp_path):
    code, _, err = run(capsys, "rooms", "--config", str(tmp_path / "missing.toml"), "list")
    assert code == 2
    assert "cannot read config file" in err


def test_non_json_list_variable_exits_2(capsys, data_dir, monkeypatch):
    monkeypatch.setenv("VISIO_JANUS_URLS", "ws://10.0.0.5:8188")
    code, _, err = run(capsys, "rooms", "list")
    assert code == 2
    assert "janus_urls" in err


@pytest.mark.parametrize(
    ("link", "server", "expected"),
    [
        (
            "https://visio.example.org/abc-defg-hij",
            None,
            ("https://visio.example.org", "abc-defg-hij"),
        ),
        (
            "https://visio.example.org/abc-defg-hij/",
            None,
            ("https://visio.example.org", "abc-defg-hij"),
        ),
        ("http://10.0.0.1:8080/team-weekly?x=1", None, ("http://10.0.0.1:8080", "team-weekly")),
        ("https://h.example.org/visio/abc", "https://ignored", ("https://h.example.org", "abc")),
        (
            "abc-defg-hij",
            "https://visio.example.org/",
            ("https://visio.example.org", "abc-defg-hij"),
        ),
    ],
)
def test_bot_link_parsing(link, server, expected):
    assert split_link(link, server) == expected


def test_bot_bare_room_id_needs_a_server():
    with pytest.raises(ValueError, match="--server"):
        split_link("abc-defg-hij", None)


def test_bot_with_a_bare_id_and_no_server_exits_2(capsys):
    code, _, err = run(capsys, "bot", "abc-defg-hij", "--duration", "0")
    assert code == 2
    assert "--server" in err


# -- rooms: owner, access level, members and admins ----------------------------------------


def test_create_a_room_with_its_owner_access_members_and_admins(capsys, data_dir):
    alice = sign_in(data_dir, "alice@example.org", "Alice")
    code, out, err = run(
        capsys, "rooms", "create", "--id", "team-weekly", "--name", "Team weekly",
        "--owner", "Alice@Example.org", "--access", "restricted",
        "--member", "bob@example.org", "--admin", "carol@example.org",
    )  # fmt: skip
    assert (code, out, err) == (0, "http://localhost:8080/team-weekly\n", "")

    room = policy(data_dir, "team-weekly")
    assert (room.name, room.access, room.owner_id) == ("Team weekly", "restricted", alice.user_id)
    assert room.roles == {"bob@example.org": "member", "carol@example.org": "admin"}
    carol = Identity(user_id="u-carol", email="carol@example.org")
    stranger = Identity(user_id="u-eve", email="eve@example.org")
    assert (role_in(room, alice), role_in(room, carol)) == ("owner", "admin")
    assert lobby_reason(room, stranger, locked=False, banned=frozenset()) == "restricted"

    code, out, _ = run(capsys, "rooms", "show", "team-weekly")
    assert code == 0
    rows = shown(out)
    assert rows[:10] == [
        ("id", "team-weekly"),
        ("name", "Team weekly"),
        ("link", "http://localhost:8080/team-weekly"),
        ("kind", "permanent"),
        ("access", "restricted"),
        ("owner", "alice@example.org (Alice)"),
        ("language", "auto"),
        ("attendees", "publish"),
        ("muted", "on entry above 10 people"),
        ("mute", "moderators mute"),
    ]
    assert rows[10][0] == "created"
    assert rows[11][0] == "pin" and rows[11][1].isdigit()
    assert rows[12:] == [("member", "bob@example.org"), ("admin", "carol@example.org")]


def test_an_owner_who_never_signed_in_is_refused_with_what_to_do(capsys, data_dir):
    code, out, err = run(
        capsys, "rooms", "create", "--id", "team-weekly", "--owner", "alice@example.org"
    )
    assert (code, out) == (1, "")
    assert err.startswith("visio: nobody has signed in with alice@example.org yet")
    assert "--admin alice@example.org" in err
    assert "visio rooms set team-weekly --owner alice@example.org" in err
    assert run(capsys, "rooms", "list") == (0, "", "")  # no room half made


def test_an_email_shared_by_two_accounts_cannot_own_a_room(capsys, data_dir):
    sign_in(data_dir, "alice@example.org", "Alice")
    sign_in(data_dir, "alice@example.org", "Alice", issuer="https://other.example.org")
    code, _, err = run(capsys, "rooms", "create", "--owner", "alice@example.org")
    assert code == 1
    assert "2 accounts signed in with alice@example.org" in err
    assert "https://other.example.org" in err


def test_set_changes_name_access_language_and_owner(capsys, data_dir):
    run(capsys, "rooms", "create", "--id", "team-weekly")
    code, out, _ = run(
        capsys, "rooms", "set", "team-weekly", "--name", " Weekly sync ", "--access", "trusted",
        "--language", "fr",
    )  # fmt: skip
    assert code == 0
    assert {
        "name": "Weekly sync",
        "access": "trusted",
        "language": "fr",
        "owner": "nobody",
    }.items() <= dict(shown(out)).items()

    code, _, err = run(capsys, "rooms", "set", "team-weekly", "--owner", "bob@example.org")
    assert code == 1
    assert "visio rooms members team-weekly add bob@example.org --role admin" in err
    bob = sign_in(data_dir, "bob@example.org", "Bob")
    code, out, _ = run(capsys, "rooms", "set", "team-weekly", "--owner", "bob@example.org")
    assert (code, dict(shown(out))["owner"]) == (0, "bob@example.org (Bob)")
    assert role_in(policy(data_dir, "team-weekly"), bob) == "owner"

    code, out, _ = run(capsys, "rooms", "set", "team-weekly", "--no-owner")
    assert (code, dict(shown(out))["owner"]) == (0, "nobody")
    assert policy(data_dir, "team-weekly").owner_id is None


def test_set_makes_a_webinar(capsys, data_dir):
    run(capsys, "rooms", "create", "--id", "town-hall")
    code, out, _ = run(
        capsys, "rooms", "set", "town-hall", "--attendees-publish", "no",
        "--mute-on-entry-above", "0", "--everyone-can-mute", "yes",
    )  # fmt: skip
    assert code == 0
    assert {
        "attendees": "listen (a webinar)",
        "muted": "never on entry",
        "mute": "anyone mutes anyone",
    }.items() <= dict(shown(out)).items()
    room = policy(data_dir, "town-hall")
    assert (room.attendees_publish, room.mute_on_entry_above, room.everyone_can_mute) == (
        False,
        0,
        True,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["team-weekly"], "nothing to change"),
        (["team-weekly", "--owner", "a@example.org", "--no-owner"], "go separately"),
        (["team-weekly", "--name", "  "], "1 to 120 characters"),
        (["team-weekly", "--name", "x" * 121], "1 to 120 characters"),
        (["team-weekly", "--owner", "not-an-email"], "invalid email address 'not-an-email'"),
    ],
)
def test_set_usage_errors_exit_2(capsys, data_dir, argv, message):
    run(capsys, "rooms", "create", "--id", "team-weekly")
    code, out, err = run(capsys, "rooms", "set", *argv)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


def test_members_are_listed_added_changed_and_removed(capsys, data_dir):
    run(capsys, "rooms", "create", "--id", "team-weekly", "--member", "bob@example.org")
    assert run(capsys, "rooms", "members", "team-weekly") == (0, "bob@example.org\tmember\n", "")
    code, out, _ = run(
        capsys, "rooms", "members", "team-weekly", "add", "Carol@Example.org", "--role", "admin"
    )
    assert (code, out) == (0, "carol@example.org\tadmin\n")
    run(capsys, "rooms", "members", "team-weekly", "add", "bob@example.org", "--role", "admin")
    assert policy(data_dir, "team-weekly").roles == {
        "bob@example.org": "admin",
        "carol@example.org": "admin",
    }
    assert run(capsys, "rooms", "members", "team-weekly", "remove", "BOB@example.org")[0] == 0
    assert run(capsys, "rooms", "members", "team-weekly")[1] == "carol@example.org\tadmin\n"

    code, _, err = run(capsys, "rooms", "members", "team-weekly", "remove", "bob@example.org")
    assert code == 1
    assert err == "visio: bob@example.org is not a member of room 'team-weekly'\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["show", "nope-room"],
        ["set", "nope-room", "--access", "public"],
        ["members", "nope-room"],
        ["members", "nope-room", "add", "bob@example.org"],
        ["delete", "nope-room"],
    ],
)
def test_a_missing_room_exits_1(capsys, data_dir, argv):
    code, out, err = run(capsys, "rooms", *argv)
    assert (code, out, err) == (1, "", "visio: no room 'nope-room'\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create", "--member", "bob"], "invalid email address 'bob'"),
        (["create", "--admin", "a b@example.org"], "invalid email address 'a b@example.org'"),
        (
            ["create", "--member", "bob@example.org", "--admin", "Bob@example.org"],
            "bob@example.org: either --member or --admin, not both",
        ),
        (["create", "--name", "x" * 121], "1 to 120 characters"),
        (["members", "team-weekly", "add", "bob@"], "invalid email address 'bob@'"),
    ],
)
def test_bad_emails_and_names_exit_2_before_anything_is_written(capsys, data_dir, argv, message):
    code, out, err = run(capsys, "rooms", *argv)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err
    assert not (data_dir / "visio.db").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "--access", "secret"],
        ["members", "team-weekly", "add", "bob@example.org", "--role", "boss"],
        ["members", "team-weekly", "invite", "bob@example.org"],
        ["members", "team-weekly", "remove"],
        ["show"],
        ["delete"],
        ["set", "team-weekly", "--attendees-publish", "maybe"],
        ["set", "team-weekly", "--mute-on-entry-above", "-1"],
    ],
)
def test_rooms_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as caught:
        main(["rooms", *argv])
    assert caught.value.code == 2
    assert "usage: visio rooms" in capsys.readouterr().err


def test_delete_takes_the_room_its_members_and_its_captures(capsys, data_dir):
    run(capsys, "rooms", "create", "--id", "team-weekly", "--member", "bob@example.org")
    capture = in_store(
        data_dir,
        lambda store: store.create_capture(
            "team-weekly", "Weekly", "auto", transcribe=True, record=False
        ),
    )
    in_store(data_dir, lambda store: store.update_capture(capture.id, status="done"))
    files = data_dir / "captures" / capture.id
    files.mkdir(parents=True)
    (files / "transcript.json").write_text("{}")

    assert run(capsys, "rooms", "delete", "team-weekly") == (0, "", "")
    assert run(capsys, "rooms", "list") == (0, "", "")
    assert not files.exists()
    assert in_store(data_dir, lambda store: store.get_capture(capture.id)) is None
    assert in_store(data_dir, lambda store: store.members("team-weekly")) == []


def test_a_room_being_recorded_is_not_deleted(capsys, data_dir):
    run(capsys, "rooms", "create", "--id", "team-weekly")
    in_store(
        data_dir,
        lambda store: store.create_capture(
            "team-weekly", "Weekly", "auto", transcribe=True, record=True
        ),
    )
    code, _, err = run(capsys, "rooms", "delete", "team-weekly")
    assert code == 1
    assert "has a meeting being recorded" in err
    assert run(capsys, "rooms", "list")[1].startswith("team-weekly\t")


def test_data_dir_and_config_options_go_after_the_action_too(capsys, tmp_path):
    folder = tmp_path / "elsewhere"
    assert run(capsys, "rooms", "create", "--id", "abc", "--data-dir", str(folder))[0] == 0
    assert run(capsys, "rooms", "show", "abc", "--data-dir", str(folder))[0] == 0
    assert (folder / "visio.db").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")
def test_root_is_sent_to_the_user_who_owns_the_database(capsys, data_dir):
    data_dir.mkdir()
    os.chown(data_dir, 65534, 65534)  # nobody: the service user of this test
    code, out, err = run(capsys, "rooms", "create", "--id", "team-weekly")
    assert (code, out) == (2, "")
    assert f"{data_dir} belongs to nobody: run this command as that user" in err
    assert "sudo -u nobody" in err
    assert not (data_dir / "visio.db").exists()


def test_a_database_that_cannot_be_opened_exits_1_without_traceback(capsys, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    code, out, err = run(capsys, "rooms", "--data-dir", str(tmp_path / "not-a-folder"), "list")
    assert (code, out) == (1, "")
    assert err.startswith(f"visio: cannot use the database sqlite+aiosqlite:///{tmp_path}")
    assert "Traceback" not in err


def test_a_database_url_is_shown_without_its_password(capsys, data_dir, monkeypatch):
    monkeypatch.setenv("VISIO_DATABASE_URL", "postgresql+asyncpg://visio:s3cret@127.0.0.1:1/v")
    code, _, err = run(capsys, "rooms", "list")
    assert code == 1
    assert "postgresql+asyncpg://visio:***@127.0.0.1:1/v" in err
    assert "s3cret" not in err and "Traceback" not in err
