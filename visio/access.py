"""Who someone is in a room, and whether they enter it or wait in the lobby.

Pure decisions on data read fresh from the store at each join, so that a change of
access level, a new member or a lock applies to the next person at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from visio.db import RoomPolicy

Role = Literal["owner", "admin", "participant"]
LobbyReason = Literal["trusted", "restricted", "locked", "removed"]


@dataclass(frozen=True)
class Identity:
    """The person behind one WebSocket.

    `user_id` is set when signed in. `guest_key` comes from the browser's guest cookie
    (absent for bots and other cookie-less clients); it and `address` (the client's, an
    IPv6 /64) only serve to recognise a guest who was removed.
    """

    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    guest_key: str | None = None
    address: str | None = field(default=None, compare=False)  # moving networks is no new person

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None

    @property
    def keys(self) -> frozenset[str]:
        """What a removal bans: the account; for a guest, their browser and their address
        (a script sends no cookie, and a private window makes a new one). Other guests at
        that address then wait in the lobby: a moderator may let them in."""
        if self.user_id:
            return frozenset({f"user:{self.user_id}"})
        found = set()
        if self.guest_key:
            found.add(f"guest:{self.guest_key}")
        if self.address:
            found.add(f"address:{self.address}")
        return frozenset(found)


GUEST = Identity()


def role_in(policy: RoomPolicy, who: Identity) -> Role:
    if who.user_id is not None and who.user_id == policy.owner_id:
        return "owner"
    if who.signed_in and who.email and policy.roles.get(who.email) == "admin":
        return "admin"
    return "participant"


def is_moderator(role: Role) -> bool:
    return role in ("owner", "admin")


def is_member(policy: RoomPolicy, who: Identity) -> bool:
    """Owner, admins and invited members (by the email the identity provider gave)."""
    if role_in(policy, who) != "participant":
        return True
    return who.signed_in and who.email is not None and who.email in policy.roles


def lobby_reason(
    policy: RoomPolicy, who: Identity, *, locked: bool, banned: frozenset[str]
) -> LobbyReason | None:
    """None: they enter now. Otherwise why they wait to be admitted. A removal holds an
    admin too (only the owner removes one); nothing holds the owner."""
    role = role_in(policy, who)
    if role == "owner":
        return None
    if who.keys & banned:
        return "removed"
    if is_moderator(role):
        return None
    if locked:
        return "locked"
    if policy.access == "trusted" and not who.signed_in:
        return "trusted"
    if policy.access == "restricted" and not is_member(policy, who):
        return "restricted"
    return None
