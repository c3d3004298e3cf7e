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


async def run_bot(link: str, server: str | None, name: str, duration: float) -> int:
    try:
        base, room = split_link(link, server)
    except ValueError as exc:
        print(f"visio bot: {exc}", file=sys.stderr)
        return 2
    client = VisioClient(base, room, name)
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
        f"with {len(joined['participants'])} other(s)"
    )
    await client.publish([PcmAudioTrack(tone(440.0, 1.0)), TestPatternTrack()])
    started = time.monotonic()
    try:
        while duration <= 0 or time.monotonic() - started < duration:
            await asyncio.sleep(5)
            summary = (
                ", ".join(
                    f"{r.participant}/{r.media}: {r.frames}" for r in client.received.values()
                )
                or "nothing yet"
            )
            print(f"receiving {summary}")
    finally:
        await client.leave()
    return 0
