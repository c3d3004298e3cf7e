"""Alembic environment: runs migrations on the Store's async engine."""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from visio.db import Base

MIGRATE_LOCK = 0x766973696F0000  # a PostgreSQL advisory lock key ("visio", 0)


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # One process at a time (a server and its workers may start together): the
            # others wait here, then find the schema up to date.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATE_LOCK})
        context.run_migrations()


async def _upgrade(url: str) -> None:
    # A fresh engine: this runs in a worker thread with its own event loop.
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_upgrade(context.config.attributes["url"]))
