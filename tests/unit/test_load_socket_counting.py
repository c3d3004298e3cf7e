"""The load clients' fast path reads RTP header lengths right (CSRCs, extensions)."""

from __future__ import annotations

from visio.load.socket_counting import _header_length


def rtp(payload: bytes, csrcs: int = 0, extension_words: int = 0) -> bytes:
    first = 0x80 | (0x10 if extension_words else 0) | csrcs
    header = bytes([first, 96]) + b"\0\1" + b"\0\0\0\2" + b"\0\0\0\3" + b"\0\0\0\4" * csrcs
    if extension_words:
        header += b"\xbe\xde" + extension_words.to_bytes(2, "big") + b"\0" * 4 * extension_words
    return header + payload


def test_header_length_counts_csrcs_and_extensions():
    assert _header_length(rtp(b"x" * 100)) == 12
    assert _header_length(rtp(b"x" * 100, csrcs=2)) == 20
    assert _header_length(rtp(b"x" * 100, extension_words=2)) == 24
    assert _header_length(rtp(b"x" * 100, csrcs=1, extension_words=1)) == 24


def test_a_truncated_header_never_counts_past_the_packet():
    packet = rtp(b"", extension_words=3)[:18]
    assert _header_length(packet) == len(packet)
