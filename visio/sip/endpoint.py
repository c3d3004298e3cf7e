"""The SIP stack: PJSIP (pjsua2) in a thread of its own, talking to asyncio.

PJSIP runs with no worker threads of its own: the "sip" thread polls it, and everything
that touches PJSIP objects runs there (`SipEndpoint.call_in_thread`). Its callbacks come
back to the event loop as `IncomingCall` events. Only the conference clock calls into
Python from another thread, through `CallPort`, which touches nothing but the audio
queues.

PJSIP checks each offer before Visio sees it: an INVITE whose SDP cannot be parsed, or
that offers no codec in common, is refused there (400 / 488) and never becomes a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pjsua2 as pj

from visio.sip.audio import PHONE_CHUNK, PHONE_RATE, Mixer, PhoneVoice

log = logging.getLogger(__name__)

POLL_MS = 10
CODECS = ("G722/16000/1", "PCMA/8000/1", "PCMU/8000/1")  # what phones and trunks speak


@dataclass
class SipOptions:
    host: str
    port: int
    domain: str
    public_ip: str
    rtp_ports: tuple[int, int]
    max_calls: int


class CallPort(pj.AudioMediaPort):
    """A conference port: the phone's voice in, the mix out (PJSIP's clock thread)."""

    def __init__(self, mixer: Mixer, voice: PhoneVoice) -> None:
        super().__init__()
        self.mixer = mixer
        self.voice = voice

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:
        frame.type = pj.PJMEDIA_TYPE_AUDIO
        frame.buf = pj.ByteVector(self.mixer.pull().tobytes())
        frame.size = PHONE_CHUNK * 2

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        if frame.size == PHONE_CHUNK * 2:
            self.voice.feed(np.frombuffer(bytes(frame.buf), dtype=np.int16))


@dataclass
class IncomingCall:
    """One call, seen from asyncio: its events arrive on `events`."""

    call_id: int
    caller: str  # the From URI
    address: str  # where the INVITE came from (IP only)
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    mixer: Mixer = field(default_factory=Mixer)
    voice: PhoneVoice = field(default_factory=PhoneVoice)


class _Call(pj.Call):
    def __init__(self, endpoint: SipEndpoint, account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.endpoint = endpoint
        self.call_id = call_id
        self.incoming: IncomingCall | None = None
        self.port: CallPort | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        info = self.getInfo()
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.endpoint.tell(self, "answered", None)
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.endpoint.tell(self, "hangup", info.lastStatusCode)
            self.endpoint.forget(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        if self.incoming is None or self.port is not None:
            return
        try:
            self._connect_audio()
        except Exception:  # PJSIP would swallow it
            log.exception("sip call media failed")

    def _connect_audio(self) -> None:
        assert self.incoming is not None
        info = self.getInfo()  # kept: its media vector dies with it (SWIG)
        for index, media in enumerate(info.media):
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.port = CallPort(self.incoming.mixer, self.incoming.voice)
                self.port.createPort(f"call{self.call_id}", _port_format())
                audio = self.getAudioMedia(index)
                audio.startTransmit(self.port)
                self.port.startTransmit(audio)
                self.endpoint.tell(self, "media", None)
                return

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.endpoint.tell(self, "digit", prm.digit)


class _Account(pj.Account):
    def __init__(self, endpoint: SipEndpoint) -> None:
        super().__init__()
        self.endpoint = endpoint

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = _Call(self.endpoint, self, prm.callId)
        address = prm.rdata.srcAddress.rpartition(":")[0].strip("[]")
        caller = call.getInfo().remoteUri
        self.endpoint.offer(call, caller, address)


class _LogWriter(pj.LogWriter):
    def write(self, entry: pj.LogEntry) -> None:
        # PJSIP's "errors" are mostly callers' bad requests, answered already: not ours.
        level = logging.WARNING if entry.level <= 1 else logging.INFO
        log.log(level, "pjsip: %s", entry.msg.strip())


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _port_format() -> pj.MediaFormatAudio:
    audio = pj.MediaFormatAudio()
    audio.type = pj.PJMEDIA_TYPE_AUDIO
    audio.clockRate = PHONE_RATE
    audio.channelCount = 1
    audio.bitsPerSample = 16
    audio.frameTimeUsec = 20_000
    return audio


class SipEndpoint:
    """PJSIP's endpoint and its thread. `on_call(IncomingCall)` decides each call's fate
    by calling answer/hang_up; it runs on the event loop."""

    def __init__(self, options: SipOptions, on_call: Callable[[IncomingCall], None]) -> None:
        self.options = options
        self.on_call = on_call
        self.loop = asyncio.get_running_loop()
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._calls: dict[int, _Call] = {}
        self._stopping = threading.Event()
        self._ready: asyncio.Future[None] = self.loop.create_future()
        self._thread = threading.Thread(target=self._run, name="sip", daemon=True)

    async def start(self) -> None:
        self._thread.start()
        await self._ready

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, 10)

    # -- from the event loop ------------------------------------------------------------

    def call_in_thread(self, action: Callable[[], None]) -> None:
        self._work.put(action)

    def answer(self, call_id: int, code: int, reason: str = "") -> None:
        self._respond(call_id, code, reason, hang_up=False)

    def hang_up(self, call_id: int, code: int = 200, reason: str = "") -> None:
        self._respond(call_id, code, reason, hang_up=True)

    def _respond(self, call_id: int, code: int, reason: str, *, hang_up: bool) -> None:
        """Answers or hangs up a call with `code`, in PJSIP's thread."""

        def act() -> None:
            call = self._calls.get(call_id)
            if call is None:
                return
            param = pj.CallOpParam()
            param.statusCode = code
            if reason:
                param.reason = reason
            try:
                call.hangup(param) if hang_up else call.answer(param)
            except pj.Error as exc:
                what = "sip hang-up failed" if hang_up else "sip answer failed"
                log.info(what, extra={"error": exc.info()})

        self.call_in_thread(act)

    # -- on the sip thread ----------------------------------------------------------------

    def offer(self, call: _Call, caller: str, address: str) -> None:
        self._calls[call.call_id] = call
        incoming = IncomingCall(call.call_id, caller, address)
        call.incoming = incoming
        self.loop.call_soon_threadsafe(self.on_call, incoming)

    def tell(self, call: _Call, kind: str, value: Any) -> None:
        if call.incoming is not None:
            events = call.incoming.events
            self.loop.call_soon_threadsafe(events.put_nowait, (kind, value))

    def forget(self, call: _Call) -> None:
        # The port leaves the conference before the call object goes (PJSIP asserts).
        self._calls.pop(call.call_id, None)
        self._gone.append(call)

    def _run(self) -> None:
        self._gone: list[_Call] = []
        try:
            endpoint, account = self._open()
        except pj.Error as exc:
            error = RuntimeError(f"the SIP gateway cannot start: {exc.info()}")
            self.loop.call_soon_threadsafe(self._ready.set_exception, error)
            return
        self.loop.call_soon_threadsafe(self._ready.set_result, None)
        try:
            while not self._stopping.is_set():
                self._drain_work()
                endpoint.libHandleEvents(POLL_MS)
                self._release_gone()
            endpoint.hangupAllCalls()
            for _ in range(50):  # let the BYEs go out
                endpoint.libHandleEvents(POLL_MS)
            self._release_gone()
            for call in list(self._calls.values()):
                call.port = None
            self._calls.clear()
            account.shutdown()
        finally:
            endpoint.libDestroy()

    def _drain_work(self) -> None:
        while True:
            try:
                action = self._work.get_nowait()
            except queue.Empty:
                return
            try:
                action()
            except Exception:  # one call's failure must not stop the gateway
                log.exception("sip action failed")

    def _release_gone(self) -> None:
        for call in self._gone:
            call.port = None
        self._gone.clear()

    def _open(self) -> tuple[pj.Endpoint, pj.Account]:
        options = self.options
        endpoint = pj.Endpoint()
        with _quiet_stdout():  # PJSIP prints its first lines before any log setting applies
            endpoint.libCreate()
        config = pj.EpConfig()
        self._log_writer = _LogWriter()  # PJSIP keeps a pointer: it must outlive the endpoint
        config.logConfig.writer = self._log_writer
        config.logConfig.decor = 0
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = False
        config.uaConfig.maxCalls = options.max_calls
        config.uaConfig.userAgent = "Visio"
        config.logConfig.level = 2  # errors and warnings, into Visio's logs
        config.logConfig.consoleLevel = 2
        config.medConfig.clockRate = PHONE_RATE
        config.medConfig.sndClockRate = PHONE_RATE
        config.medConfig.noVad = True
        config.medConfig.ecTailLen = 0
        config.medConfig.threadCnt = 1
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()
        for codec in endpoint.codecEnum2():
            wanted = codec.codecId in CODECS
            priority = 200 - CODECS.index(codec.codecId) if wanted else 0
            endpoint.codecSetPriority(codec.codecId, priority)
        transport = pj.TransportConfig()
        transport.port = options.port
        transport.boundAddress = options.host
        if options.public_ip:
            transport.publicAddress = options.public_ip
        endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        endpoint.libStart()
        account_config = pj.AccountConfig()
        account_config.idUri = f"sip:visio@{options.domain}"
        media = account_config.mediaConfig.transportConfig
        media.port = options.rtp_ports[0]
        media.portRange = options.rtp_ports[1] - options.rtp_ports[0]
        media.boundAddress = options.host
        if options.public_ip:
            media.publicAddress = options.public_ip
        account = _Account(self)
        account.create(account_config, True)
        return endpoint, account
