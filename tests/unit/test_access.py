"""Who enters a room and who waits in the lobby (visio.access), for every access level."""

from __future__ import annotations

import pytest

from visio.access import Identity, is_member, lobby_reason, role_in
from visio.db import RoomPolicy

OWNER = Identity(user_id="u-owner", email="owner@x.test", name="Owner")
ADMIN = Identity(user_id="u-admin", email="admin@x.test", name="Admin")
MEMBER = Identity(user_id="u-member", email="member@x.test", name="Member")
STRANGER = Identity(user_id="u-stranger", email="stranger@x.test", name="Stranger")
GUEST = Identity(guest_key="g" * 24)
ROLES = {"admin@x.test": "admin", "member@x.test": "member"}


def policy(access: str) -> RoomPolicy:
    return RoomPolicy("r-oom-id", "Room", access, "u-owner", ROLES)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("access", "who", "reason"),
    [
        ("public", GUEST, None),
        ("public", STRANGER, None),
        ("trusted", GUEST, "trusted"),
        ("trusted", STRANGER, None),
        ("restricted", GUEST, "restricted"),
        ("restricted", STRANGER, "restricted"),
        ("restricted", MEMBER, None),
        ("restricted", ADMIN, None),
        ("restricted", OWNER, None),
    ],
)
def test_who_enters_at_each_access_level(access, who, reason):
    assert lobby_reason(policy(access), who, locked=False, banned=frozenset()) == reason


def test_a_lock_holds_everyone_but_moderators():
    for who in (GUEST, STRANGER, MEMBER):
        assert lobby_reason(policy("public"), who, locked=True, banned=frozenset()) == "locked"
    for who in (OWNER, ADMIN):
        assert lobby_reason(policy("public"), who, locked=True, banned=frozenset()) is None


def test_an_admin_the_owner_removed_waits_but_the_owner_never_does():
    """Audit L1: the moderator bypass came before the ban."""
    banned = ADMIN.keys | OWNER.keys
    assert lobby_reason(policy("public"), ADMIN, locked=False, banned=banned) == "removed"
    assert lobby_reason(policy("public"), OWNER, locked=False, banned=banned) is None


def test_removed_people_wait_whatever_the_level():
    banned = GUEST.keys | STRANGER.keys
    assert lobby_reason(policy("public"), GUEST, locked=False, banned=banned) == "removed"
    assert lobby_reason(policy("public"), STRANGER, locked=False, banned=banned) == "removed"
    assert lobby_reason(policy("public"), MEMBER, locked=False, banned=banned) is None


def test_a_guest_is_banned_by_cookie_and_address_a_signed_in_person_by_account():
    """Audit M5: a cookie-less script, or a private window, is still recognised."""
    assert Identity().keys == frozenset()
    assert Identity(address="198.51.100.7").keys == {"address:198.51.100.7"}
    assert Identity(guest_key="k", address="198.51.100.7").keys == {
        "guest:k",
        "address:198.51.100.7",
    }
    assert Identity(user_id="u", guest_key="k", address="198.51.100.7").keys == {"user:u"}


def test_the_same_person_on_another_network_is_the_same_person():
    assert Identity(guest_key="k", address="198.51.100.7") == Identity(guest_key="k", address="x")


def test_roles_come_from_the_owner_id_and_the_admin_emails():
    room = policy("public")
    assert [role_in(room, who) for who in (OWNER, ADMIN, MEMBER, STRANGER, GUEST)] == [
        "owner",
        "admin",
        "participant",
        "participant",
        "participant",
    ]


def test_a_guest_claiming_a_members_email_is_no_member():
    impostor = Identity(email="admin@x.test", guest_key="k" * 24)  # not signed in
    assert role_in(policy("restricted"), impostor) == "participant"
    assert not is_member(policy("restricted"), impostor)
