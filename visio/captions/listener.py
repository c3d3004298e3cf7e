"""A UDP port that Janus forwards one speaker's audio to, decoded as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from visio.captions.rtp import OPUS_RATE, TARGET_RATE, OpusToPcm, RtpError, parse_rtp

AudioSink = Callable[[np.ndarray], None]
MAX_GAP = 5 * OPUS_RATE  # longer silences (or a new stream) are not filled in


def _ahead(timestamp: int, expected: int) -> int:
    """How far (in RTP clock ticks) a timestamp is past the expected one; < 0: late."""
    return (timestamp - expected + 2**31) % 2**32 - 2**31


class AudioListener(asyncio.DatagramProtocol):
    """Takes RTP only from the media server's address; anything else is dropped."""

    def __init__(self, sender_host: str, sink: AudioSink) -> None:
        self.sender_host = sender_host
        self.sink = sink
        self.decoder = OpusToPcm()
        self.transport: asyncio.DatagramTransport | None = None
        self.packets = 0
        self._expected: int | None = None  # RTP timestamp of the next packet, if no gap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if addr[0] != self.sender_host:
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            return
        gap = 0 if self._expected is None else _ahead(packet.timestamp, self._expected)
        if gap < 0:
            return  # late or repeated: its time has passed
        self.packets += 1
        if 0 < gap <= MAX_GAP:
            # Nothing was sent (DTX, a muted microphone): the listener hears silence, and
            # the recogniser's clock must move on for an utterance to end.
            self.sink(np.zeros(gap * TARGET_RATE // OPUS_RATE, dtype=np.float32))
        samples = self.decoder.decode(packet.payload)
        self._expected = (packet.timestamp + (self.decoder.last_samples or 960)) % 2**32
        if len(samples):
            self.sink(samples)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def listen(bind_host: str, sender_host: str, sink: AudioSink) -> AudioListener:
    """A listener on a free port of bind_host."""
    loop = asyncio.get_running_loop()
    _, listener = await loop.create_datagram_endpoint(
        lambda: AudioListener(sender_host, sink), local_addr=(bind_host, 0)
    )
    return listener
