"""`visio rooms …`: rooms, their owner, access level, members and admins, from the shell.

Changes go to the database. A running meeting reads its room's policy at each join, so a
change applies to whoever joins next; the web app's API, which runs in the server, also
applies it at once to the people already inside.

A room's owner is an account (users: issuer + subject), made at its first sign-in, so
`--owner EMAIL` needs someone who has signed in with that email. Members and admins are
invited by email and need no account yet: `--admin EMAIL` gives the same moderation
rights before anyone signed in.
"""

from __future__ import annotations

import argparse
import errno
import os
import pwd
import re
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from visio import audit
from visio.config import Settings
from visio.db import (
    ACCESS_LEVELS,
    LANGUAGES,
    MEMBER_ROLES,
    Room,
    RoomExists,
    Store,
    normalise_email,
)
from visio.protocol import ROOM_ID_PATTERN

EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # what the REST API accepts
NAME_MAX = 120
BUSY = ("capturing", "running")  # a capture whose files are being written
YES_NO = ("yes", "no")
STAGE = ("attendees_publish", "mute_on_entry_above", "everyone_can_mute")


class UsageError(Exception):
    """The command is wrong (exit code 2)."""


class Refused(Exception):
    """The command is right but cannot be done: no such room, person, member (exit code 1)."""


def add_rooms_parser(commands: Any) -> argparse.ArgumentParser:
    # --config and --data-dir are taken before or after the action.
    where = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    where.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    where.add_argument("--data-dir", dest="data_dir", help="state folder (default ./var)")
    rooms = commands.add_parser(
        "rooms", help="create, change, list and delete rooms", parents=[where]
    )
    actions = rooms.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a room and print its link", parents=[where])
    create.add_argument("--name", help="a human name for the room")
    create.add_argument("--id", help="a fixed id for a permanent named room, e.g. team-weekly")
    create.add_argument("--permanent", action="store_true", help="keep the room for good")
    _policy_options(create)
    create.add_argument(
        "--member", action="append", default=[], metavar="EMAIL", help="invite (repeatable)"
    )
    create.add_argument(
        "--admin",
        action="append",
        default=[],
        metavar="EMAIL",
        help="invite as a moderator (repeatable)",
    )

    actions.add_parser("list", help="list the rooms", parents=[where])

    show = actions.add_parser("show", help="a room: link, access, owner, members", parents=[where])
    show.add_argument("room", metavar="ROOM")

    change = actions.add_parser(
        "set", help="change a room's name, access level or owner", parents=[where]
    )
    change.add_argument("room", metavar="ROOM")
    change.add_argument("--name", help="a human name for the room")
    _policy_options(change)
    change.add_argument("--no-owner", action="store_true", help="the room belongs to nobody")
    change.add_argument("--language", choices=LANGUAGES, help="of transcripts and captions")
    _stage_options(change)

    members = actions.add_parser(
        "members",
        help="list, add or remove members and admins",
        description="Without add or remove: list the room's members and admins.",
        parents=[where],
    )
    members.add_argument("room", metavar="ROOM")
    member_actions = members.add_subparsers(dest="member_action", metavar="add|remove")
    add = member_actions.add_parser("add", help="invite someone (or change their role)")
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--role", choices=MEMBER_ROLES, default="member", help="default member")
    remove = member_actions.add_parser("remove", help="take someone off the room")
    remove.add_argument("email", metavar="EMAIL")

    delete = actions.add_parser(
        "delete", help="delete a room, its members and its captures", parents=[where]
    )
    delete.add_argument("room", metavar="ROOM")
    return rooms


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--access",
        choices=ACCESS_LEVELS,
        help="who enters without waiting: anyone, signed-in people, or members",
    )
    parser.add_argument(
        "--owner", metavar="EMAIL", help="the account that owns the room (signed in once)"
    )


def _stage_options(parser: argparse.ArgumentParser) -> None:
    """Large meetings and webinars (docs/OPERATIONS.md, "Large meetings and webinars")."""
    parser.add_argument(
        "--attendees-publish",
        choices=YES_NO,
        help="no: a webinar; only moderators and those they let speak may publish",
    )
    parser.add_argument(
        "--mute-on-entry-above",
        type=_count,
        metavar="N",
        help="newcomers enter muted when N people are in already (0: never)",
    )
    parser.add_argument("--everyone-can-mute", choices=YES_NO, help="yes: anyone may mute anyone")


def _count(value: str) -> int:
    if not value.isdigit() or int(value) > 100_000:
        raise argparse.ArgumentTypeError(f"a number from 0 to 100000, not {value!r}")
    return int(value)


def _yes(value: str | None) -> bool | None:
    return None if value is None else value == "yes"


async def run_rooms(settings: Settings, args: argparse.Namespace) -> int:
    try:
        _check(args)
        _check_database(settings)
        store = Store(settings.sqlalchemy_url)
        try:
            await store.migrate()
            return await ACTIONS[args.action](store, settings, args)
        finally:
            await store.close()
    except UsageError as exc:
        print(f"visio: {exc}", file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"visio: {exc}", file=sys.stderr)
        return 1
    except (OSError, DBAPIError) as exc:
        database = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
        why = exc.orig if isinstance(exc, DBAPIError) else exc.strerror or exc
        print(
            f"visio: cannot use the database {database}: {why} "
            "(run this as the user the server runs as, with its --config or --data-dir)",
            file=sys.stderr,
        )
        return 1


def _check(args: argparse.Namespace) -> None:
    """What argparse cannot check, before the database is touched."""
    if args.action == "create" and args.id is not None:
        _room_id(args.id)
    if getattr(args, "name", None) is not None:
        args.name = args.name.strip()
        if not 1 <= len(args.name) <= NAME_MAX:
            raise UsageError(f"a room name has 1 to {NAME_MAX} characters")
    for email in (
        getattr(args, "owner", None),
        getattr(args, "email", None),
        *getattr(args, "member", []),
        *getattr(args, "admin", []),
    ):
        if email is not None and not (len(email) <= 254 and EMAIL.fullmatch(email.strip())):
            raise UsageError(f"invalid email address {email!r}")
    if args.action == "create":
        both = {normalise_email(e) for e in args.member} & {normalise_email(e) for e in args.admin}
        if both:
            raise UsageError(f"{', '.join(sorted(both))}: either --member or --admin, not both")
    if args.action == "set":
        if args.owner and args.no_owner:
            raise UsageError("--owner and --no-owner go separately")
        stage = [getattr(args, key) for key in STAGE]
        if (args.name, args.access, args.owner, args.language, *stage) == (None,) * 7 and not (
            args.no_owner
        ):
            raise UsageError("nothing to change: give --name, --access, --owner, --no-owner, "
                             "--language, --attendees-publish, --mute-on-entry-above or "
                             "--everyone-can-mute")  # fmt: skip


def _check_database(settings: Settings) -> None:
    """With SQLite, that this user may write the database and its folder, checked before
    SQLite fails to open it (and leaves a thread that prints a traceback). Root must not
    write the server's database: a file SQLite makes as root (the database, a journal left
    by a crash) would be unreadable to the server."""
    url = make_url(settings.sqlalchemy_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return
    database = Path(url.database)
    try:
        owner = database.parent.stat().st_uid
    except FileNotFoundError:
        return  # the store makes it, or says why it cannot
    if os.geteuid() == 0 and owner != 0:
        name = _user_name(owner)
        raise UsageError(
            f"{database.parent} belongs to {name}: run this command as that user "
            f"(sudo -u {name} .venv/bin/visio rooms …), so that the server can still open "
            "what it writes"
        )
    for path in (database.parent, database):
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _room_id(room_id: str) -> None:
    if not re.fullmatch(ROOM_ID_PATTERN, room_id):
        raise UsageError(
            f"invalid room id {room_id!r}: use 3-64 lowercase letters, digits and dashes, "
            "not starting or ending with a dash"
        )


# -- the actions ------------------------------------------------------------------------


async def _create(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    later = f"visio rooms set {args.id or 'ROOM'} --owner {args.owner}"
    owner_id = await _owner_id(store, settings, args.owner, f"--admin {args.owner}", later)
    try:
        room = await store.create_room(
            name=args.name,
            room_id=args.id,
            permanent=args.id is not None or args.permanent,
            owner_id=owner_id,
            access=args.access or "public",
        )
    except RoomExists:
        raise Refused(f"room {args.id!r} exists already") from None
    _audit("room_created", room=room.id, access=room.access, owner=owner_id)
    for email in args.member:
        await store.set_member(room.id, email, "member")
        _audit("member_set", room=room.id, member=normalise_email(email), role="member")
    for email in args.admin:
        await store.set_member(room.id, email, "admin")
        _audit("member_set", room=room.id, member=normalise_email(email), role="admin")
    print(_link(settings, room.id))
    return 0


async def _list(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    for room in await store.list_rooms():
        kind = "permanent" if room.permanent else "meeting"
        print(f"{room.id}\t{kind}\t{room.created_at:%Y-%m-%d %H:%M}\t{room.name}")
    return 0


async def _show(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    room = await _existing(store, args.room)
    await _print_room(store, settings, room)
    return 0


async def _set(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    room = await _existing(store, args.room)
    if args.owner:
        now = f"visio rooms members {room.id} add {args.owner} --role admin"
        owner_id = await _owner_id(store, settings, args.owner, now, "this command again")
        await store.set_room_owner(room.id, owner_id)
        _audit("room_owner_set", room=room.id, owner=owner_id)
    if args.no_owner:
        await store.set_room_owner(room.id, None)
        _audit("room_owner_removed", room=room.id)
    changed = {
        "name": args.name,
        "access": args.access,
        "language": args.language,
        "attendees_publish": _yes(args.attendees_publish),
        "mute_on_entry_above": args.mute_on_entry_above,
        "everyone_can_mute": _yes(args.everyone_can_mute),
    }
    if any(value is not None for value in changed.values()):
        await store.update_room(room.id, **changed)
        _audit("room_changed", room=room.id, **audit.room_change(changed))
    await _print_room(store, settings, await _existing(store, room.id))
    return 0


async def _members(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    room = await _existing(store, args.room)
    if args.member_action == "add":
        member = await store.set_member(room.id, args.email, args.role)
        _audit("member_set", room=room.id, member=member.email, role=member.role)
        print(f"{member.email}\t{member.role}")
    elif args.member_action == "remove":
        if not await store.remove_member(room.id, args.email):
            raise Refused(f"{normalise_email(args.email)} is not a member of room {room.id!r}")
        _audit("member_removed", room=room.id, member=normalise_email(args.email))
    else:
        for member in await store.members(room.id):
            print(f"{member.email}\t{member.role}")
    return 0


async def _delete(store: Store, settings: Settings, args: argparse.Namespace) -> int:
    from visio.transcripts.jobs import delete_files

    room = await _existing(store, args.room)
    captures = await store.captures_of(room.id)
    busy = [c.status for c in captures if c.status in BUSY]
    if busy:
        doing = "recorded" if "capturing" in busy else "transcribed"
        raise Refused(
            f"room {room.id!r} has a meeting being {doing} (its files are in use): "
            "delete it once that is over"
        )
    for capture in captures:
        delete_files(settings, capture.id)
    await store.delete_room(room.id)
    _audit("room_deleted", room=room.id)
    return 0


ACTIONS = {
    "create": _create,
    "list": _list,
    "show": _show,
    "set": _set,
    "members": _members,
    "delete": _delete,
}


# -- helpers ----------------------------------------------------------------------------


def _audit(event: str, **fields: Any) -> None:
    """An event done from the shell: by the account that ran the command, on this host."""
    audit.record(event, {"cli": "visio rooms", "os_user": _user_name(os.geteuid())}, **fields)


async def _existing(store: Store, room_id: str) -> Room:
    room = await store.get_room(room_id)
    if room is None:
        raise Refused(f"no room {room_id!r}")
    return room


async def _owner_id(
    store: Store, settings: Settings, email: str | None, admin_now: str, owner_later: str
) -> str | None:
    """The account with this email; Refused, saying what to do, when there is none or several."""
    if email is None:
        return None
    email = normalise_email(email)
    users = await store.users_with_email(email)
    if len(users) == 1:
        return users[0].id
    if users:
        issuers = ", ".join(sorted({u.issuer for u in users}))
        raise Refused(
            f"{len(users)} accounts signed in with {email} (issuers: {issuers}): "
            "the owner must be one person; make them admins instead"
        )
    why = "" if settings.sign_in_enabled else " (sign-in is off: oidc_issuer is not set)"
    raise Refused(
        f"nobody has signed in with {email} yet{why}, and a room's owner is an account, "
        f"made at its first sign-in. Make them an admin instead ({admin_now}): admins "
        f"moderate as the owner does and need no account beforehand. Once they have "
        f"signed in, {owner_later} gives them the room"
    )


async def _print_room(store: Store, settings: Settings, room: Room) -> None:
    owner = await store.get_user(room.owner_id) if room.owner_id else None
    rows = [
        ("id", room.id),
        ("name", room.name),
        ("link", _link(settings, room.id)),
        ("kind", "permanent" if room.permanent else "meeting"),
        ("access", room.access),
        ("owner", f"{owner.email or owner.id} ({owner.name})" if owner else "nobody"),
        ("language", room.language),
        ("attendees", "publish" if room.attendees_publish else "listen (a webinar)"),
        ("muted", _muted_on_entry(room.mute_on_entry_above)),
        ("mute", "anyone mutes anyone" if room.everyone_can_mute else "moderators mute"),
        ("created", f"{room.created_at:%Y-%m-%d %H:%M}"),
        ("pin", room.pin or "none"),  # to dial in by phone (sip_enabled)
    ]
    rows += [(member.role, member.email) for member in await store.members(room.id)]
    for key, value in rows:
        print(f"{key:<10}{value}")


def _muted_on_entry(above: int) -> str:
    return f"on entry above {above} people" if above else "never on entry"


def _link(settings: Settings, room_id: str) -> str:
    base = settings.public_url.rstrip("/") or f"http://localhost:{settings.port}"
    return f"{base}/{room_id}"
