"""Persistent state: the rooms that exist (meetings are in memory while they run)."""

from __future__ import annotations

import asyncio
import secrets
import string
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import DateTime, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    pass


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    permanent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RoomExists(Exception):
    pass


def random_room_id() -> str:
    """A short, hard-to-guess meeting code such as `abc-defg-hij` (26^10 ≈ 1.4e14)."""
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
    return f"{letters[:3]}-{letters[3:7]}-{letters[7:]}"


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision."""
        if self.url.startswith("sqlite"):
            database = self.url.split(":///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["url"] = self.url
        await asyncio.to_thread(command.upgrade, config, "head")

    async def close(self) -> None:
        await self.engine.dispose()

    async def create_room(
        self, name: str | None = None, room_id: str | None = None, permanent: bool = False
    ) -> Room:
        for _ in range(5):
            candidate = room_id or random_room_id()
            room = Room(
                id=candidate,
                name=name or candidate,
                permanent=permanent,
                created_at=datetime.now(UTC),
            )
            try:
                async with self.sessions.begin() as session:
                    session.add(room)
                return room
            except IntegrityError as exc:
                if room_id is not None:
                    raise RoomExists(room_id) from exc
        raise RuntimeError("could not draw a free room id")

    async def get_room(self, room_id: str) -> Room | None:
        async with self.sessions() as session:
            return await session.get(Room, room_id)

    async def list_rooms(self) -> list[Room]:
        async with self.sessions() as session:
            result = await session.scalars(select(Room).order_by(Room.created_at))
            return list(result)
