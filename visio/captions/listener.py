"""A UDP port that Janus forwards one speaker's audio to, decoded as it arrives.

The audio comes as SRTP with a key drawn for this one forward (audit L8): a packet
someone else sends, from whatever address, fails authentication and is dropped. Packets
are also taken only from the media node's addresses (its name resolved: a node named by
DNS sends from an IP).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable

import numpy as np
import pylibsrtp

from visio.captions.rtp import OPUS_RATE, TARGET_RATE, OpusToPcm, RtpError, parse_rtp

AudioSink = Callable[[np.ndarray], None]
MAX_GAP = 5 * OPUS_RATE  # longer silences (or a new stream) are not filled in


def _ahead(timestamp: int, expected: int) -> int:
    """How far (in RTP clock ticks) a timestamp is past the expected one; < 0: late."""
    return (timestamp - expected + 2**31) % 2**32 - 2**31


def srtp_key() -> bytes:
    """A fresh master key and salt for AES_CM_128_HMAC_SHA1_80 (30 bytes)."""
    return secrets.token_bytes(30)


def srtp_session(key: bytes) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    return pylibsrtp.Session(policy=policy)


class AudioListener(asyncio.DatagramProtocol):
    """Takes RTP only from the media server's addresses, and with `key`, only SRTP that
    authenticates with it; anything else is dropped."""

    def __init__(self, senders: frozenset[str], sink: AudioSink, key: bytes | None = None) -> None:
        self.senders = senders
        self.srtp = srtp_session(key) if key is not None else None
        self.sink = sink
        self.decoder = OpusToPcm()
        self.transport: asyncio.DatagramTransport | None = None
        self.packets = 0
        self._expected: int | None = None  # RTP timestamp of the next packet, if no gap

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if addr[0] not in self.senders:
            return
        try:
            packet = parse_rtp(self.srtp.unprotect(data) if self.srtp else data)
        except (RtpError, pylibsrtp.Error):
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


async def listen(
    bind_host: str, sender_host: str, sink: AudioSink, key: bytes | None = None
) -> AudioListener:
    """A listener on a free port of bind_host, for RTP from sender_host (a name or an
    address), SRTP with `key` if given."""
    loop = asyncio.get_running_loop()
    senders = await resolve(sender_host)
    _, listener = await loop.create_datagram_endpoint(
        lambda: AudioListener(senders, sink, key), local_addr=(bind_host, 0)
    )
    return listener


async def resolve(host: str) -> frozenset[str]:
    """The addresses of a host name (an address stands for itself)."""
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError:
        return frozenset({host})
    return frozenset({str(info[4][0]) for info in found}) | {host}
