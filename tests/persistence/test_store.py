"""db.Store against each backend: SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from visio import db
from visio.db import RoomExists, Store

RANDOM_ID = re.compile(r"^[a-z]{3}-[a-z]{4}-[a-z]{3}$")
ISSUER = "https://idp.example"


async def test_migrate_is_idempotent_and_keeps_data(store):
    await store.create_room(room_id="kept-room")
    await store.migrate()
    assert (await store.get_room("kept-room")) is not None


async def test_migrate_creates_the_sqlite_folder(tmp_path: Path):
    path = tmp_path / "deep" / "er" / "visio.db"
    store = Store(f"sqlite+aiosqlite:///{path}")
    try:
        await store.migrate()
        assert path.exists()
    finally:
        await store.close()


async def test_everything_survives_a_restart(database_url):
    """Closing the Store and opening a new one on the same database, as a restart does."""
    first = Store(database_url)
    await first.migrate()
    owner = await first.sign_in(ISSUER, "ann", "Ann@Example.org", "Ann")
    token = await first.open_session(owner.id, ttl_s=3600)
    room = await first.create_room(
        room_id="team-weekly", permanent=True, owner_id=owner.id, access="trusted"
    )
    await first.update_room(room.id, name="Weekly sync", access="restricted")
    await first.set_member(room.id, "bob@example.org", "admin")
    await first.set_member(room.id, "cy@example.org", "member")
    other = await first.create_room(name="Ad hoc")
    await first.close()

    second = Store(database_url)
    try:
        await second.migrate()
        assert [r.id for r in await second.list_rooms()] == [room.id, other.id]
        found = await second.get_room(room.id)
        assert (found.name, found.permanent, found.access, found.owner_id) == (
            "Weekly sync",
            True,
            "restricted",
            owner.id,
        )
        assert (await second.get_room(other.id)).name == "Ad hoc"
        members = [(m.email, m.role) for m in await second.members(room.id)]
        assert members == [("bob@example.org", "admin"), ("cy@example.org", "member")]
        assert (await second.session_user(token)).id == owner.id
        assert (await second.get_user(owner.id)).email == "ann@example.org"
    finally:
        await second.close()


# -- rooms ---------------------------------------------------------------------------


async def test_create_room_draws_a_random_id(store):
    room = await store.create_room()
    assert RANDOM_ID.match(room.id)
    assert room.name == room.id
    assert room.permanent is False
    assert room.access == "public"
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
    assert await store.update_room("nop-nope-nop", name="x") is None
    assert await store.policy("nop-nope-nop") is None
    assert await store.delete_room("nop-nope-nop") is False


async def test_list_rooms_in_creation_order(store):
    assert await store.list_rooms() == []
    created = []
    for room_id in ("zzz-room", "aaa-room", "mmm-room"):
        created.append((await store.create_room(room_id=room_id)).id)
        await asyncio.sleep(0.002)  # distinct creation times
    assert [room.id for room in await store.list_rooms()] == created


async def test_delete_room_takes_its_members(store):
    room = await store.create_room()
    await store.set_member(room.id, "bob@example.org", "member")
    assert await store.delete_room(room.id) is True
    assert await store.get_room(room.id) is None
    assert await store.members(room.id) == []


# -- people, sessions, members -------------------------------------------------------


async def test_sign_in_again_is_the_same_user_refreshed(store):
    first = await store.sign_in(ISSUER, "ann", "Ann@Example.org", "Ann")
    again = await store.sign_in(ISSUER, "ann", "ann@new.example", "Ann B.")
    elsewhere = await store.sign_in("https://other.example", "ann", None, "Ann")
    assert again.id == first.id != elsewhere.id
    found = await store.get_user(first.id)
    assert (found.email, found.name) == ("ann@new.example", "Ann B.")
    assert elsewhere.email is None


async def test_users_are_found_by_email(store):
    ann = await store.sign_in(ISSUER, "ann", "Ann@Example.org", "Ann")
    await asyncio.sleep(0.002)
    again = await store.sign_in("https://other.example", "a-1", "ann@example.org", "Ann")
    await store.sign_in(ISSUER, "bob", "bob@example.org", "Bob")
    await store.sign_in(ISSUER, "anon", None, "Nobody")
    assert [u.id for u in await store.users_with_email(" ANN@example.org")] == [ann.id, again.id]
    assert await store.users_with_email("cy@example.org") == []


async def test_a_room_is_given_to_an_owner_and_taken_back(store):
    ann = await store.sign_in(ISSUER, "ann", "ann@example.org", "Ann")
    room = await store.create_room(room_id="team-weekly")
    assert (await store.set_room_owner(room.id, ann.id)).owner_id == ann.id
    assert (await store.get_room(room.id)).owner_id == ann.id
    assert [(r.id, role) for r, role in await store.rooms_of(ann)] == [(room.id, "owner")]
    assert (await store.set_room_owner(room.id, None)).owner_id is None
    assert (await store.policy(room.id)).owner_id is None
    assert await store.set_room_owner("no-such-room", ann.id) is None


async def test_sessions_open_expire_and_close(store):
    user = await store.sign_in(ISSUER, "ann", None, "Ann")
    token = await store.open_session(user.id, ttl_s=3600)
    expired = await store.open_session(user.id, ttl_s=-1)
    assert (await store.session_user(token)).id == user.id
    assert await store.session_user(expired) is None
    assert await store.session_user("forged") is None
    await store.close_session(token)
    assert await store.session_user(token) is None


async def test_members_are_set_updated_and_removed(store):
    room = await store.create_room()
    await store.set_member(room.id, " Cy@Example.org ", "member")
    await store.set_member(room.id, "bob@example.org", "member")
    await store.set_member(room.id, "CY@example.org", "admin")
    assert [(m.email, m.role) for m in await store.members(room.id)] == [
        ("bob@example.org", "member"),
        ("cy@example.org", "admin"),
    ]
    assert await store.remove_member(room.id, "Bob@Example.org") is True
    assert await store.remove_member(room.id, "bob@example.org") is False
    assert [m.email for m in await store.members(room.id)] == ["cy@example.org"]


async def test_policy_and_rooms_of_a_user(store):
    ann = await store.sign_in(ISSUER, "ann", "ann@example.org", "Ann")
    bob = await store.sign_in(ISSUER, "bob", "bob@example.org", "Bob")
    owned = await store.create_room(name="Ann's", owner_id=ann.id, access="trusted")
    await asyncio.sleep(0.002)
    invited = await store.create_room(name="Elsewhere")
    await store.set_member(invited.id, "ann@example.org", "admin")
    await store.set_member(owned.id, "bob@example.org", "member")

    assert [(r.id, role) for r, role in await store.rooms_of(ann)] == [
        (owned.id, "owner"),
        (invited.id, "admin"),
    ]
    assert [(r.id, role) for r, role in await store.rooms_of(bob)] == [(owned.id, "member")]
    policy = await store.policy(owned.id)
    assert (policy.name, policy.access, policy.owner_id) == ("Ann's", "trusted", ann.id)
    assert policy.roles == {"bob@example.org": "member"}


async def test_each_room_gets_its_own_dial_in_pin(store, monkeypatch):
    first = await store.create_room(room_id="team-weekly")
    assert first.pin is not None and first.pin.isdigit() and len(first.pin) == db.PIN_DIGITS
    assert (await store.room_by_pin(first.pin)).id == "team-weekly"
    assert await store.room_by_pin("000000000") is None
    draws = iter([first.pin, "123456789"])  # the PIN taken: drawn again, same fixed id
    monkeypatch.setattr(db, "random_pin", lambda: next(draws))
    assert (await store.create_room(room_id="team-daily")).pin == "123456789"
