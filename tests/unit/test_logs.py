"""logs: one JSON object per line with the extra fields; readable text on a terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from visio.config import load_settings
from visio.logs import JsonFormatter, setup_logging


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("visio.unit-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_object_per_record(logged):
    logger, stream = logged
    logger.info("first")
    logger.warning("second %s", "arg")
    first, second = lines(stream)
    assert (first["msg"], first["level"], first["logger"]) == ("first", "info", "visio.unit-test")
    assert (second["msg"], second["level"]) == ("second arg", "warning")


def test_timestamp_is_iso_utc_with_milliseconds(logged):
    logger, stream = logged
    logger.info("x")
    ts = lines(stream)[0]["ts"]
    parsed = datetime.fromisoformat(ts)
    assert parsed.utcoffset().total_seconds() == 0
    assert len(ts.split(".")[1]) == len("123+00:00")


def test_extra_fields_are_top_level_keys(logged):
    logger, stream = logged
    logger.info("joined", extra={"room": "abc-defg-hij", "participant": "p-1", "count": 3})
    entry = lines(stream)[0]
    assert entry["room"] == "abc-defg-hij"
    assert entry["participant"] == "p-1"
    assert entry["count"] == 3


def test_standard_record_attributes_are_left_out(logged):
    logger, stream = logged
    logger.info("x")
    assert set(lines(stream)[0]) == {"ts", "level", "logger", "msg"}


def test_uvicorns_coloured_copy_of_the_message_is_left_out(logged):
    logger, stream = logged
    logger.info("Started server process [%d]", 7, extra={"color_message": "\x1b[36m%d\x1b[0m"})
    assert set(lines(stream)[0]) == {"ts", "level", "logger", "msg"}


def test_multi_line_messages_stay_on_one_line(logged):
    logger, stream = logged
    logger.error("line one\nline two", extra={"detail": "a\nb"})
    assert stream.getvalue().count("\n") == 1
    assert lines(stream)[0]["msg"] == "line one\nline two"


def test_exceptions_are_included(logged):
    logger, stream = logged
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    entry = lines(stream)[0]
    assert entry["level"] == "error"
    assert "RuntimeError: boom" in entry["exc"]
    assert stream.getvalue().count("\n") == 1


def test_values_json_cannot_encode_are_written_as_text(logged):
    logger, stream = logged
    logger.info("x", extra={"path": Path("/srv/visio"), "ids": {1}})
    entry = lines(stream)[0]
    assert entry["path"] == "/srv/visio"
    assert entry["ids"] == "{1}"


def test_non_ascii_is_kept_readable(logged):
    logger, stream = logged
    logger.info("réunion 👍")
    assert "réunion 👍" in stream.getvalue()


# -- the format: auto (text on a terminal, JSON otherwise), or forced ----------------------


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, given back as it was: setup_logging replaces its handlers."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def terminal() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A real pseudo-terminal: what is written to the first is read from the second."""
    controller, device = os.openpty()
    os.set_blocking(controller, False)
    stream = open(device, "w", encoding="utf-8", closefd=True)
    try:
        yield stream, controller
    finally:
        stream.close()
        os.close(controller)


def read_terminal(controller: int) -> str:
    return os.read(controller, 65536).decode().replace("\r\n", "\n")


def test_auto_is_readable_text_on_a_terminal(root_logger, terminal):
    stream, controller = terminal
    assert stream.isatty()
    setup_logging("INFO", "auto", stream)
    logging.getLogger("visio.meetings").info(
        "joined", extra={"room": "abc-defg-hij", "who": "Ann Smith"}
    )
    stream.flush()
    line = read_terminal(controller)
    assert re.fullmatch(
        r'\d\d:\d\d:\d\d\.\d{3} INFO  visio\.meetings: joined room=abc-defg-hij who="Ann Smith"\n',
        line,
    ), line


def test_auto_is_json_when_not_a_terminal(root_logger, tmp_path):
    with open(tmp_path / "server.log", "w") as stream:
        setup_logging("INFO", "auto", stream)
        logging.getLogger("visio.meetings").info("joined", extra={"room": "abc-defg-hij"})
        stream.flush()
    entry = json.loads((tmp_path / "server.log").read_text())
    assert (entry["msg"], entry["room"]) == ("joined", "abc-defg-hij")


def test_json_and_text_are_forced_whatever_the_stream(root_logger, terminal, tmp_path):
    stream, controller = terminal
    setup_logging("INFO", "json", stream)
    logging.getLogger("visio").warning("on a terminal")
    stream.flush()
    assert json.loads(read_terminal(controller))["msg"] == "on a terminal"

    with open(tmp_path / "server.log", "w") as file:
        setup_logging("INFO", "text", file)
        logging.getLogger("visio").warning("in a file", extra={"code": 3})
        file.flush()
    assert (tmp_path / "server.log").read_text().endswith(" WARNING visio: in a file code=3\n")


def test_text_keeps_exceptions(root_logger, tmp_path):
    with open(tmp_path / "server.log", "w") as file:
        setup_logging("INFO", "text", file)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("visio").exception("failed")
        file.flush()
    text = (tmp_path / "server.log").read_text()
    assert " ERROR visio: failed\nTraceback" in text and "RuntimeError: boom" in text


def test_the_default_format_is_auto(monkeypatch):
    monkeypatch.delenv("VISIO_LOG_FORMAT", raising=False)
    monkeypatch.delenv("VISIO_CONFIG", raising=False)
    assert load_settings().log_format == "auto"
    monkeypatch.setenv("VISIO_LOG_FORMAT", "json")
    assert load_settings().log_format == "json"
