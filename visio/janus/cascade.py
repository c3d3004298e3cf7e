"""Cascading media nodes: one publisher's streams carried from one Janus node to another.

Janus 1.1.2's VideoRoom does it with two halves (docs/ARCHITECTURE.md, "Cascading media
nodes", says how they behave):

- on the receiving node, `add_remote_publisher` makes a publisher with no PeerConnection
  that reads plain RTP on a UDP port it opens; subscribers there see an ordinary feed;
- on the node where the real publisher is, `publish_remotely` forwards every stream of
  that publisher (each simulcast layer too) to that port, and listens for the keyframe
  requests the receiving node sends back.

`mirror_publisher` does both and returns a `Mirror`; `unmirror` undoes it, also when the
source node is gone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from visio.janus.client import JanusError, JanusHandle, JanusUnavailable

log = logging.getLogger(__name__)

NO_SUCH_ROOM = 426
NO_SUCH_FEED = 428
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"


@dataclass(frozen=True)
class FeedStream:
    """One stream of a publisher, as Janus describes it to the publisher (its `configured`
    or `joined` reply) and to the room (`publishers` events)."""

    mindex: int
    mid: str
    type: str  # "audio" | "video" | "data"
    codec: str = ""
    simulcast: bool = False
    svc: bool = False
    stereo: bool = False
    fec: bool = False
    dtx: bool = False
    disabled: bool = False
    description: str = ""

    @classmethod
    def from_janus(cls, data: dict[str, Any]) -> FeedStream:
        return cls(
            mindex=int(data["mindex"]),
            mid=str(data["mid"]),
            type=str(data["type"]),
            codec=str(data.get("codec", "")),
            simulcast=bool(data.get("simulcast", False)),
            svc=bool(data.get("svc", False)),
            stereo=bool(data.get("stereo", False)),
            fec=bool(data.get("fec", False)),
            dtx=bool(data.get("dtx", False)),
            disabled=bool(data.get("disabled", False)),
            description=str(data.get("description", "")),
        )

    def remote(self, audiolevel_ext_id: int | None = None) -> dict[str, Any]:
        """This stream in the form `add_remote_publisher` takes."""
        body: dict[str, Any] = {"mid": self.mid, "mindex": self.mindex, "type": self.type}
        if self.type != "data":
            # A disabled stream has no codec in Janus' description: any will do, it stays off.
            body["codec"] = self.codec or ("opus" if self.type == "audio" else "vp8")
        for flag in ("simulcast", "svc", "stereo", "fec", "dtx", "disabled"):
            if getattr(self, flag):
                body[flag] = True
        if self.description:
            body["description"] = self.description
        if self.type == "audio" and audiolevel_ext_id:
            body["audiolevel_ext_id"] = audiolevel_ext_id
        return body


def feed_streams_of(reply: dict[str, Any]) -> list[FeedStream]:
    """The streams in a publisher's own `joined`/`configured` reply."""
    return [FeedStream.from_janus(s) for s in reply.get("streams", [])]


def extmap_id(sdp: str, uri: str = AUDIO_LEVEL_URI) -> int | None:
    """The id an SDP (a publisher's offer) gives a header extension; its packets carry it."""
    for line in sdp.splitlines():
        if line.startswith("a=extmap:") and line.split()[-1] == uri:
            return int(line[len("a=extmap:") :].split()[0].split("/")[0])
    return None


# -- the receiving node -----------------------------------------------------------------


@dataclass(frozen=True)
class RemotePublisher:
    """A publisher fed by plain RTP: where to send its RTP, and where its RTCP comes from."""

    room: int
    feed: int
    ip: str  # empty when Janus bound every address (no `iface`)
    port: int
    rtcp_port: int


def _checked(streams: Sequence[FeedStream]) -> list[FeedStream]:
    """Janus numbers a remote publisher's streams by position (mids "0", "1"...) and the
    sender marks packets with its own m-line index: the two must be the same sequence."""
    ordered = sorted(streams, key=lambda s: s.mindex)
    if not ordered or [s.mindex for s in ordered] != list(range(len(ordered))):
        raise ValueError(
            "a remote publisher needs every stream of the feed, m-line indexes 0..n-1, "
            f"got {[s.mindex for s in ordered]}"
        )
    return ordered


async def add_remote_publisher(
    handle: JanusHandle,
    room: int,
    streams: Sequence[FeedStream],
    *,
    feed: int | None = None,
    display: str | None = None,
    iface: str | None = None,
    audiolevel_ext_id: int | None = None,
) -> RemotePublisher:
    """Create a remote publisher in `room`; Janus opens its RTP and RTCP ports.

    `iface` (an address of this node) is the one address those ports listen on; without
    it they listen on all of them. Janus picks both ports in 10000-60000.
    """
    body: dict[str, Any] = {
        "request": "add_remote_publisher",
        "room": room,
        "streams": [s.remote(audiolevel_ext_id) for s in _checked(streams)],
    }
    if feed is not None:
        body["id"] = feed
    if display is not None:
        body["display"] = display
    if iface is not None:
        body["iface"] = iface
    data = await handle.request(body)
    return RemotePublisher(
        room=room,
        feed=int(data["id"]),
        ip=str(data.get("ip", "")),
        port=int(data["port"]),
        rtcp_port=int(data["rtcp_port"]),
    )


async def update_remote_publisher(
    handle: JanusHandle,
    room: int,
    feed: int,
    streams: Sequence[FeedStream],
    display: str | None = None,
) -> None:
    """Add streams (the next m-line indexes) or change descriptions and `disabled`."""
    body: dict[str, Any] = {
        "request": "update_remote_publisher",
        "room": room,
        "id": feed,
        "streams": [s.remote() for s in streams],
    }
    if display is not None:
        body["display"] = display
    await handle.request(body)


async def remove_remote_publisher(handle: JanusHandle, room: int, feed: int) -> None:
    """Take a remote publisher out of the room and end its thread.

    Its subscribers get a new offer with the streams inactive, even with `autoupdate` off.
    Janus 1.1.2 closes its ports only if it never received RTP (a reference leaks per
    packet), so a node keeps two ports and four file descriptors per removed mirror.
    """
    await handle.request({"request": "remove_remote_publisher", "room": room, "id": feed})


async def participants(handle: JanusHandle, room: int) -> list[dict[str, Any]]:
    """`listparticipants`: a remote publisher has `"remote": true`."""
    data = await handle.request({"request": "listparticipants", "room": room})
    return list(data.get("participants", []))


async def wait_for_feed(
    handle: JanusHandle, room: int, feed: int, present: bool = True, timeout: float = 5.0
) -> None:
    """A remote publisher enters the room from a thread of its own, a moment after Janus
    answers `add_remote_publisher` (until then subscribing to it fails), and leaves it
    from that thread a moment after `remove_remote_publisher`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(p.get("id") == feed for p in await participants(handle, room)) != present:
        if loop.time() > deadline:
            state = "appear in" if present else "leave"
            raise TimeoutError(f"feed {feed} did not {state} room {room}")
        await asyncio.sleep(0.02)


# -- the node where the real publisher is -------------------------------------------------


@dataclass(frozen=True)
class Remotization:
    remote_id: str
    host: str
    port: int
    rtcp_port: int


async def publish_remotely(
    handle: JanusHandle,
    room: int,
    feed: int,
    remote_id: str,
    host: str,
    port: int,
    rtcp_port: int,
    admin_key: str,
) -> None:
    """Forward every stream of a local publisher to a remote publisher's port.

    Streams the publisher adds later are forwarded too. Needs the admin key when the
    VideoRoom locks RTP forwarding (`lock_rtp_forward`).
    """
    body: dict[str, Any] = {
        "request": "publish_remotely",
        "room": room,
        "publisher_id": feed,
        "remote_id": remote_id,
        "host": host,
        "host_family": "ipv6" if ":" in host else "ipv4",
        "port": port,
        "rtcp_port": rtcp_port,
    }
    if admin_key:
        body["admin_key"] = admin_key
    await handle.request(body)


async def unpublish_remotely(handle: JanusHandle, room: int, feed: int, remote_id: str) -> None:
    await handle.request(
        {
            "request": "unpublish_remotely",
            "room": room,
            "publisher_id": feed,
            "remote_id": remote_id,
        }
    )


async def list_remotes(handle: JanusHandle, room: int, feed: int) -> list[Remotization]:
    data = await handle.request({"request": "listremotes", "room": room, "publisher_id": feed})
    return [
        Remotization(
            remote_id=str(r["remote_id"]),
            host=str(r["host"]),
            port=int(r["port"]),
            rtcp_port=int(r.get("rtcp_port", 0)),
        )
        for r in data.get("list", [])
    ]


# -- both halves ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Mirror:
    """One feed of node A's room, published again in node B's room: what undoes it."""

    source_room: int
    source_feed: int
    remote_id: str
    target_room: int
    target_feed: int
    port: int
    rtcp_port: int
    mids: dict[str, str]  # the source's mid -> the same stream's mid on the target


async def mirror_publisher(
    source: JanusHandle,
    source_room: int,
    feed: int,
    target: JanusHandle,
    target_room: int,
    *,
    target_address: str,
    streams: Sequence[FeedStream],
    admin_key: str = "",
    display: str | None = None,
    target_feed: int | None = None,
    audiolevel_ext_id: int | None = None,
) -> Mirror:
    """Publish `feed` of the source room again in the target room, on another node.

    `target_address` is the target node's address that the source node sends RTP to
    (its private network); the target's ports listen on that address only. `streams`
    comes from the publish reply (Janus lists streams to publishers only). The RTP crosses once,
    however many people subscribe on the target.
    """
    ordered = _checked(streams)
    remote = await add_remote_publisher(
        target,
        target_room,
        ordered,
        feed=target_feed,
        display=display,
        iface=target_address,
        audiolevel_ext_id=audiolevel_ext_id,
    )
    remote_id = f"{target_room}-{remote.feed}-{secrets.token_hex(4)}"
    try:
        await wait_for_feed(target, target_room, remote.feed)
        await publish_remotely(
            source,
            source_room,
            feed,
            remote_id,
            remote.ip or target_address,
            remote.port,
            remote.rtcp_port,
            admin_key,
        )
    except BaseException:
        await _remove(target, target_room, remote.feed)
        raise
    return Mirror(
        source_room=source_room,
        source_feed=feed,
        remote_id=remote_id,
        target_room=target_room,
        target_feed=remote.feed,
        port=remote.port,
        rtcp_port=remote.rtcp_port,
        mids={s.mid: str(position) for position, s in enumerate(ordered)},
    )


async def unmirror(source: JanusHandle | None, target: JanusHandle, mirror: Mirror) -> None:
    """Undo `mirror_publisher`; `source` may be None or dead (its node went away).

    The source's publisher may have left already (its forwards went with it) and the
    target's remote publisher may be gone already: both count as undone. Returns once the
    remote publisher has left the target room. It must be removed before that room is
    destroyed: Janus 1.1.2 does not stop a remote publisher with its room.
    """
    if source is not None:
        try:
            await unpublish_remotely(
                source, mirror.source_room, mirror.source_feed, mirror.remote_id
            )
        except JanusUnavailable as exc:
            log.warning("cascade source unreachable, its forwards stay if it lives: %s", exc)
        except JanusError as exc:
            if exc.code not in (NO_SUCH_ROOM, NO_SUCH_FEED):
                raise
    try:
        await _remove(target, mirror.target_room, mirror.target_feed)
    except JanusError as exc:
        if exc.code != NO_SUCH_FEED:
            raise


async def _remove(handle: JanusHandle, room: int, feed: int) -> None:
    """Remove a remote publisher and wait until it has left the room."""
    await remove_remote_publisher(handle, room, feed)
    await wait_for_feed(handle, room, feed, present=False)
