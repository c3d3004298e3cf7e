"""logs.JsonFormatter: one JSON object per line, extra fields included."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from visio.logs import JsonFormatter


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
