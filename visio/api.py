"""The REST API: who am I, and rooms with their access level and members.

Every endpoint checks who calls it; state-changing ones are also behind the CSRF guard
(visio.auth.csrf). Changes to a room apply to its running meeting at once.
"""

from __future__ import annotations

import math
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from visio import audit
from visio.access import Identity
from visio.auth.cookies import GUEST, well_formed
from visio.auth.identity import current_user, require_user
from visio.conference.rooms import Rooms
from visio.config import Settings
from visio.db import (
    Access,
    CaptionsPolicy,
    Language,
    Room,
    RoomExists,
    RoomPolicy,
    Store,
    User,
    normalise_email,
)
from visio.limits.callers import Caller, Limits, Refused
from visio.protocol import ROOM_ID_PATTERN
from visio.transcripts.jobs import delete_files
from visio.turn import ice_servers

RoomName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
RoomId = Annotated[str, StringConstraints(pattern=ROOM_ID_PATTERN)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
]
YourRole = Literal["owner", "admin", "member"]
# A connection test takes seconds: its TURN credentials need not outlive a few minutes.
CONNECTION_TEST_TTL_S = 300


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewRoom(Strict):
    name: RoomName | None = None
    id: RoomId | None = Field(None, description="A permanent named room (signed-in only)")
    access: Access = "public"


class RoomChange(Strict):
    name: RoomName | None = None
    access: Access | None = None
    language: Language | None = Field(None, description="Of transcripts and captions")
    captions: CaptionsPolicy | None = Field(
        None, description="Who may start live captions: everyone, or moderators only"
    )
    max_participants: int | None = Field(
        None,
        ge=0,
        le=100_000,
        description="At most this many people in its meetings (2 or more); 0: no cap",
    )
    attendees_publish: bool | None = Field(
        None,
        description="Whether people who do not moderate may speak and present without a "
        "moderator letting them (false: a webinar; they raise their hand)",
    )
    mute_on_entry_above: int | None = Field(
        None, ge=0, le=100_000, description="Newcomers enter muted above this many people; 0: never"
    )
    everyone_can_mute: bool | None = Field(
        None, description="Whether anyone may mute anyone (false: moderators only)"
    )

    @field_validator("max_participants")
    @classmethod
    def _two_at_least(cls, value: int | None) -> int | None:
        if value == 1:
            raise ValueError("a meeting needs room for 2 people at least (0: no cap)")
        return value


class MemberRole(Strict):
    role: Literal["member", "admin"]


class Person(BaseModel):
    id: str
    name: str


class Me(BaseModel):
    user: dict[str, str | None] | None
    csrf: str
    sign_in: bool
    can_create_rooms: bool


class RoomOut(BaseModel):
    id: str
    name: str
    url: str
    permanent: bool
    access: Access
    language: Language = "auto"
    captions: CaptionsPolicy = "everyone"
    attendees_publish: bool = True
    mute_on_entry_above: int = 10
    everyone_can_mute: bool = False
    max_participants: int | None = Field(None, description="The cap its moderators set")
    owner: Person | None = Field(None, description="To the room's owner, admins and members")
    participants: int | None = Field(
        None, description="People in the meeting now; to those who may enter without waiting"
    )
    your_role: YourRole | None = None
    capture: dict[str, bool] = Field(
        default_factory=dict, description="Is the meeting being transcribed or recorded now"
    )
    dial_in: DialInOut | None = Field(
        None, description="How to join by phone, when the SIP gateway is on"
    )


class DialInOut(BaseModel):
    sip_uri: str = Field(description="Call this SIP address, then key in the PIN and #")
    phone_number: str | None = Field(None, description="A phone number to the same gateway")
    pin: str


class ConnectionTestOut(BaseModel):
    ice_servers: list[dict[str, Any]] = Field(
        description="STUN and TURN servers, as in the joined frame; short-lived credentials"
    )
    media_ports: str = Field(description="The media servers' UDP ports (Janus' RTP range)")


class MemberOut(BaseModel):
    email: str
    role: Literal["member", "admin"]


class ParticipantOut(BaseModel):
    id: str
    name: str
    guest: bool
    role: str
    connection: str


class WaiterOut(BaseModel):
    id: str
    name: str
    guest: bool
    since: int


class MeetingOut(BaseModel):
    running: bool
    locked: bool
    participants: list[ParticipantOut]
    waiting: list[WaiterOut]


def your_role(owner_id: str | None, user: User | None, roles: dict[str, str]) -> YourRole | None:
    if user is None:
        return None
    if owner_id == user.id:
        return "owner"
    role = roles.get(user.email or "")
    return role if role in ("admin", "member") else None  # type: ignore[return-value]


def caller(request: Request, user: User | None) -> Caller:
    """Who makes an HTTP request, for the limits: the guest key only if their browser sent
    one (a cookie-less client gets a fresh one with every answer)."""
    guest_key = request.cookies.get(GUEST, "")
    identity = Identity(
        user_id=user.id if user else None, guest_key=guest_key if well_formed(guest_key) else None
    )
    return Caller.of(identity, request.client.host if request.client else None)


def sip_uri(settings: Settings, public_host: str) -> str:
    wildcard = settings.host in ("0.0.0.0", "::")
    domain = (
        settings.sip_domain or settings.sip_host or (public_host if wildcard else settings.host)
    )
    return f"sip:visio@{domain}" + ("" if settings.sip_port == 5060 else f":{settings.sip_port}")


def api_router(settings: Settings, store: Store, rooms: Rooms, limits: Limits) -> APIRouter:
    router = APIRouter(prefix="/api")

    def base_url(request: Request) -> str:
        return settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")

    async def room_out(request: Request, room: Room, user: User | None) -> RoomOut:
        policy = await store.policy(room.id)
        roles = policy.roles if policy else {}
        role = your_role(room.owner_id, user, roles)
        meeting = await rooms.view(room.id)
        # Others get what the pre-join screen needs, and the capture notice (audit L6): not
        # who owns the room, nor, where they would wait, how many are inside.
        owner = await store.get_user(room.owner_id) if room.owner_id and role else None
        enters = role is not None or room.access == "public"
        enters = enters or (room.access == "trusted" and user is not None)
        return RoomOut(
            id=room.id,
            name=room.name,
            url=f"{base_url(request)}/{room.id}",
            permanent=room.permanent,
            access=room.access,  # type: ignore[arg-type]
            language=room.language,  # type: ignore[arg-type]
            captions=room.captions,  # type: ignore[arg-type]
            attendees_publish=room.attendees_publish,
            mute_on_entry_above=room.mute_on_entry_above,
            everyone_can_mute=room.everyone_can_mute,
            max_participants=room.max_participants if role else None,
            owner=Person(id=owner.id, name=owner.name) if owner else None,
            participants=len(meeting.participants) if enters else None,
            your_role=role,
            capture=meeting.capture,
            dial_in=dial_in(room, urlsplit(base_url(request)).hostname or "localhost"),
        )

    def dial_in(room: Room, public_host: str) -> DialInOut | None:
        # Given to whoever has the link: the PIN opens the same door, no other.
        if not settings.sip_enabled or not room.pin:
            return None
        return DialInOut(
            sip_uri=sip_uri(settings, public_host),
            phone_number=settings.sip_phone_number or None,
            pin=room.pin,
        )

    async def room_for(room_id: str, user: User, allowed: tuple[str, ...]) -> RoomPolicy:
        """The room's policy, if this user's role in it is one of `allowed`; 403 or 404."""
        policy = await store.policy(room_id) if len(room_id) <= 64 else None
        if policy is None:
            raise HTTPException(404, "no such room")
        if your_role(policy.owner_id, user, policy.roles) not in allowed:
            raise HTTPException(403, "you may not do this in this room")
        return policy

    @router.get("/me", response_model=Me, tags=["sign-in"])
    async def me(request: Request) -> Me:
        user = await current_user(request, store)
        return Me(
            user={"id": user.id, "name": user.name, "email": user.email} if user else None,
            csrf=request.state.csrf,
            sign_in=settings.sign_in_enabled,
            can_create_rooms=user is not None or settings.anyone_creates_rooms,
        )

    @router.get("/connection-test", response_model=ConnectionTestOut, tags=["connection test"])
    async def connection_test(request: Request, response: Response) -> ConnectionTestOut:
        """What the pre-join screen's connection test needs to try each way media may take."""
        user = await current_user(request, store)
        try:
            await limits.connection_test(caller(request, user))
        except Refused as refused:
            retry_after = str(math.ceil(refused.retry_in))
            raise HTTPException(429, refused.message, {"Retry-After": retry_after}) from None
        response.headers["Cache-Control"] = "no-store"
        ttl_s = min(settings.turn_ttl_s, CONNECTION_TEST_TTL_S)
        return ConnectionTestOut(
            ice_servers=ice_servers(settings, f"test-{secrets.token_hex(6)}", ttl_s),
            media_ports=settings.janus_rtp_ports,
        )

    @router.post("/rooms", status_code=201, response_model=RoomOut, tags=["rooms"])
    async def create_room(request: Request, body: NewRoom | None = None) -> RoomOut:
        body = body or NewRoom()
        user = await current_user(request, store)
        if user is None and not settings.anyone_creates_rooms:
            raise HTTPException(401, "sign in to create a meeting")
        if user is None and (body.id is not None or body.access != "public"):
            raise HTTPException(401, "sign in to create a named room or set its access")
        try:
            await limits.room_creation(caller(request, user))
        except Refused as refused:
            retry_after = str(math.ceil(refused.retry_in))
            raise HTTPException(429, refused.message, {"Retry-After": retry_after}) from None
        try:
            room = await store.create_room(
                name=body.name,
                room_id=body.id,
                permanent=body.id is not None,
                owner_id=user.id if user else None,
                access=body.access,
            )
        except RoomExists as exc:
            raise HTTPException(409, f"a room {body.id!r} exists already") from exc
        audit.record(
            "room_created", audit.by_request(request, user), room=room.id, access=room.access
        )
        return await room_out(request, room, user)

    @router.get("/rooms", response_model=list[RoomOut], tags=["rooms"])
    async def my_rooms(request: Request) -> list[RoomOut]:
        user = await require_user(request, store)
        return [await room_out(request, room, user) for room, _ in await store.rooms_of(user)]

    @router.get("/rooms/{room_id}", response_model=RoomOut, tags=["rooms"])
    async def get_room(request: Request, room_id: str) -> RoomOut:
        room = await store.get_room(room_id) if len(room_id) <= 64 else None
        if room is None:
            raise HTTPException(404, "no such room")
        return await room_out(request, room, await current_user(request, store))

    @router.patch("/rooms/{room_id}", response_model=RoomOut, tags=["rooms"])
    async def change_room(request: Request, room_id: str, body: RoomChange) -> RoomOut:
        user = await require_user(request, store)
        await room_for(room_id, user, ("owner", "admin"))
        room = await store.update_room(
            room_id,
            name=body.name,
            access=body.access,
            language=body.language,
            max_participants=body.max_participants,
            captions=body.captions,
            attendees_publish=body.attendees_publish,
            mute_on_entry_above=body.mute_on_entry_above,
            everyone_can_mute=body.everyone_can_mute,
        )
        if room is None:
            raise HTTPException(404, "no such room")
        change = audit.room_change(body.model_dump())
        audit.record("room_changed", audit.by_request(request, user), room=room_id, **change)
        await rooms.policy_changed(room_id)
        return await room_out(request, room, user)

    @router.delete("/rooms/{room_id}", status_code=204, tags=["rooms"])
    async def delete_room(request: Request, room_id: str) -> Response:
        user = await require_user(request, store)
        await room_for(room_id, user, ("owner",))
        await rooms.end(room_id)
        for capture in await store.captures_of(room_id):
            delete_files(settings, capture.id)
        await store.delete_room(room_id)
        audit.record("room_deleted", audit.by_request(request, user), room=room_id)
        return Response(status_code=204)

    @router.get("/rooms/{room_id}/members", response_model=list[MemberOut], tags=["members"])
    async def members(request: Request, room_id: str) -> list[MemberOut]:
        user = await require_user(request, store)
        await room_for(room_id, user, ("owner", "admin"))
        return [MemberOut(email=m.email, role=m.role) for m in await store.members(room_id)]  # type: ignore[arg-type]

    @router.put("/rooms/{room_id}/members/{email}", response_model=MemberOut, tags=["members"])
    async def set_member(
        request: Request, room_id: str, email: Email, body: MemberRole
    ) -> MemberOut:
        user = await require_user(request, store)
        policy = await room_for(room_id, user, ("owner", "admin"))
        current = policy.roles.get(normalise_email(email))
        if policy.owner_id != user.id and "admin" in (body.role, current):
            raise HTTPException(403, "only the owner names or changes admins")
        member = await store.set_member(room_id, email, body.role)
        by = audit.by_request(request, user)
        audit.record("member_set", by, room=room_id, member=member.email, role=member.role)
        await rooms.policy_changed(room_id)
        return MemberOut(email=member.email, role=member.role)  # type: ignore[arg-type]

    @router.delete("/rooms/{room_id}/members/{email}", status_code=204, tags=["members"])
    async def remove_member(request: Request, room_id: str, email: Email) -> Response:
        user = await require_user(request, store)
        policy = await room_for(room_id, user, ("owner", "admin"))
        current = policy.roles.get(normalise_email(email))
        if current is None:
            raise HTTPException(404, "no such member")
        if current == "admin" and policy.owner_id != user.id:
            raise HTTPException(403, "only the owner removes an admin")
        await store.remove_member(room_id, email)
        by = audit.by_request(request, user)
        audit.record("member_removed", by, room=room_id, member=normalise_email(email))
        await rooms.policy_changed(room_id)
        return Response(status_code=204)

    @router.get("/rooms/{room_id}/participants", response_model=MeetingOut, tags=["rooms"])
    async def participants(request: Request, room_id: str) -> MeetingOut:
        user = await require_user(request, store)
        await room_for(room_id, user, ("owner", "admin"))
        meeting = await rooms.view(room_id)
        return MeetingOut(
            running=meeting.running,
            locked=meeting.locked,
            participants=[ParticipantOut(**p) for p in meeting.participants],
            waiting=[WaiterOut(**w) for w in meeting.waiting],
        )

    return router
