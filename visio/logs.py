"""Structured logs: one JSON object per line for machines, one readable line for people.

`auto` (the default) picks by where stderr goes: a terminal gets text, anything else
(journald, a file, a pipe to a log shipper) gets JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# uvicorn's copy of the message with terminal colour codes: noise in either format
_LEFT_OUT = _STANDARD | {"color_message"}


def _context(record: logging.LogRecord) -> dict[str, object]:
    """The fields given with `extra=`: room, participant, reason…"""
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _LEFT_OUT and not key.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`12:00:01.234 INFO  visio.meetings: joined room=abc-defg-hij participant=p-1`"""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        line = f"{moment} {record.levelname:<5} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{key}={_text(value)}" for key, value in _context(record).items())
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _text(value: object) -> str:
    text = str(value)
    return (
        json.dumps(text, ensure_ascii=False)
        if not text or any(c in text for c in ' "=\n')
        else text
    )


def resolve_format(fmt: str, stream: TextIO) -> str:
    """`json` or `text`: `auto` is text on a terminal, JSON otherwise."""
    if fmt != "auto":
        return fmt
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "json"


def setup_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if resolve_format(fmt, stream) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aioice", "aiortc", "websockets", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
