"""db.Store on SQLite in a temporary folder."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from visio import db
from visio.db import RoomExists, Store

RANDOM_ID = re.compile(r"^[a-z]{3}-[a-z]{4}-[a-z]{3}$")


def url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    opened = Store(url(tmp_path / "visio.db"))
    await opened.migrate()
    yield opened
    await opened.close()


def test_random_room_ids_look_like_meeting_codes():
    ids = {db.random_room_id() for _ in range(200)}
    assert all(RANDOM_ID.match(room_id) for room_id in ids)
    assert len(ids) == 200


async def test_migrate_creates_the_folder_and_is_idempotent(tmp_path):
    path = tmp_path / "deep" / "er" / "visio.db"
    store = Store(url(path))
    try:
        await store.migrate()
        await store.create_room(room_id="kept-room")
        await store.migrate()
        assert path.exists()
        assert (await store.get_room("kept-room")) is not None
    finally:
        await store.close()


async def test_create_room_draws_a_random_id(store):
    room = await store.create_room()
    assert RANDOM_ID.match(room.id)
    assert room.name == room.id
    assert room.permanent is False
    assert room.created_at is not None


async def test_create_room_with_a_name(store):
    room = await store.create_room(name="Weekly sync")
    assert room.name == "Weekly sync"
    assert (await store.get_room(room.id)).name == "Weekly sync"


async def test_create_room_with_a_fixed_id(store):
    room = await store.create_room(room_id="team-weekly", permanent=True)
    assert (room.id, room.name, room.permanent) == ("team-weekly", "team-weekly", True)
    found = await store.get_room("team-weekly")
    assert (found.id, found.permanent) == ("team-weekly", True)


async def test_duplicate_fixed_id_raises_room_exists(store):
    await store.create_room(room_id="team-weekly", name="first")
    with pytest.raises(RoomExists):
        await store.create_room(room_id="team-weekly", name="second")
    assert (await store.get_room("team-weekly")).name == "first"


async def test_random_id_collision_draws_again(store, monkeypatch):
    taken = await store.create_room(room_id="abc-defg-hij")
    draws = iter([taken.id, "xyz-wxyz-xyz"])
    monkeypatch.setattr(db, "random_room_id", lambda: next(draws))
    assert (await store.create_room()).id == "xyz-wxyz-xyz"


async def test_gives_up_after_repeated_collisions(store, monkeypatch):
    await store.create_room(room_id="abc-defg-hij")
    monkeypatch.setattr(db, "random_room_id", lambda: "abc-defg-hij")
    with pytest.raises(RuntimeError, match="free room id"):
        await store.create_room()


async def test_get_missing_room_is_none(store):
    assert await store.get_room("nop-nope-nop") is None


async def test_list_rooms_in_creation_order(store):
    assert await store.list_rooms() == []
    created = []
    for room_id in ("zzz-room", "aaa-room", "mmm-room"):
        created.append((await store.create_room(room_id=room_id)).id)
        await asyncio.sleep(0.002)  # distinct creation times
    assert [room.id for room in await store.list_rooms()] == created


async def test_rooms_survive_a_new_store_on_the_same_file(tmp_path):
    first = Store(url(tmp_path / "visio.db"))
    await first.migrate()
    room = await first.create_room(name="Kept")
    await first.close()

    second = Store(url(tmp_path / "visio.db"))
    try:
        await second.migrate()
        found = await second.get_room(room.id)
        assert (found.id, found.name) == (room.id, "Kept")
        assert [r.id for r in await second.list_rooms()] == [room.id]
    finally:
        await second.close()
