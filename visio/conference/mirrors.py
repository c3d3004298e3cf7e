"""Feeds mirrored between the rooms of one meeting on several media nodes.

A live feed published in the room on node A is mirrored into the meeting's room on node B
as soon as B has a room in the meeting: once, however many people watch it there (Janus
remote publishers keep the feed's id, so a feed has the same id in every room). When the
feed goes (unpublished, replaced, its publisher gone) its mirrors go too; subscribers in
the target room unsubscribe first, then the remote publisher is removed (Janus would
otherwise renegotiate their connections itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any

from visio.conference.media import MediaRoom, media_address
from visio.conference.participant import Publication
from visio.conference.records import MirrorRecord
from visio.janus.cascade import (
    FeedStream,
    Mirror,
    mirror_publisher,
    unmirror,
    unpublish_remotely,
)
from visio.janus.client import JanusError

log = logging.getLogger(__name__)
Key = tuple[int, str]  # (feed id, target node URL)


class Mirrors:
    def __init__(
        self,
        on_ready: Callable[[MediaRoom], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.on_ready = on_ready  # a mirror is up: that room's people may subscribe
        self.spawn = spawn
        self.ready: dict[Key, tuple[str, Mirror]] = {}  # key -> (source node URL, mirror)
        self._pending: dict[Key, asyncio.Task[None]] = {}

    def visible(self, feed: int, room: MediaRoom) -> bool:
        return (feed, room.url) in self.ready

    def count(self) -> int:
        return len(self.ready)

    def ensure(self, publication: Publication, source: MediaRoom, targets: list[MediaRoom]) -> None:
        """Mirror a live feed into every target room that does not have it yet."""
        for target in targets:
            key = (publication.feed_id, target.url)
            if target is source or key in self.ready or key in self._pending:
                continue
            task = asyncio.ensure_future(self._mirror(publication, source, target))
            self._pending[key] = task
            task.add_done_callback(lambda _, key=key: self._pending.pop(key, None))

    async def _mirror(self, publication: Publication, source: MediaRoom, target: MediaRoom) -> None:
        try:
            mirror = await mirror_publisher(
                source.control,
                source.janus_room,
                publication.feed_id,
                target.control,
                target.janus_room,
                target_address=media_address(target.node),
                admin_key=source.node.admin_key,
                streams=[FeedStream.from_janus(s) for s in publication.streams],
                target_feed=publication.feed_id,
                audiolevel_ext_id=publication.audiolevel,
            )
        except (JanusError, ValueError, TimeoutError) as exc:
            log.warning(
                "feed not mirrored",
                extra={"feed": publication.feed_id, "to": target.url, "error": str(exc)},
            )
            return
        self.ready[(publication.feed_id, target.url)] = (source.url, mirror)
        self.on_ready(target)

    async def drop(self, feed: int, rooms: dict[str, MediaRoom]) -> None:
        """Undo every mirror of a feed (after its subscribers have let it go)."""
        for key in [k for k in self._pending if k[0] == feed]:
            self._pending[key].cancel()
        for key in [k for k in self.ready if k[0] == feed]:
            source_url, mirror = self.ready.pop(key)
            await self._undo(rooms.get(source_url), rooms.get(key[1]), mirror)

    async def drop_room(self, url: str, rooms: dict[str, MediaRoom]) -> None:
        """A room leaves the meeting: the mirrors into it and out of it go."""
        for key in [k for k in self._pending if k[1] == url]:
            self._pending[key].cancel()
        for key, (source_url, mirror) in list(self.ready.items()):
            if url in (key[1], source_url):
                del self.ready[key]
                await self._undo(rooms.get(source_url), rooms.get(key[1]), mirror)

    async def _undo(
        self, source: MediaRoom | None, target: MediaRoom | None, mirror: Mirror
    ) -> None:
        if target is None or not target.up:
            if source is not None and source.up:  # only the forward at the source is left
                with contextlib.suppress(JanusError):
                    await unmirror_source_only(source, mirror)
            return
        try:
            await unmirror(source.control if source and source.up else None, target.control, mirror)
        except (JanusError, TimeoutError) as exc:
            log.warning("mirror not undone", extra={"feed": mirror.source_feed, "error": str(exc)})

    async def close(self, rooms: dict[str, MediaRoom]) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        for key, (source_url, mirror) in list(self.ready.items()):
            del self.ready[key]
            await self._undo(rooms.get(source_url), rooms.get(key[1]), mirror)

    # -- records ------------------------------------------------------------------------

    def records(self) -> list[MirrorRecord]:
        return [
            MirrorRecord(source=source, target=key[1], **asdict(mirror))
            for key, (source, mirror) in self.ready.items()
        ]

    def restore(self, records: list[MirrorRecord]) -> None:
        for record in records:
            mirror = Mirror(**record.model_dump(exclude={"source", "target"}))
            self.ready[(record.source_feed, record.target)] = (record.source, mirror)


async def unmirror_source_only(source: MediaRoom, mirror: Mirror) -> None:
    await unpublish_remotely(
        source.control, mirror.source_room, mirror.source_feed, mirror.remote_id
    )
