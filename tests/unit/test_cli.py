"""The `visio` command line: help, rooms create/list, errors, bot link parsing."""

from __future__ import annotations

import re

import pytest

from visio import __version__
from visio.cli import main
from visio.client.bot import split_link


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIO_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


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
