"""The SIP gateway: a phone call becomes a participant of a room's meeting.

A call is answered, asked for the room's PIN (RFC 4733 telephone-events), then joins the
meeting through the server's own WebSocket as a guest named "Phone …42": the same
access rules, lobby, limits and moderation as anyone, and the meeting needs to know
nothing about phones. The phone's voice is published as the participant's microphone (so
captions and transcripts take it like any other); what the phone hears is the sum of
everyone else's audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from typing import Any

import numpy as np

from visio.client.session import ReceivedTrack, VisioClient, VisioError
from visio.config import Settings
from visio.db import PIN_DIGITS, Store
from visio.sip.audio import PROMPT_SOURCE as PROMPT
from visio.sip.audio import MeetingInput
from visio.sip.endpoint import IncomingCall, SipEndpoint, SipOptions
from visio.sip.prompts import load_prompts

log = logging.getLogger(__name__)

PIN_TRIES = 3
DIGIT_TIMEOUT_S = 10.0  # between two keys, and for the first after the prompt
ANSWER_TIMEOUT_S = 10.0  # from our 200 OK to the caller's ACK and media
WRONG_PIN_WINDOW_S = 3600.0


class WrongPins:
    """Wrong PINs over the last hour, per caller (address and number) and per address:
    past either budget, calls are refused before they are answered. PIN guessing is slow,
    not free; and behind a trunk, where every caller shares one address, one caller's
    mistakes block that caller only, until the whole address looks like guessing."""

    ADDRESS_FACTOR = 10
    MAX_KEYS = 10_000  # past this, expired keys are swept at once

    def __init__(self, per_hour: int) -> None:
        self.per_hour = per_hour
        self._times: dict[str, deque[float]] = {}

    def blocked(self, address: str, caller: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return (
            self._count(f"{address} {caller}", now) >= self.per_hour
            or self._count(address, now) >= self.per_hour * self.ADDRESS_FACTOR
        )

    def add(self, address: str, caller: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._times) > self.MAX_KEYS:
            for key in list(self._times):
                self._count(key, now)
        for key in (f"{address} {caller}", address):
            self._times.setdefault(key, deque()).append(now)

    def _count(self, key: str, now: float) -> int:
        times = self._times.get(key)
        if times is None:
            return 0
        while times and times[0] <= now - WRONG_PIN_WINDOW_S:
            times.popleft()
        if not times:
            del self._times[key]
        return len(times)


def phone_name(caller: str) -> str:
    """ "Phone …42" from the caller's URI: the last two digits of its user part only, so
    that everyone sees who is calling without the whole number."""
    user = re.sub(r"^.*?sips?:", "", caller).split("@")[0]
    digits = re.sub(r"\D", "", user)
    return f"Phone …{digits[-2:]}" if len(digits) >= 2 else "Phone"


def server_url(settings: Settings) -> str:
    """The server as the gateway reaches it: itself, on the address it listens on."""
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if settings.tls_cert else "http"
    return f"{scheme}://{host}:{settings.port}"


class Gateway:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.wrong_pins = WrongPins(settings.sip_pin_tries_per_hour)
        self.prompts: dict[str, np.ndarray] = {}
        self.endpoint: SipEndpoint | None = None
        self.calls: dict[int, asyncio.Task[None]] = {}
        self.base_url = server_url(settings)

    async def start(self) -> None:
        self.prompts = await asyncio.to_thread(load_prompts)
        settings = self.settings
        low, _, high = settings.sip_rtp_ports.partition("-")
        host = settings.sip_host or (settings.host if settings.host != "0.0.0.0" else "")
        options = SipOptions(
            host=host,
            port=settings.sip_port,
            domain=settings.sip_domain or host or "localhost",
            public_ip=settings.sip_public_ip,
            rtp_ports=(int(low), int(high)),
            max_calls=settings.sip_max_calls,
        )
        self.endpoint = SipEndpoint(options, self._on_call)
        await self.endpoint.start()
        log.info("sip gateway listening", extra={"host": host or "*", "port": options.port})

    async def stop(self) -> None:
        for task in list(self.calls.values()):
            task.cancel()
        await asyncio.gather(*self.calls.values(), return_exceptions=True)
        if self.endpoint is not None:
            await self.endpoint.stop()

    def _on_call(self, call: IncomingCall) -> None:
        assert self.endpoint is not None
        if self.wrong_pins.blocked(call.address, call.caller):
            log.info("sip call refused: too many wrong PINs", extra={"address": call.address})
            self.endpoint.answer(call.call_id, 403, "Too many wrong PINs, retry later")
            return
        task = asyncio.create_task(self._serve(call), name=f"sip-call-{call.call_id}")
        self.calls[call.call_id] = task
        task.add_done_callback(lambda _: self.calls.pop(call.call_id, None))

    async def _serve(self, call: IncomingCall) -> None:
        assert self.endpoint is not None
        endpoint = self.endpoint
        endpoint.answer(call.call_id, 200)
        try:
            await PhoneCall(self, call).run()
        except Hangup:
            pass  # the caller went
        except Exception:
            log.exception("sip call failed", extra={"caller": call.caller})
        finally:
            endpoint.hang_up(call.call_id)


class Hangup(Exception):
    """The caller hung up."""


class PhoneCall:
    """One caller, from the answer to the hang-up."""

    def __init__(self, gateway: Gateway, call: IncomingCall) -> None:
        self.gateway = gateway
        self.call = call
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.media_up = asyncio.Event()
        self.hung_up = asyncio.Event()
        self._events = asyncio.create_task(self._route_events())

    async def _route_events(self) -> None:
        while True:
            kind, value = await self.call.events.get()
            if kind == "digit":
                self.digits.put_nowait(value)
            elif kind == "media":
                self.media_up.set()
            elif kind == "hangup":
                self.hung_up.set()
                return

    async def run(self) -> None:
        try:
            await self._until_hangup(self.media_up.wait(), ANSWER_TIMEOUT_S)
            room_id = await self._ask_pin()
            if room_id is None:
                await self.say("goodbye")
                return
            await self._attend(room_id)
        finally:
            self._events.cancel()

    # -- speaking and listening ---------------------------------------------------------

    async def say(self, prompt: str) -> None:
        """Play a prompt to its end (or until the caller hangs up)."""
        mixer = self.call.mixer
        mixer.queue_unbounded(PROMPT, self.gateway.prompts[prompt])
        while mixer.queued_s(PROMPT) > 0:
            if self.hung_up.is_set():
                raise Hangup
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the last chunk is still in the phone's jitter buffer

    def _stop_prompt(self) -> None:
        self.call.mixer.clear(PROMPT)

    async def _until_hangup(self, awaitable: Any, timeout: float) -> Any:
        task = asyncio.ensure_future(awaitable)
        hangup = asyncio.create_task(self.hung_up.wait())
        try:
            done, _ = await asyncio.wait(
                {task, hangup}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            hangup.cancel()
        if task in done:
            return task.result()
        task.cancel()
        if hangup in done:
            raise Hangup
        raise TimeoutError

    async def _ask_pin(self) -> str | None:
        """The room the caller's PIN opens, or None after PIN_TRIES wrong ones."""
        for attempt in range(PIN_TRIES):
            prompt = asyncio.create_task(self.say("welcome" if attempt == 0 else "wrong"))
            try:
                pin = await self._read_pin(prompt)
            finally:
                prompt.cancel()
                self._stop_prompt()
            room = await self.gateway.store.room_by_pin(pin) if pin else None
            if room is not None:
                return room.id
            self.gateway.wrong_pins.add(self.call.address, self.call.caller)
            log.info("sip wrong pin", extra={"address": self.call.address, "try": attempt + 1})
            if self.gateway.wrong_pins.blocked(self.call.address, self.call.caller):
                return None
        return None

    async def _read_pin(self, prompt: asyncio.Task[None]) -> str:
        """Keys until '#', a pause, or more digits than a PIN has; a key stops the prompt."""
        keys = ""
        while len(keys) <= PIN_DIGITS + 2:
            wait = DIGIT_TIMEOUT_S + (0 if keys else 15.0)  # the prompt is still playing
            try:
                key = await self._until_hangup(self.digits.get(), wait)
            except TimeoutError:
                break
            if not prompt.done():
                prompt.cancel()
                self._stop_prompt()
            if key == "#":
                break
            if key.isdigit():
                keys += key
        return keys

    # -- in the meeting -----------------------------------------------------------------

    async def _attend(self, room_id: str) -> None:
        name = phone_name(self.call.caller)
        client = VisioClient(
            self.gateway.base_url, room_id, name, video=False, auto_reconnect=False
        )
        meeting_in = MeetingInput(self.call.mixer)
        client.frame_listeners.append(lambda track, frame: self._hear(meeting_in, track, frame))
        try:
            joined = await self._until_hangup(client.connect(), 20.0)
            if joined["type"] == "lobby":
                await self._wait_in_lobby(client, joined["expires_in"])
            await client.publish([self.call.voice])
            log.info("sip caller joined", extra={"room": room_id, "caller_name": name})
            await self.say("joined")
            await self._stay(client)
        except VisioError as exc:
            await self.say("denied" if exc.code in ("denied", "lobby_expired") else "unavailable")
        except (OSError, TimeoutError) as exc:
            log.warning("sip caller could not join", extra={"room": room_id, "error": str(exc)})
            await self.say("unavailable")
        finally:
            with contextlib.suppress(Exception):
                await client.leave()

    async def _wait_in_lobby(self, client: VisioClient, expires_in: float) -> None:
        """Until a moderator lets the caller in (VisioError if denied): the waiting prompt
        stops as soon as they decide, not at its end."""
        prompt = asyncio.create_task(self.say("wait"))
        try:
            await self._until_hangup(client.admitted(timeout=expires_in + 5), expires_in + 10)
        finally:
            prompt.cancel()
            self._stop_prompt()

    def _hear(self, meeting_in: MeetingInput, track: ReceivedTrack, frame: Any) -> None:
        if track.media == "audio":
            meeting_in(f"{track.participant}/{track.target}", frame)

    async def _stay(self, client: VisioClient) -> None:
        """Until the caller hangs up, or the meeting lets them go (removed, ended)."""
        video_off: set[str] = set()
        while not self.hung_up.is_set():
            if client.ws is None or client.ws.close_code is not None:
                await self.say("removed" if _removed(client) else "goodbye")
                return
            for mid, stream in list(client.streams.items()):
                if stream["media"] == "video" and mid not in video_off:
                    video_off.add(mid)  # a phone shows no video: Janus need not send it
                    await client.send({"type": "layer", "mid": mid, "quality": "off"})
            await asyncio.sleep(0.2)


def _removed(client: VisioClient) -> bool:
    return any(error.get("code") == "removed" for error in client.errors)
