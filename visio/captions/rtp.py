"""Just enough RTP to read the Opus packets Janus forwards to us (RFC 3550)."""

from __future__ import annotations

import fractions
from dataclasses import dataclass

import av
import numpy as np

OPUS_RATE = 48_000
TARGET_RATE = 16_000


class RtpError(ValueError):
    pass


@dataclass(frozen=True)
class RtpPacket:
    sequence: int
    timestamp: int
    ssrc: int
    payload_type: int
    payload: bytes


def parse_rtp(data: bytes) -> RtpPacket:
    """The packet's header fields and payload; RtpError when it is not RTP version 2."""
    if len(data) < 12 or data[0] >> 6 != 2:
        raise RtpError("not an RTP packet")
    padding, extension, csrc_count = data[0] & 0x20, data[0] & 0x10, data[0] & 0x0F
    offset = 12 + 4 * csrc_count
    if extension:
        if len(data) < offset + 4:
            raise RtpError("truncated header extension")
        words = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4 + 4 * words
    end = len(data) - (data[-1] if padding else 0)
    if offset > end:
        raise RtpError("truncated RTP packet")
    return RtpPacket(
        sequence=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        ssrc=int.from_bytes(data[8:12], "big"),
        payload_type=data[1] & 0x7F,
        payload=data[offset:end],
    )


class OpusToPcm:
    """Decodes Opus payloads into 16 kHz mono float32 samples, as Whisper wants them."""

    def __init__(self) -> None:
        self._decoder = av.CodecContext.create("opus", "r")
        self._decoder.sample_rate = OPUS_RATE
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)
        self._pts = 0
        self.last_samples = 0  # at 48 kHz, of the last packet decoded

    def decode(self, payload: bytes) -> np.ndarray:
        packet = av.Packet(payload)
        packet.pts = self._pts
        packet.time_base = fractions.Fraction(1, OPUS_RATE)
        chunks = []
        self.last_samples = 0
        try:
            for frame in self._decoder.decode(packet):
                self._pts += frame.samples
                self.last_samples += frame.samples
                for out in self._resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError:
            return np.zeros(0, dtype=np.float32)  # a damaged packet: skip it
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)
