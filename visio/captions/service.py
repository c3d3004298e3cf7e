"""Captions across the running meetings: one speech engine for the process, loaded on
first use, and the captions of each meeting that asked for them."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import TYPE_CHECKING

from visio.captions.room import RoomCaptions
from visio.conference.meeting import Meeting
from visio.conference.participant import Participant
from visio.config import Settings
from visio.db import Store
from visio.janus.client import JanusError
from visio.janus.videoroom import list_forwarders, stop_rtp_forward
from visio.protocol import ProtocolError

if TYPE_CHECKING:  # the speech engine loads on first use only
    from visio.speech.streaming import StreamingEngine

log = logging.getLogger(__name__)


def engine_options(settings: Settings) -> dict[str, object]:
    """Whisper decodes two threads at a time: on 2 cores, one decode at once serves more
    speakers within a second and a half than two decodes of one thread (bench)."""
    cores = os.cpu_count() or 2
    return {
        "threads": 2,
        "workers": max(1, cores // 2),
        "languages": settings.captions_languages,
    }


class CaptionService:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.rooms: dict[str, RoomCaptions] = {}
        self._engine: StreamingEngine | None = None
        self._loading = asyncio.Lock()
        self._opening = asyncio.Lock()

    async def engine(self) -> StreamingEngine:
        async with self._loading:
            if self._engine is None:
                self._engine = await asyncio.to_thread(self._load)
            return self._engine

    def _load(self) -> StreamingEngine:
        from visio.speech.model import ModelError, resolve_model_dir
        from visio.speech.streaming import load_engine

        settings = self.settings
        try:
            model = resolve_model_dir(settings.speech_model_dir or None, settings.models_dir)
            options = engine_options(settings) if not settings.captions_engine else {}
            return load_engine(settings.captions_engine, model, **options)
        except (ModelError, ValueError, ImportError) as exc:
            log.error("captions unavailable", extra={"error": str(exc)})
            raise ProtocolError("captions_unavailable", f"captions are unavailable: {exc}") from exc

    async def switch(self, meeting: Meeting, participant: Participant, on: bool) -> None:
        """Turn captions on or off for one participant. In a room whose `captions` policy is
        `moderators`, only a moderator starts them; others may follow them once started."""
        if on and not participant.moderator and not meeting.captions_on:
            policy = await self.store.policy(meeting.room_id)
            if policy is not None and policy.captions == "moderators":
                raise ProtocolError(
                    "forbidden", "in this room, only a host may start live captions"
                )
        async with self._opening:
            captions = self.rooms.get(meeting.room_id)
            if captions is None or captions.meeting is not meeting:
                if not on:
                    participant.send({"type": "captions", "on": False})
                    return
                captions = await self._open(meeting)
        await captions.subscribe(participant, on)

    async def _open(self, meeting: Meeting) -> RoomCaptions:
        engine = await self.engine()
        policy = await self.store.policy(meeting.room_id)
        language = policy.language if policy is not None else "auto"
        captions = RoomCaptions(
            meeting,
            engine,
            slots=self.settings.captions_slots,
            language=None if language == "auto" else language,
            bind_host=self.settings.captions_bind_host,
            forward_host=self.settings.captions_forward_host,
        )
        self.rooms[meeting.room_id] = captions
        return captions

    def stats(self) -> dict[str, int]:
        """For /healthz: meetings with captions, forwards and recognition threads alive."""
        return {
            "meetings": len(self.rooms),
            "forwards": sum(len(room.forwards) for room in self.rooms.values()),
            "threads": sum(t.name.startswith("captions-") for t in threading.enumerate()),
        }

    async def meeting_closed(self, meeting: Meeting) -> None:
        captions = self.rooms.get(meeting.room_id)
        if captions is not None and captions.meeting is meeting:
            del self.rooms[meeting.room_id]
            await captions.close()

    async def meeting_taken_over(self, meeting: Meeting) -> None:
        """The previous owner's forwards send caption audio to a process that is gone: stop
        them. Those who want captions say it again when they reconnect."""
        for room in meeting.rooms.values():
            admin_key = room.node.admin_key
            try:
                forwarders = await list_forwarders(room.control, room.janus_room, admin_key)
                for feed, streams in forwarders.items():
                    for stream in streams:
                        await stop_rtp_forward(
                            room.control, room.janus_room, feed, stream, admin_key
                        )
            except JanusError as exc:
                log.warning("old caption forwards not stopped", extra={"error": str(exc)})

    async def close(self) -> None:
        for captions in list(self.rooms.values()):
            await captions.close()
        self.rooms.clear()
