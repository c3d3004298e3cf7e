"""The `visio` command: serve, manage rooms, check a deployment with a bot."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from visio import __version__
from visio.config import ConfigError, Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "config", None):
        os.environ["VISIO_CONFIG"] = args.config
    overrides = {}
    for field in ("host", "port", "data_dir"):
        value = getattr(args, field, None)
        if value is not None:
            overrides[field] = value
    return load_settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from visio.logs import setup_logging
    from visio.server import DrainingServer, create_app

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=1024 * 1024,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
        lifespan="on",
        # The app reads forwarded headers itself, from trusted_proxies only
        # (visio.proxies): uvicorn's own default trusts anyone on 127.0.0.1.
        proxy_headers=False,
        http=_http_protocol(settings),
    )
    DrainingServer(config, app.state.services).run()
    return 0


def _http_protocol(settings: Settings) -> type | str:
    """uvicorn's HTTP protocol, behind a reader of the PROXY protocol when configured."""
    if not settings.proxy_protocol:
        return "auto"
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from visio.addresses import parse_networks
    from visio.proxy_protocol import protocol_class

    return protocol_class(AutoHTTPProtocol, parse_networks(settings.trusted_proxies))


async def _rooms_create(settings: Settings, args: argparse.Namespace) -> int:
    import re

    from visio.db import RoomExists, Store
    from visio.protocol import ROOM_ID_PATTERN

    if args.id is not None and not re.fullmatch(ROOM_ID_PATTERN, args.id):
        print(
            f"visio: invalid room id {args.id!r}: use 3-64 lowercase letters, digits and "
            "dashes, not starting or ending with a dash",
            file=sys.stderr,
        )
        return 2
    store = Store(settings.sqlalchemy_url)
    try:
        await store.migrate()
        room = await store.create_room(
            name=args.name, room_id=args.id, permanent=args.id is not None or args.permanent
        )
    except RoomExists:
        print(f"visio: room {args.id!r} exists already", file=sys.stderr)
        return 1
    finally:
        await store.close()
    base = settings.public_url.rstrip("/") or f"http://localhost:{settings.port}"
    print(f"{base}/{room.id}")
    return 0


async def _rooms_list(settings: Settings) -> int:
    from visio.db import Store

    store = Store(settings.sqlalchemy_url)
    try:
        await store.migrate()
        rooms = await store.list_rooms()
    finally:
        await store.close()
    for room in rooms:
        kind = "permanent" if room.permanent else "meeting"
        print(f"{room.id}\t{kind}\t{room.created_at:%Y-%m-%d %H:%M}\t{room.name}")
    return 0


def cmd_rooms(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.action == "create":
        return asyncio.run(_rooms_create(settings, args))
    return asyncio.run(_rooms_list(settings))


def cmd_bot(args: argparse.Namespace) -> int:
    from visio.client.bot import run_bot

    return asyncio.run(
        run_bot(args.link, server=args.server, name=args.name, duration=args.duration)
    )


def cmd_transcribe(args: argparse.Namespace) -> int:
    from visio.transcripts.command import transcribe_files

    return transcribe_files(
        _settings(args), args.files, args.output, args.language, args.speaker or []
    )


def _jobs_at_once(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError("must be a number from 1 to 64")
    return int(value)


def cmd_worker(args: argparse.Namespace) -> int:
    from visio.logs import setup_logging

    settings = _settings(args)
    if settings.job_queue != "procrastinate":
        print(
            "visio: `visio worker` runs the jobs of a shared queue: set job_queue = "
            '"procrastinate" and a PostgreSQL database_url (the server, with the default '
            "job_queue, runs its jobs itself)",
            file=sys.stderr,
        )
        return 2
    setup_logging(settings.log_level, settings.log_format)
    from visio.transcripts.queue import run_worker

    asyncio.run(run_worker(settings, concurrency=args.concurrency))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="visio", description="Sovereign video conferencing on Janus."
    )
    parser.add_argument("--version", action="version", version=f"visio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (web app, API, local Janus)")
    serve.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    serve.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--data-dir", dest="data_dir", help="state folder (default ./var)")
    serve.set_defaults(func=cmd_serve)

    rooms = commands.add_parser("rooms", help="create or list rooms")
    rooms.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    rooms.add_argument("--data-dir", dest="data_dir")
    room_actions = rooms.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = room_actions.add_parser("create", help="create a room and print its link")
    create.add_argument("--name", help="a human name for the room")
    create.add_argument("--id", help="a fixed id for a permanent named room, e.g. team-weekly")
    create.add_argument("--permanent", action="store_true", help="keep the room for good")
    room_actions.add_parser("list", help="list the rooms")
    rooms.set_defaults(func=cmd_rooms)

    bot = commands.add_parser("bot", help="join a room and publish a test pattern and tone")
    bot.add_argument("link", help="meeting link (https://host/abc-defg-hij) or room id")
    bot.add_argument("--server", help="server base URL when LINK is a bare room id")
    bot.add_argument("--name", default="Test bot", help="display name (default 'Test bot')")
    bot.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help="seconds to stay (default 60; 0 = until interrupted)",
    )
    bot.set_defaults(func=cmd_bot)

    transcribe = commands.add_parser(
        "transcribe",
        help="transcribe audio or video files (several files = several speakers)",
    )
    transcribe.add_argument("files", nargs="+", metavar="FILE", help="any file ffmpeg reads")
    transcribe.add_argument("-o", "--output", default=".", help="folder for the results")
    transcribe.add_argument(
        "--language", default="auto", help="en, fr, … or auto to detect (default auto)"
    )
    transcribe.add_argument(
        "--speaker", action="append", help="name of each file's speaker, in order"
    )
    transcribe.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    transcribe.set_defaults(func=cmd_transcribe)

    worker = commands.add_parser(
        "worker",
        help="run transcription jobs from the shared queue (job_queue = procrastinate)",
    )
    worker.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    worker.add_argument("--data-dir", dest="data_dir")
    worker.add_argument(
        "--concurrency",
        type=_jobs_at_once,
        default=1,
        metavar="N",
        help="jobs run at once (default 1; each takes speech_threads cores)",
    )
    worker.set_defaults(func=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"visio: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
