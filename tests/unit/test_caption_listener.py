"""Caption audio from the media node: SRTP with a key per forward, from the node's
addresses, the node named by DNS or not (audit L8). Real UDP sockets on loopback."""

from __future__ import annotations

import asyncio
import socket
import struct

import pylibsrtp

from visio.captions.listener import listen, srtp_key

OPUS_SILENCE = b"\xf8\xff\xfe"  # one 20 ms Opus frame


def rtp(seq: int) -> bytes:
    return struct.pack("!BBHII", 0x80, 111, seq, seq * 960, 0x1234) + OPUS_SILENCE


async def test_l8_caption_audio_is_srtp_from_the_node_and_a_node_name_is_resolved():
    key = srtp_key()
    heard: list[int] = []
    listener = await listen(
        "127.0.0.1", "localhost", lambda samples: heard.append(len(samples)), key
    )
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(("127.0.0.1", 0))
    outbound = pylibsrtp.Session(
        policy=pylibsrtp.Policy(
            key=key,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
        )
    )
    try:
        sender.sendto(rtp(1), ("127.0.0.1", listener.port))  # plain RTP: a spoofer's
        forged = pylibsrtp.Session(
            policy=pylibsrtp.Policy(
                key=srtp_key(),
                ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
            )
        )
        sender.sendto(forged.protect(rtp(2)), ("127.0.0.1", listener.port))  # another key
        await asyncio.sleep(0.2)
        assert listener.packets == 0

        # From "localhost" (the node's name, 127.0.0.1 once resolved), with the key: heard.
        for seq in (3, 4):
            sender.sendto(outbound.protect(rtp(seq)), ("127.0.0.1", listener.port))
        for _ in range(20):
            if listener.packets == 2:
                break
            await asyncio.sleep(0.05)
        assert listener.packets == 2 and sum(heard) > 0
    finally:
        sender.close()
        listener.close()
