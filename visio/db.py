"""Persistent state: people who signed in, their sessions, rooms, room members, and the
captures (transcripts, recordings) of their meetings.

Meetings themselves live in memory while they run (visio.conference.meetings).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

MIGRATIONS = Path(__file__).parent / "migrations"
Access = Literal["public", "trusted", "restricted"]
MemberRole = Literal["member", "admin"]
Language = Literal["auto", "en", "fr"]
CaptionsPolicy = Literal["everyone", "moderators"]
ACCESS_LEVELS: tuple[Access, ...] = ("public", "trusted", "restricted")
MEMBER_ROLES: tuple[MemberRole, ...] = ("member", "admin")
LANGUAGES: tuple[Language, ...] = ("auto", "en", "fr")
CaptureStatus = Literal["capturing", "queued", "running", "done", "failed"]
CLAIM_CANDIDATES = 20


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    name: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginSession(Base):
    """A signed-in browser. The cookie holds a token; only its SHA-256 is stored."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Room(Base):
    __tablename__ = "rooms"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    permanent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    access: Mapped[str] = mapped_column(String(16), default="public")
    language: Mapped[str] = mapped_column(String(8), default="auto")
    max_participants: Mapped[int | None] = mapped_column(nullable=True)  # a moderator's cap
    # Who may start live captions: "everyone", or "moderators" (others may then only
    # follow captions a moderator started).
    captions: Mapped[str] = mapped_column(String(16), default="everyone")
    # Large meetings and webinars (visio.conference.rights): whether people who are not
    # moderators may publish without being let speak, how many may be in before newcomers
    # enter muted (0: never), and whether anyone may mute anyone (else moderators only).
    attendees_publish: Mapped[bool] = mapped_column(default=True)
    mute_on_entry_above: Mapped[int] = mapped_column(default=10)
    everyone_can_mute: Mapped[bool] = mapped_column(default=False)
    # The last meeting's start or end; None: never used since it was created.
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # What a phone caller keys in to enter this room's meeting (visio.sip); as secret as
    # the meeting link, since it opens the same door.
    pin: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)


class RoomMember(Base):
    """Someone invited to a room by email; `admin` members moderate its meetings."""

    __tablename__ = "room_members"

    room_id: Mapped[str] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Capture(Base):
    """What was captured of one meeting (audio per participant) and what became of it.

    The capture is also the transcription job: its status, progress and error are what
    the job runner and the web app read.
    """

    __tablename__ = "captures"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(8), default="auto")
    transcribe: Mapped[bool] = mapped_column(default=False)
    record: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), default="capturing", index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


@dataclass(frozen=True)
class RoomPolicy:
    """What decides who enters a room and who moderates it, read fresh at each join."""

    room_id: str
    name: str
    access: Access
    owner_id: str | None
    roles: dict[str, str]  # email -> member | admin
    language: Language = "auto"
    max_participants: int | None = None  # a moderator's cap, under the server's
    captions: CaptionsPolicy = "everyone"
    attendees_publish: bool = True
    mute_on_entry_above: int = 10
    everyone_can_mute: bool = False


class RoomExists(Exception):
    pass


def random_room_id() -> str:
    """A short, hard-to-guess meeting code such as `abc-defg-hij` (26^10 ≈ 1.4e14)."""
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
    return f"{letters[:3]}-{letters[3:7]}-{letters[7:]}"


PIN_DIGITS = 9


def random_pin() -> str:
    """A room's dial-in PIN: 9 digits, never starting with 0 (some phones drop it)."""
    return str(secrets.choice(range(1, 10))) + "".join(
        secrets.choice(string.digits) for _ in range(PIN_DIGITS - 1)
    )


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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

    # -- people and their sessions ---------------------------------------------------

    async def sign_in(self, issuer: str, subject: str, email: str | None, name: str) -> User:
        """The user with this identity at this issuer, created or refreshed."""
        now = _now()
        async with self.sessions.begin() as session:
            user = await session.scalar(
                select(User).where(User.issuer == issuer, User.subject == subject)
            )
            if user is None:
                user = User(
                    id=secrets.token_hex(16), issuer=issuer, subject=subject, created_at=now
                )
                session.add(user)
            user.email = normalise_email(email) if email else None
            user.name = name[:120]
            user.last_login_at = now
        return user

    async def get_user(self, user_id: str) -> User | None:
        async with self.sessions() as session:
            return await session.get(User, user_id)

    async def users_with_email(self, email: str) -> list[User]:
        """The people who signed in with this email (normally one), oldest first."""
        async with self.sessions() as session:
            result = await session.scalars(
                select(User).where(User.email == normalise_email(email)).order_by(User.created_at)
            )
            return list(result)

    async def open_session(self, user_id: str, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        now = _now()
        async with self.sessions.begin() as session:
            await session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
            session.add(
                LoginSession(
                    id=_hash(token),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )
        return token

    async def session_user(self, token: str) -> User | None:
        async with self.sessions() as session:
            found = await session.get(LoginSession, _hash(token))
            if found is None or _aware(found.expires_at) <= _now():
                return None
            return await session.get(User, found.user_id)

    async def close_session(self, token: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(delete(LoginSession).where(LoginSession.id == _hash(token)))

    # -- rooms -----------------------------------------------------------------------

    async def create_room(
        self,
        name: str | None = None,
        room_id: str | None = None,
        permanent: bool = False,
        owner_id: str | None = None,
        access: Access = "public",
    ) -> Room:
        for _ in range(5):
            candidate = room_id or random_room_id()
            room = Room(
                id=candidate,
                name=name or candidate,
                permanent=permanent,
                created_at=_now(),
                owner_id=owner_id,
                access=access,
                pin=random_pin(),
            )
            try:
                async with self.sessions.begin() as session:
                    session.add(room)
                return room
            except IntegrityError as exc:  # the id taken, or (rarely) the PIN: draw again
                if room_id is not None and await self.get_room(room_id) is not None:
                    raise RoomExists(room_id) from exc
        raise RuntimeError("could not draw a free room id")

    async def get_room(self, room_id: str) -> Room | None:
        async with self.sessions() as session:
            return await session.get(Room, room_id)

    async def room_by_pin(self, pin: str) -> Room | None:
        async with self.sessions() as session:
            return await session.scalar(select(Room).where(Room.pin == pin))

    async def list_rooms(self) -> list[Room]:
        async with self.sessions() as session:
            result = await session.scalars(select(Room).order_by(Room.created_at))
            return list(result)

    async def rooms_of(self, user: User) -> list[tuple[Room, str]]:
        """The rooms a user owns or is a member of, with their role in each."""
        async with self.sessions() as session:
            member_of = select(RoomMember.room_id).where(RoomMember.email == (user.email or ""))
            rooms = await session.scalars(
                select(Room)
                .where(or_(Room.owner_id == user.id, Room.id.in_(member_of)))
                .order_by(Room.created_at)
            )
            found = list(rooms)
            roles = {
                m.room_id: m.role
                for m in await session.scalars(
                    select(RoomMember).where(RoomMember.email == (user.email or ""))
                )
            }
        return [(room, "owner" if room.owner_id == user.id else roles[room.id]) for room in found]

    async def update_room(
        self,
        room_id: str,
        name: str | None = None,
        access: Access | None = None,
        language: Language | None = None,
        max_participants: int | None = None,
        captions: CaptionsPolicy | None = None,
        attendees_publish: bool | None = None,
        mute_on_entry_above: int | None = None,
        everyone_can_mute: bool | None = None,
    ) -> Room | None:
        """Change what is given; `max_participants` 0 removes the cap."""
        async with self.sessions.begin() as session:
            room = await session.get(Room, room_id)
            if room is None:
                return None
            if max_participants is not None:
                room.max_participants = max_participants or None
            if name is not None:
                room.name = name
            if access is not None:
                room.access = access
            if language is not None:
                room.language = language
            if captions is not None:
                room.captions = captions
            if attendees_publish is not None:
                room.attendees_publish = attendees_publish
            if mute_on_entry_above is not None:
                room.mute_on_entry_above = mute_on_entry_above
            if everyone_can_mute is not None:
                room.everyone_can_mute = everyone_can_mute
        return room

    async def set_room_owner(self, room_id: str, owner_id: str | None) -> Room | None:
        """Give the room to this user (None: to nobody); None if there is no such room."""
        async with self.sessions.begin() as session:
            room = await session.get(Room, room_id)
            if room is None:
                return None
            room.owner_id = owner_id
        return room

    async def room_used(self, room_id: str) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(Room).where(Room.id == room_id).values(used_at=_now()))

    async def unused_rooms(
        self, owned_before: datetime | None, ownerless_before: datetime | None
    ) -> list[str]:
        """Rooms that are not permanent, last used before the cutoff of their kind (owned
        or ownerless; None: kept whatever their age), with no capture still kept."""
        last_used = func.coalesce(Room.used_at, Room.created_at)
        stale = []
        if owned_before is not None:
            stale.append(and_(Room.owner_id.is_not(None), last_used < owned_before))
        if ownerless_before is not None:
            stale.append(and_(Room.owner_id.is_(None), last_used < ownerless_before))
        if not stale:
            return []
        captured = select(Capture.room_id)
        async with self.sessions() as session:
            found = await session.scalars(
                select(Room.id)
                .where(Room.permanent.is_(False), Room.id.not_in(captured))
                .where(or_(*stale))
            )
            return list(found)

    async def delete_room(self, room_id: str) -> bool:
        """Delete the room with its members and capture records (not their files)."""
        async with self.sessions.begin() as session:
            result = await session.execute(delete(Room).where(Room.id == room_id))
            await session.execute(delete(RoomMember).where(RoomMember.room_id == room_id))
            await session.execute(delete(Capture).where(Capture.room_id == room_id))
        return bool(result.rowcount)

    async def policy(self, room_id: str) -> RoomPolicy | None:
        async with self.sessions() as session:
            room = await session.get(Room, room_id)
            if room is None:
                return None
            members = await session.scalars(select(RoomMember).where(RoomMember.room_id == room_id))
            return RoomPolicy(
                room_id=room.id,
                name=room.name,
                access=room.access,  # type: ignore[arg-type]
                owner_id=room.owner_id,
                roles={m.email: m.role for m in members},
                language=room.language,  # type: ignore[arg-type]
                max_participants=room.max_participants,
                captions=room.captions,  # type: ignore[arg-type]
                attendees_publish=room.attendees_publish,
                mute_on_entry_above=room.mute_on_entry_above,
                everyone_can_mute=room.everyone_can_mute,
            )

    # -- members ---------------------------------------------------------------------

    async def members(self, room_id: str) -> list[RoomMember]:
        async with self.sessions() as session:
            result = await session.scalars(
                select(RoomMember).where(RoomMember.room_id == room_id).order_by(RoomMember.email)
            )
            return list(result)

    async def set_member(self, room_id: str, email: str, role: MemberRole) -> RoomMember:
        email = normalise_email(email)
        async with self.sessions.begin() as session:
            member = await session.get(RoomMember, (room_id, email))
            if member is None:
                member = RoomMember(room_id=room_id, email=email, role=role, added_at=_now())
                session.add(member)
            member.role = role
        return member

    async def remove_member(self, room_id: str, email: str) -> bool:
        async with self.sessions.begin() as session:
            result = await session.execute(
                delete(RoomMember).where(
                    RoomMember.room_id == room_id, RoomMember.email == normalise_email(email)
                )
            )
        return bool(result.rowcount)

    # -- captures (transcription jobs) -----------------------------------------------

    async def create_capture(
        self, room_id: str, title: str, language: str, *, transcribe: bool, record: bool
    ) -> Capture:
        capture = Capture(
            id=secrets.token_hex(12),
            room_id=room_id,
            title=title[:120],
            language=language,
            transcribe=transcribe,
            record=record,
            status="capturing",
            progress=0.0,
            attempts=0,
            started_at=_now(),
        )
        async with self.sessions.begin() as session:
            session.add(capture)
        return capture

    async def get_capture(self, capture_id: str) -> Capture | None:
        async with self.sessions() as session:
            return await session.get(Capture, capture_id)

    async def captures_of(self, room_id: str) -> list[Capture]:
        async with self.sessions() as session:
            result = await session.scalars(
                select(Capture)
                .where(Capture.room_id == room_id)
                .order_by(Capture.started_at.desc())
            )
            return list(result)

    async def update_capture(
        self, capture_id: str, *, when_status: CaptureStatus | None = None, **fields: object
    ) -> bool:
        """Change a capture (only while its status is `when_status`, if given); False if not."""
        query = update(Capture).where(Capture.id == capture_id)
        if when_status is not None:
            query = query.where(Capture.status == when_status)
        async with self.sessions.begin() as session:
            result = await session.execute(query.values(**fields))
        return bool(result.rowcount)

    async def claim_capture(self, capture_id: str | None = None) -> Capture | None:
        """Take the oldest queued capture (or the one named, if it is queued) for
        transcription, atomically (several workers).

        Each candidate is taken by a conditional update: a worker that loses one to
        another tries the next, so no queued job waits for a later poll.
        """
        if capture_id is not None:
            candidate_ids = [capture_id]
        else:
            async with self.sessions() as session:
                candidates = await session.scalars(
                    select(Capture.id)
                    .where(Capture.status == "queued")
                    .order_by(Capture.ended_at, Capture.started_at)
                    .limit(CLAIM_CANDIDATES)
                )
                candidate_ids = list(candidates)
        for candidate in candidate_ids:
            async with self.sessions.begin() as session:
                claimed = await session.execute(
                    update(Capture)
                    .where(Capture.id == candidate, Capture.status == "queued")
                    .values(status="running", progress=0.0, attempts=Capture.attempts + 1)
                )
                if claimed.rowcount:
                    return await session.get(Capture, candidate, populate_existing=True)
        return None

    async def captures_in(self, *statuses: CaptureStatus) -> list[Capture]:
        async with self.sessions() as session:
            result = await session.scalars(select(Capture).where(Capture.status.in_(statuses)))
            return list(result)

    async def capture_counts(self) -> dict[str, int]:
        """How many captures are in each status (the job queue, for metrics)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(Capture.status, func.count()).group_by(Capture.status)
            )
            return {status: count for status, count in rows}

    async def expired_captures(self, now: datetime | None = None) -> list[Capture]:
        async with self.sessions() as session:
            result = await session.scalars(
                select(Capture).where(Capture.expires_at <= (now or _now()))
            )
            return list(result)

    async def delete_capture(self, capture_id: str) -> bool:
        async with self.sessions.begin() as session:
            result = await session.execute(delete(Capture).where(Capture.id == capture_id))
        return bool(result.rowcount)
