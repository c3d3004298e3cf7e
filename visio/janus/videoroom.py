"""The VideoRoom plugin requests Visio uses, as small typed wrappers.

A meeting has one Janus session on its node; every participant has one publisher handle
per published target (camera, screen) and one multistream subscriber handle.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from visio.janus.client import EventCallback, JanusHandle, JanusSession

PLUGIN = "janus.plugin.videoroom"
SUBSTREAMS = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class RoomOptions:
    publishers: int = 100
    bitrate: int = 1_500_000
    audio_active_packets: int = 25  # ~0.5 s of Opus frames per talking decision
    audio_level_average: int = 50  # 127 = silence, 0 = loudest; below this is "talking"


async def create_room(handle: JanusHandle, room: int, admin_key: str, opts: RoomOptions) -> None:
    body: dict[str, Any] = {
        "request": "create",
        "room": room,
        "publishers": opts.publishers,
        "bitrate": opts.bitrate,
        "bitrate_cap": True,
        "fir_freq": 10,
        "audiocodec": "opus",
        "videocodec": "vp8",
        "audiolevel_ext": True,
        # Opus in-band FEC in Janus' answer to every publisher, whatever its offer said:
        # the publisher's encoder adds it as the loss Janus reports to it grows.
        "opus_fec": True,
        "audiolevel_event": True,
        "audio_active_packets": opts.audio_active_packets,
        "audio_level_average": opts.audio_level_average,
        "notify_joining": False,
        "permanent": False,
        # No publisher joins without a token the server put on the room's list (Janus'
        # `allowed` request): Janus itself refuses one the server did not let publish.
        "allowed": [],
    }
    if admin_key:
        body["admin_key"] = admin_key
    await handle.request(body)


async def destroy_room(handle: JanusHandle, room: int) -> None:
    await handle.request({"request": "destroy", "room": room})


UNAUTHORIZED = 433  # a publisher joined without a token on the room's list


async def allowed_tokens(
    handle: JanusHandle, room: int, action: str, tokens: set[str] | None = None
) -> set[str]:
    """Change the tokens a publisher may join the room with ("enable" the check, "add",
    "remove"): the list as Janus holds it afterwards."""
    body: dict[str, Any] = {"request": "allowed", "room": room, "action": action}
    if tokens:
        body["allowed"] = sorted(tokens)
    data = await handle.request(body)
    return {str(token) for token in data.get("allowed", [])}


async def moderate(handle: JanusHandle, room: int, feed: int, mid: str, mute: bool) -> None:
    """Stop (or resume) forwarding one track of a publisher to everyone."""
    await handle.request(
        {"request": "moderate", "room": room, "id": feed, "mid": mid, "mute": mute}
    )


async def rtp_forward(
    handle: JanusHandle,
    room: int,
    feed: int,
    mid: str,
    host: str,
    port: int,
    admin_key: str,
    srtp_key: bytes | None = None,
) -> int:
    """Have Janus send one track of a publisher to host:port; its stream id. With
    `srtp_key` (30 bytes: master key and salt), as SRTP (AES_CM_128_HMAC_SHA1_80)."""
    body: dict[str, Any] = {
        "request": "rtp_forward",
        "room": room,
        "publisher_id": feed,
        "host": host,
        "host_family": "ipv6" if ":" in host else "ipv4",
        "streams": [{"mid": mid, "port": port}],
    }
    if srtp_key is not None:
        body["srtp_suite"] = 80
        body["srtp_crypto"] = base64.b64encode(srtp_key).decode()
    if admin_key:
        body["admin_key"] = admin_key
    data = await handle.request(body)
    forwarders = data.get("forwarders") or []
    if not forwarders:
        raise ValueError("Janus set up no forwarder")
    return int(forwarders[0]["stream_id"])


async def stop_rtp_forward(
    handle: JanusHandle, room: int, feed: int, stream_id: int, admin_key: str
) -> None:
    body: dict[str, Any] = {
        "request": "stop_rtp_forward",
        "room": room,
        "publisher_id": feed,
        "stream_id": stream_id,
    }
    if admin_key:
        body["admin_key"] = admin_key
    await handle.request(body)


async def list_forwarders(handle: JanusHandle, room: int, admin_key: str) -> dict[int, list[int]]:
    """Every publisher's forwarder stream ids in a room: {feed: [stream ids]}."""
    body: dict[str, Any] = {"request": "listforwarders", "room": room}
    if admin_key:
        body["admin_key"] = admin_key
    data = await handle.request(body)
    return {
        int(publisher["publisher_id"]): [
            int(f["stream_id"]) for f in publisher.get("forwarders", [])
        ]
        for publisher in data.get("publishers", [])
    }


def media_mids(sdp: str) -> dict[str, list[str]]:
    """The mids of each media kind in an SDP (a publisher's offer): {"audio": ["0"], ...}."""
    found: dict[str, list[str]] = {}
    media = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            media = line[2:].split(" ", 1)[0]
        elif line.startswith("a=mid:") and media is not None:
            found.setdefault(media, []).append(line[6:].strip())
    return found


async def room_exists(handle: JanusHandle, room: int) -> bool:
    data = await handle.request({"request": "exists", "room": room})
    return bool(data.get("exists"))


@dataclass(frozen=True)
class Published:
    sdp: str  # Janus' answer
    streams: list[dict[str, Any]]  # Janus' description of each stream of the feed


class PublisherHandle:
    """Publishes one target (camera or screen) of one participant."""

    def __init__(self, handle: JanusHandle, feed_id: int) -> None:
        self.handle = handle
        self.feed_id = feed_id

    @classmethod
    async def attach(
        cls, session: JanusSession, feed_id: int, on_event: EventCallback
    ) -> PublisherHandle:
        return cls(await session.attach(PLUGIN, on_event), feed_id)

    async def publish(self, room: int, display: str, offer_sdp: str, token: str) -> Published:
        """Join the room as this feed, with a token on the room's list, and publish the
        offer: Janus' answer, and how Janus describes the feed's streams (what mirroring
        it to another node needs)."""
        reply = await self.handle.message(
            {
                "request": "joinandconfigure",
                "ptype": "publisher",
                "room": room,
                "id": self.feed_id,
                "display": display,
                "token": token,
            },
            {"type": "offer", "sdp": offer_sdp},
        )
        if reply.jsep is None or reply.jsep.get("type") != "answer":
            raise ValueError("Janus gave no answer to the offer")
        return Published(str(reply.jsep["sdp"]), list(reply.data.get("streams", [])))

    async def restart_ice(self, offer_sdp: str) -> str:
        """The publisher's offer with new ICE credentials (an ICE restart): Janus' answer."""
        reply = await self.handle.message(
            {"request": "configure"}, {"type": "offer", "sdp": offer_sdp}
        )
        if reply.jsep is None or reply.jsep.get("type") != "answer":
            raise ValueError("Janus gave no answer to the ICE restart")
        return str(reply.jsep["sdp"])

    async def record(self, base: str | None) -> None:
        """Record every track of this feed to `<base>-<media>-<index>.mjr`, or stop (None)."""
        body: dict[str, Any] = {"request": "configure", "record": base is not None}
        if base is not None:
            body["filename"] = base
        await self.handle.message(body)

    async def close(self) -> None:
        await self.handle.detach()


@dataclass(frozen=True)
class SubscribedStream:
    mid: str
    media: str  # "audio" | "video" | "data"
    feed_id: int
    active: bool


@dataclass(frozen=True)
class SubscriberOffer:
    sdp: str
    streams: list[SubscribedStream]


class SubscriberHandle:
    """One multistream subscription: every remote track a participant receives."""

    def __init__(self, handle: JanusHandle) -> None:
        self.handle = handle
        self.joined = False

    @classmethod
    async def attach(cls, session: JanusSession, on_event: EventCallback) -> SubscriberHandle:
        return cls(await session.attach(PLUGIN, on_event))

    async def join(self, room: int, feeds: list[int]) -> SubscriberOffer:
        reply = await self.handle.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": room,
                "streams": [{"feed": feed} for feed in feeds],
                "autoupdate": False,
                "use_msid": False,
            }
        )
        self.joined = True
        return subscriber_offer(reply.data, reply.jsep)

    async def update(self, add: list[int], remove: list[int]) -> SubscriberOffer | None:
        """Change the subscribed feeds; None when Janus had nothing to renegotiate."""
        body: dict[str, Any] = {"request": "update"}
        if add:
            body["subscribe"] = [{"feed": feed} for feed in add]
        if remove:
            body["unsubscribe"] = [{"feed": feed} for feed in remove]
        reply = await self.handle.message(body)
        if reply.jsep is None:
            return None
        return subscriber_offer(reply.data, reply.jsep)

    async def start(self, answer_sdp: str) -> None:
        await self.handle.message({"request": "start"}, {"type": "answer", "sdp": answer_sdp})

    async def set_substream(self, mid: str, quality: str) -> None:
        """The simulcast layer Janus sends us on `mid`; "off": nothing, until asked again."""
        stream: dict[str, Any] = {"mid": mid, "send": quality != "off"}
        if quality in SUBSTREAMS:
            stream["substream"] = SUBSTREAMS[quality]
        await self.handle.message({"request": "configure", "streams": [stream]})

    async def close(self) -> None:
        await self.handle.detach()


def subscriber_offer(data: dict[str, Any], jsep: dict[str, Any] | None) -> SubscriberOffer:
    """A subscriber offer from Janus' answer (or event) and its JSEP."""
    if jsep is None or jsep.get("type") != "offer":
        raise ValueError("Janus gave no subscriber offer")
    streams = [
        SubscribedStream(
            mid=str(s["mid"]),
            media=str(s.get("type", "")),
            feed_id=int(s.get("feed_id", 0)),
            active=bool(s.get("active", True)) and "feed_id" in s,
        )
        for s in data.get("streams", [])
    ]
    return SubscriberOffer(str(jsep["sdp"]), streams)
