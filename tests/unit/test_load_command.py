"""`visio load`: bad arguments get a message and exit code 2, before any client starts."""

from __future__ import annotations

import os

import pytest

from visio.cli import main


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(["load", *argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "ftp://127.0.0.1"], "give the server's base URL"),
        (["--url", "127.0.0.1:8080"], "give the server's base URL"),
        (["--url", "http://8.8.8.8:8080"], "neither loopback nor private"),
        (["--url", "http://no-such-host.invalid"], "cannot resolve"),
        (["--url", "http://127.0.0.1:1", "--participants", "0"], "--participants"),
        (["--url", "http://127.0.0.1:1", "--participants", "700"], "--max-participants"),
        (["--url", "http://127.0.0.1:1", "--max-seconds", "99999"], "--max-seconds"),
        (["--url", "http://127.0.0.1:1", "--workers", "0"], "--workers"),
        (["--url", "http://127.0.0.1:1", "--cameras", "9"], "--cameras"),
        (["--url", "http://127.0.0.1:1", "--join-rate", "0"], "--join-rate"),
        (["--url", "http://127.0.0.1:1", "--scenario", "webinar", "--participants", "1"], "2"),
        (["--url", "http://127.0.0.1:1", "--server-pid", "12x"], "not a process id"),
    ],
)
def test_bad_arguments_are_refused_with_a_message(capsys, argv, message):
    code, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("visio load: ") and message in err
    assert "Traceback" not in err


def test_a_pid_that_does_not_exist_is_refused(capsys):
    unused = max(int(p) for p in os.listdir("/proc") if p.isdigit()) + 100_000
    code, err = run(capsys, "--url", "http://127.0.0.1:1", "--janus-pid", str(unused))
    assert code == 2
    assert f"no process {unused} (given as a janus pid)" in err


def test_an_unknown_scenario_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["load", "--url", "http://127.0.0.1:1", "--scenario", "party"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
