"""The `visio` command: serve, manage rooms, check a deployment with a bot."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from visio import __version__
from visio.config import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from visio.limits.callers import Limits


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

    from visio.audit import setup_audit
    from visio.logs import setup_logging
    from visio.privileges import private_files, refuse_root
    from visio.server import DrainingServer, create_app

    settings = _settings(args)
    refuse_root(settings, "serve")
    private_files(settings)
    setup_logging(settings.log_level, settings.log_format)
    setup_audit(settings)
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
        http=_http_protocol(settings, app.state.services.limits),
        limit_concurrency=settings.max_connections,
    )
    DrainingServer(config, app.state.services).run()
    return 0


def _http_protocol(settings: Settings, limits: Limits) -> type:
    """uvicorn's HTTP protocol, behind a reader of the PROXY protocol when configured,
    behind the gate that caps connections per address and times out silent ones."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    from visio.limits.connections import ConnectionCounts, gate
    from visio.proxies.addresses import parse_networks
    from visio.proxies.proxy_protocol import protocol_class

    trusted = parse_networks(settings.trusted_proxies)
    inner: type = AutoHTTPProtocol
    if settings.proxy_protocol:
        inner = protocol_class(AutoHTTPProtocol, trusted)
    counts = ConnectionCounts(settings.max_connections_per_address, limits.address_factor, "tcp")
    return gate(inner, counts, trusted, settings.http_header_timeout_s)


def cmd_rooms(args: argparse.Namespace) -> int:
    from visio.audit import setup_audit
    from visio.rooms_command import run_rooms

    settings = _settings(args)
    setup_audit(settings, check=False)
    return asyncio.run(run_rooms(settings, args))


def cmd_node(args: argparse.Namespace) -> int:
    from visio.janus.node import run_node
    from visio.logs import setup_logging
    from visio.privileges import private_files, refuse_root

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format)
    refuse_root(settings, "node")
    private_files(settings)
    return asyncio.run(run_node(settings, args.listen))


def cmd_nodes(args: argparse.Namespace) -> int:
    from visio.cluster.nodes_command import run_nodes

    return asyncio.run(run_nodes(_settings(args), args))


def cmd_bot(args: argparse.Namespace) -> int:
    from visio.client.bot import run_bot

    return asyncio.run(
        run_bot(
            args.link,
            server=args.server,
            name=args.name,
            duration=args.duration,
            relay_only=args.relay,
            turn_transport=args.turn,
            until_video=args.until_video,
        )
    )


def cmd_load(args: argparse.Namespace) -> int:
    from visio.load.command import run_load

    return run_load(args)


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
    from visio.privileges import private_files, refuse_root

    settings = _settings(args)
    if settings.job_queue != "procrastinate":
        print(
            "visio: `visio worker` runs the jobs of a shared queue: set job_queue = "
            '"procrastinate" and a PostgreSQL database_url (the server, with the default '
            "job_queue, runs its jobs itself)",
            file=sys.stderr,
        )
        return 2
    refuse_root(settings, "worker")
    private_files(settings)
    setup_logging(settings.log_level, settings.log_format)
    from visio.transcripts.queue import run_worker

    asyncio.run(run_worker(settings, concurrency=args.concurrency))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from visio.rooms_command import add_rooms_parser

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

    add_rooms_parser(commands).set_defaults(func=cmd_rooms)

    node = commands.add_parser(
        "node", help="run a media node (Janus) for a deployment of several server processes"
    )
    node.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    node.add_argument("--data-dir", dest="data_dir")
    node.add_argument(
        "--listen",
        required=True,
        help="the private address the server processes reach this node's API on",
    )
    node.set_defaults(func=cmd_node)

    nodes = commands.add_parser("nodes", help="media nodes: load, drain for maintenance")
    nodes.add_argument("--config", help="TOML config file (or VISIO_CONFIG)")
    node_actions = nodes.add_subparsers(dest="action", required=True, metavar="ACTION")
    node_actions.add_parser("list", help="every node with its load")
    for action, text in (
        ("drain", "no new meeting there; the people there move to other nodes"),
        ("undrain", "use the node again"),
    ):
        node_actions.add_parser(action, help=text).add_argument("url", help="ws://host:port")
    nodes.set_defaults(func=cmd_nodes)

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
    bot.add_argument(
        "--relay",
        action="store_true",
        help="use only TURN-relayed candidates (checks the TURN server)",
    )
    bot.add_argument(
        "--turn",
        choices=("udp", "tcp", "tls"),
        help="use only the server's TURN URLs of this transport",
    )
    bot.add_argument(
        "--until-video",
        type=int,
        default=0,
        metavar="FRAMES",
        help="leave (exit 0) once FRAMES video frames came from someone else; "
        "exit 1 if not within --duration",
    )
    bot.set_defaults(func=cmd_bot)

    load = commands.add_parser(
        "load",
        help="load a server with lightweight clients (pre-encoded media, counted not decoded)",
    )
    from visio.load.command import add_arguments as add_load_arguments

    add_load_arguments(load)
    load.set_defaults(func=cmd_load)

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
    transcribe.add_argument(
        "--data-dir",
        dest="data_dir",
        help="use the speech model of this state folder (default: the user's cache, "
        "~/.cache/visio/models)",
    )
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
