"""`visio bot`: join a meeting from the command line to check a deployment."""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlsplit

from visio.client.media import PcmAudioTrack, TestPatternTrack, tone
from visio.client.session import VisioClient, VisioError


def split_link(link: str, server: str | None) -> tuple[str, str]:
    """(server base URL, room id) from a meeting link or a bare room id."""
    if "://" in link:
        parts = urlsplit(link)
        room = parts.path.strip("/").split("/")[-1]
        return f"{parts.scheme}://{parts.netloc}", room
    if not server:
        raise ValueError("give a full meeting link, or --server with a room id")
    return server.rstrip("/"), link


async def run_bot(
    link: str,
    server: str | None,
    name: str,
    duration: float,
    *,
    relay_only: bool = False,
    turn_transport: str | None = None,
    until_video: int = 0,
) -> int:
    """Join, publish, report what arrives. With `until_video`, a check: leave with 0 once
    that many video frames came from someone else, 1 if they did not within `duration`."""
    try:
        base, room = split_link(link, server)
    except ValueError as exc:
        print(f"visio bot: {exc}", file=sys.stderr)
        return 2
    client = VisioClient(base, room, name, relay_only=relay_only, turn_transport=turn_transport)
    opened = time.monotonic()
    try:
        joined = await client.connect()
        if joined["type"] == "lobby":
            print(f"waiting in the lobby ({joined['reason']}) for a moderator to let us in")
            joined = await client.admitted(timeout=joined["expires_in"] + 5)
    except VisioError as exc:
        print(f"visio bot: the server refused to join: {exc}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as exc:
        print(f"visio bot: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    print(
        f"joined {joined['room']['id']} as {joined['you']['id']} "
        f"with {len(joined['participants'])} other(s)",
        flush=True,
    )
    if relay_only and not client.joined_with_turn():
        print("visio bot: --relay, but the server hands out no TURN server", file=sys.stderr)
        await client.leave()
        return 1
    await client.publish([PcmAudioTrack(tone(440.0, 1.0)), TestPatternTrack()])
    started = time.monotonic()
    try:
        while duration <= 0 or time.monotonic() - started < duration:
            if until_video and _most_video(client) >= until_video:
                print(
                    f"received {_summary(client)} in {time.monotonic() - started:.1f} s, "
                    f"first video {_first_video_at(client) - opened:.2f} s after connecting"
                )
                return 0
            await asyncio.sleep(0.2 if until_video else 5)
            if not until_video:
                print(f"receiving {_summary(client)}", flush=True)
    finally:
        await client.leave()
    if until_video:
        print(
            f"visio bot: not {until_video} video frames from anyone in {duration:.0f} s "
            f"(received: {_summary(client)}); with --relay, check the TURN server",
            file=sys.stderr,
        )
        return 1
    return 0


def _most_video(client: VisioClient) -> int:
    return max((r.frames for r in client.received.values() if r.media == "video"), default=0)


def _first_video_at(client: VisioClient) -> float:
    firsts = [r.first_frame_at for r in client.received.values() if r.media == "video"]
    return min(t for t in firsts if t is not None)


def _summary(client: VisioClient) -> str:
    received = client.received.values()
    return ", ".join(f"{r.participant}/{r.media}: {r.frames}" for r in received) or "nothing"
