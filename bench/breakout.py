"""Time to move everyone into breakout rooms and back, with N bots (20 by default).

A signed-in owner (a moderator, who stays in the main room) and N guest bots are in one
meeting; two bots of each room publish (audio only, so that N bots decoding everyone in
the main room do not saturate 2 cores). Each round opens R rooms (bots spread by hand,
the same way every round), then calls everyone back. For each bot, the time from the
moderator's request to (a) its `moved` frame and (b) the first audio frame from a
publisher of its new room on its new subscriber connection: median and max over the
bots and rounds. Runs as root, in its own network namespace; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import _harness
import httpx

from visio.client.media import PcmAudioTrack
from visio.client.session import VisioClient
from visio.testing.idp import IdentityProvider, sign_in
from visio.testing.server import ServerProcess

LIMITS = {
    "joins_per_minute": 10_000,
    "address_joins_per_minute": 10_000,
    "max_joins_per_second": 10_000,
    "room_creations_per_minute": 10_000,
    "address_room_creations_per_minute": 10_000,
}


async def owner_cookies(base_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        response = await sign_in(http, f"{base_url}/auth/login?next=/", "alice")
        assert response.status_code == 302, response.text
        return {cookie.name: cookie.value for cookie in http.cookies.jar}


async def new_room(base_url: str, cookies: dict[str, str]) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=15, cookies=cookies) as http:
        response = await http.post(
            "/api/rooms", json={}, headers={"X-CSRF-Token": cookies.get("visio_csrf", "")}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


async def one_move(
    bot: VisioClient, mates: list[VisioClient], started: float, since: int, timeout: float
) -> tuple[float, float]:
    """(seconds to `moved`, seconds to the first audio of a room mate after it)."""
    await bot.wait_for(lambda f: f["type"] == "moved", timeout, since)
    moved = time.monotonic() - started
    counts = {mate.id: bot.frames_from(mate.id, "audio") for mate in mates}
    deadline = time.monotonic() + timeout
    while not any(bot.frames_from(m.id, "audio") > counts[m.id] for m in mates):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{bot.name}: no audio from its room mates after moving")
        await asyncio.sleep(0.01)
    return moved, time.monotonic() - started


async def round_trip(
    owner: VisioClient, bots: list[VisioClient], publishers: list[VisioClient], rooms: int
) -> dict[str, list[float]]:
    where = {bot.id: n % rooms + 1 for n, bot in enumerate(bots)}
    times: dict[str, list[float]] = {}
    for phase in ("into rooms", "back"):
        since = {bot.id: len(bot.frames) for bot in bots}
        mates = {
            bot.id: [
                p
                for p in publishers
                if p is not bot and (phase == "back" or where[p.id] == where[bot.id])
            ]
            for bot in bots
        }
        started = time.monotonic()
        if phase == "into rooms":
            await owner.breakout_open(rooms, assignments=where)
        else:
            await owner.breakout_close()
        results = await asyncio.gather(
            *(one_move(b, mates[b.id], started, since[b.id], 30.0) for b in bots)
        )
        times[f"{phase}: moved frame"] = [r[0] for r in results]
        times[f"{phase}: media from the room"] = [r[1] for r in results]
        times[f"{phase}: everyone (last bot)"] = [max(r[1] for r in results)]
        await asyncio.sleep(1.0)  # let the subscriptions settle before the next move
    return times


async def measure(bots_count: int, rooms: int, rounds: int) -> dict[str, list[float]]:
    server = ServerProcess(guests_create_rooms=True, **LIMITS)
    provider = IdentityProvider([server.base_url + "/auth/callback"], server.data_dir)
    provider.start()
    server.env.update(
        VISIO_PUBLIC_URL=server.base_url,
        VISIO_OIDC_ISSUER=provider.issuer,
        VISIO_OIDC_CLIENT_ID=provider.client_id,
        VISIO_OIDC_CLIENT_SECRET=provider.client_secret,
    )
    clients: list[VisioClient] = []
    try:
        server.start()
        cookies = await owner_cookies(server.base_url)
        room = await new_room(server.base_url, cookies)
        owner = VisioClient(server.base_url, room, "Alice", cookies=cookies, video=False)
        clients.append(owner)
        await owner.connect()
        bots: list[VisioClient] = []
        for n in range(bots_count):
            bot = VisioClient(server.base_url, room, f"Bot {n + 1}", video=False)
            clients.append(bot)
            await bot.connect()
            bots.append(bot)
        publishers = bots[: 2 * rooms]  # two of each room (bot n goes to room n % rooms + 1)
        for bot in publishers:
            await bot.publish([PcmAudioTrack()])
        for bot in bots:
            for publisher in publishers:
                if publisher is not bot:
                    await bot.wait_frames(publisher.id, "audio", count=1, timeout=60)
        times: dict[str, list[float]] = {}
        for _ in range(rounds):
            for key, values in (await round_trip(owner, bots, publishers, rooms)).items():
                times.setdefault(key, []).extend(values)
        return times
    finally:
        for client in clients:
            await client.close()
        print(f"data folder: {server.data_dir}")
        _harness.print_logs(server)
        server.stop()
        provider.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bots", type=int, default=20, help="participants moved (guests)")
    parser.add_argument("--rooms", type=int, default=4, help="breakout rooms")
    parser.add_argument("--rounds", type=int, default=3, help="moves into rooms and back")
    args = parser.parse_args()
    if args.bots < 2 * args.rooms:
        parser.error("--bots must be at least twice --rooms (two publishers per room)")
    _harness.setup()
    times = asyncio.run(measure(args.bots, args.rooms, args.rounds))
    rows = []
    for key, values in times.items():
        stats = _harness.summary(values)
        rows.append((key, stats["n"], stats["median"], stats["p95"], stats["max"]))
    print(_harness.machine())
    title = f"{args.bots} bots, {args.rooms} rooms, {args.rounds} rounds (seconds)"
    print(_harness.table(("move", "n", "median", "p95", "max"), rows, title))


if __name__ == "__main__":
    main()
