"""Count SRTP packets where they come off the socket: the subscriber's fast path.

On its way to a receiver, each RTP packet goes through aioice's queue, three awaiting
layers of aiortc (a task wake-up each), a full header parse and the RTP router. For a
load client that only counts, that path is most of its CPU. Once DTLS has given the
SRTP keys, `count_at_the_socket` takes the subscriber's RTP packets out at aioice's
`Connection.data_received`: decrypts them, reads the four header fields it needs and
counts them, all in the datagram callback. Everything else (STUN, DTLS, RTCP, a packet
of an SSRC not yet routed, any surprise) goes the usual way, where the receivers count
it (`visio.load.receiver`).
"""

from __future__ import annotations

import time
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection, RTCRtpReceiver

from visio.load.receiver import PacketCounter


def count_at_the_socket(pc: RTCPeerConnection, counters: dict[RTCRtpReceiver, PacketCounter]):
    """Install the fast path on `pc`'s (bundled) transport; call after the first offer."""
    transceivers = pc.getTransceivers()
    if not transceivers:
        return
    dtls = transceivers[0].receiver.transport
    connection = dtls.transport._connection  # aioice's Connection
    queue_it = connection.data_received

    def data_received(data: bytes, component: int) -> None:
        if not _counted(data, dtls, counters):
            queue_it(data, component)

    connection.data_received = data_received


def _counted(data: bytes, dtls: Any, counters: dict[RTCRtpReceiver, PacketCounter]) -> bool:
    srtp = dtls._rx_srtp
    # RTP (not RTCP: payload types 192-208 in the second byte), keys known
    if srtp is None or len(data) < 12 or not 127 < data[0] < 192 or 191 < data[1] < 209:
        return False
    receiver = dtls._rtp_router.ssrc_table.get(int.from_bytes(data[8:12], "big"))
    counter = counters.get(receiver)
    if counter is None:
        return False  # not routed yet: aiortc learns the SSRC, the receiver counts it
    try:
        packet = srtp.unprotect(data)
    except pylibsrtp.Error:
        return True  # what aiortc does too: drop it
    if packet[1] & 0x7F in counter.rtx_payload_types:
        counter.retransmissions += 1
        return True
    counter.at_socket += 1
    counter.add(
        int.from_bytes(packet[8:12], "big"),
        int.from_bytes(packet[2:4], "big"),
        int.from_bytes(packet[4:8], "big"),
        len(packet) - _header_length(packet),
        time.monotonic(),
    )
    return True


def _header_length(packet: bytes) -> int:
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10 and len(packet) >= length + 4:
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4], "big")
    return min(length, len(packet))
