"""job_queue: which values are accepted, the database URL the queue connects with, and
`visio worker` refusing to run without the queue."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from visio.cli import main
from visio.config import ConfigError, load_settings
from visio.transcripts.queue import conninfo

POSTGRES = "postgresql+asyncpg://visio:secret@db.example.org/visio"


def test_the_embedded_runner_is_the_default():
    assert load_settings().job_queue == "embedded"


def test_the_queue_needs_postgresql():
    assert load_settings(job_queue="procrastinate", database_url=POSTGRES).job_queue == (
        "procrastinate"
    )
    for url in ("", "sqlite+aiosqlite:////srv/visio/visio.db"):
        with pytest.raises(ConfigError, match="procrastinate needs a PostgreSQL database_url"):
            load_settings(job_queue="procrastinate", database_url=url)


def test_unknown_queues_are_refused():
    with pytest.raises(ConfigError, match="job_queue"):
        load_settings(job_queue="redis", database_url=POSTGRES)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://visio:p%40ss%20word@db.example.org:5433/visio?ssl=true",
            {
                "dbname": "visio",
                "user": "visio",
                "password": "p@ss word",
                "host": "db.example.org",
                "port": "5433",
                "sslmode": "require",
            },
        ),
        (  # a Unix socket, as the test cluster has; asyncpg-only options are left out
            "postgresql+asyncpg://postgres@/test_1?host=/tmp/pg&port=6000"
            "&prepared_statement_cache_size=0",
            {"dbname": "test_1", "user": "postgres", "host": "/tmp/pg", "port": "6000"},
        ),
        (
            "postgresql://visio@db/visio?sslmode=verify-full&application_name=visio-worker",
            {
                "dbname": "visio",
                "user": "visio",
                "host": "db",
                "sslmode": "verify-full",
                "application_name": "visio-worker",
            },
        ),
    ],
)
def test_conninfo_from_sqlalchemy_urls(url, expected):
    assert conninfo_to_dict(conninfo(url)) == expected


def test_conninfo_refuses_other_databases():
    with pytest.raises(ConfigError):
        conninfo("sqlite+aiosqlite:///var/visio.db")


def test_worker_needs_the_queue(capsys):
    assert main(["worker"]) == 2
    assert 'job_queue = "procrastinate"' in capsys.readouterr().err
