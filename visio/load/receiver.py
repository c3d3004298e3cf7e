"""Count what an aiortc receiver gets, and decode nothing.

aiortc's RTCRtpReceiver depacketizes every packet, reassembles frames in a jitter buffer
and decodes them in a thread of its own: ~2.3 % of a core per decoding subscriber, which
would make the load clients, not the server, the bottleneck. `count_packets` replaces,
on one receiver instance, the method the DTLS transport hands each decrypted RTP packet
to, so that the packet is counted and dropped; and it stops the decoder thread as soon
as aiortc starts it (an idle thread per track is memory for nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.codecs import is_rtx
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription

from visio.load.rtpstats import StreamCounter

CLOCK_RATES = {"audio": 48_000, "video": 90_000}


class PacketCounter:
    """The streams one receiver got: one StreamCounter per SSRC."""

    def __init__(self, kind: str, on_first_packet: Callable[[float], None]) -> None:
        self.kind = kind
        self.streams: dict[int, StreamCounter] = {}
        self.retransmissions = 0
        self.at_socket = 0  # packets counted by the fast path (visio.load.socket_counting)
        self.rtx_payload_types: set[int] = set()
        self._on_first_packet = on_first_packet

    def add(self, ssrc: int, sequence: int, timestamp: int, size: int, arrival: float) -> None:
        stream = self.streams.get(ssrc)
        if stream is None:
            if not self.streams:
                self._on_first_packet(arrival)
            stream = self.streams[ssrc] = StreamCounter(CLOCK_RATES[self.kind])
        stream.add(sequence, timestamp, size, arrival)


def count_packets(
    receiver: RTCRtpReceiver, kind: str, on_first_packet: Callable[[float], None]
) -> PacketCounter:
    """Make `receiver` count its packets instead of decoding them; call before it starts."""
    counter = PacketCounter(kind, on_first_packet)

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type in counter.rtx_payload_types:
            counter.retransmissions += 1  # only after a NACK, and we send none
            return
        size = len(packet.payload) + packet.padding_size
        counter.add(packet.ssrc, packet.sequence_number, packet.timestamp, size, time.monotonic())

    start = receiver.receive

    async def receive(parameters: Any) -> None:
        counter.rtx_payload_types.update(c.payloadType for c in parameters.codecs if is_rtx(c))
        await start(parameters)
        # aiortc offers no switch for its decoder thread: stop it the way it stops it.
        receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    receiver._handle_rtp_packet = handle_rtp_packet  # type: ignore[method-assign]
    receiver.receive = receive  # type: ignore[method-assign]
    return counter


def route_offered_ssrcs(pc: RTCPeerConnection) -> None:
    """Route every SSRC of the remote offer to its m-line's receiver.

    aiortc learns a receiver's SSRCs once, when it starts, and routes an unknown SSRC only
    by a payload type no other receiver has. Janus reuses an m-line freed by someone who
    left for the next feed, with a new SSRC and Opus' or VP8's payload type, which every
    audio or video m-line shares: without this, those packets are dropped.
    """
    if pc.remoteDescription is None:
        return
    receivers = {t.mid: t.receiver for t in pc.getTransceivers() if t.mid is not None}
    for media in SessionDescription.parse(pc.remoteDescription.sdp).media:
        receiver = receivers.get(media.rtp.muxId)
        if receiver is None:
            continue
        router = receiver.transport._rtp_router
        for description in media.ssrc:
            router.ssrc_table[description.ssrc] = receiver
