"""`store`: a migrated db.Store on a fresh database, once on SQLite and once on PostgreSQL.

PostgreSQL is a throwaway cluster for the whole run (one database per test), from
Debian's packages: ./test.sh installs them, so without them these tests fail.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from visio.db import Store
from visio.testing.postgres import PostgresServer, PostgresUnavailable

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except PostgresUnavailable as exc:
        pytest.fail(f"{exc}: run ./test.sh, which installs Debian's postgresql package")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of a new, empty database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'visio.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    name = f"test_{next(_databases)}"
    await server.create_database(name)
    return server.url(name)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = Store(database_url)
    await opened.migrate()
    yield opened
    await opened.close()
