"""The RTP reader and Opus decoder of the captions path."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest

from visio.captions.rtp import OpusToPcm, RtpError, parse_rtp


def rtp(payload: bytes, *, csrcs: int = 0, extension: bytes = b"", padding: int = 0) -> bytes:
    first = 0x80 | (0x20 if padding else 0) | (0x10 if extension else 0) | csrcs
    header = bytes([first, 111]) + (1234).to_bytes(2, "big") + (960).to_bytes(4, "big")
    header += (0xDEADBEEF).to_bytes(4, "big") + b"\0\0\0\1" * csrcs
    if extension:
        header += b"\xbe\xde" + (len(extension) // 4).to_bytes(2, "big") + extension
    tail = b"\0" * (padding - 1) + bytes([padding]) if padding else b""
    return header + payload + tail


def test_header_fields_and_payload_whatever_the_options():
    for options in ({}, {"csrcs": 2}, {"extension": b"\x10\xff\0\0"}, {"padding": 4}):
        packet = parse_rtp(rtp(b"opus!", **options))
        assert (packet.sequence, packet.timestamp, packet.ssrc) == (1234, 960, 0xDEADBEEF)
        assert (packet.payload_type, packet.payload) == (111, b"opus!")


@pytest.mark.parametrize("data", [b"", b"\x80" * 5, b"\x40" + b"\0" * 20, rtp(b"", csrcs=15)[:20]])
def test_what_is_not_rtp_is_refused(data: bytes):
    with pytest.raises(RtpError):
        parse_rtp(data)


def test_opus_becomes_16_khz_float_samples():
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48_000, "mono", "s16"
    encoder.time_base = fractions.Fraction(1, 48_000)
    tone = (np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000) * 10_000).astype(np.int16)
    decoder, decoded = OpusToPcm(), []
    for index in range(50):
        frame = av.AudioFrame.from_ndarray(
            tone[index * 960 : (index + 1) * 960].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48_000, index * 960
        decoded += [decoder.decode(bytes(packet)) for packet in encoder.encode(frame)]
    samples = np.concatenate(decoded)
    assert samples.dtype == np.float32 and 15_000 < len(samples) <= 16_000
    assert 0.1 < float(np.abs(samples[4000:]).max()) <= 1.0
    assert len(decoder.decode(b"\xff\xfe garbage")) == 0  # a damaged packet is skipped
