"""A UDP port that Janus forwards one speaker's audio to, decoded as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from visio.captions.rtp import OpusToPcm, RtpError, parse_rtp

AudioSink = Callable[[np.ndarray], None]


class AudioListener(asyncio.DatagramProtocol):
    """Takes RTP only from the media server's address; anything else is dropped."""

    def __init__(self, sender_host: str, sink: AudioSink) -> None:
        self.sender_host = sender_host
        self.sink = sink
        self.decoder = OpusToPcm()
        self.transport: asyncio.DatagramTransport | None = None
        self.packets = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if addr[0] != self.sender_host:
            return
        try:
            packet = parse_rtp(data)
        except RtpError:
            return
        self.packets += 1
        samples = self.decoder.decode(packet.payload)
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
