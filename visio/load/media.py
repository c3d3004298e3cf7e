"""Pre-encoded media: encoded once at start-up, replayed by every publisher.

aiortc's RTCRtpSender packs an `av.Packet` as it is (the codec's `pack()`) where it
would encode an `av.Frame`, so a publisher that replays packets costs no encoding.

- Video: a VP8 loop at the size of a browser's low simulcast layer (320x180, 15 fps,
  ~120 kbit/s), starting on a key frame. A PLI from Janus (a new subscriber, or every
  `fir_freq` seconds) restarts the loop on that key frame, as a browser sends one.
- Audio: Opus, 20 ms frames. Every microphone is on with DTX: one talker at a time per
  meeting sends 50 packets/s of speech-like sound; the others send one 3-byte silence
  packet every 400 ms, as a browser's Opus DTX does. Who talks is a function of the wall
  clock (`TalkSchedule`), so the publishers of one meeting agree without talking to each
  other, even in different processes.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from dataclasses import dataclass

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

VIDEO_CLOCK = 90_000
AUDIO_RATE = 48_000
AUDIO_FRAME = 960  # 20 ms at 48 kHz
AUDIO_PERIOD = AUDIO_FRAME / AUDIO_RATE
DTX_EVERY = 20  # one silence packet every 20 frames: 400 ms
KEYFRAME_MIN_INTERVAL = 0.5  # s; browsers also throttle key frames asked by PLI
SPEECH_DBOV = -20  # audio level (RFC 6464) of speech: Janus' talking threshold is -25
SILENCE_DBOV = -127


@dataclass(frozen=True)
class EncodedMedia:
    """What every publisher replays: picklable, so it is encoded once for all workers."""

    video: tuple[bytes, ...]  # VP8 frames, video[0] a key frame, the others not
    fps: int
    speech: tuple[bytes, ...]  # Opus 20 ms frames
    silence: bytes  # one Opus frame of silence

    @property
    def video_kbps(self) -> float:
        return sum(len(f) for f in self.video) * 8 * self.fps / len(self.video) / 1000

    @property
    def speech_kbps(self) -> float:
        return sum(len(f) for f in self.speech) * 8 / (len(self.speech) * AUDIO_PERIOD) / 1000


def encode_media(
    width: int = 320,
    height: int = 180,
    fps: int = 15,
    video_kbps: int = 120,
    video_seconds: float = 10.0,
    speech_seconds: float = 4.0,
    speech_kbps: int = 32,
) -> EncodedMedia:
    return EncodedMedia(
        video=_encode_video(width, height, fps, video_kbps * 1000, round(video_seconds * fps)),
        fps=fps,
        speech=_encode_speech(speech_seconds, speech_kbps * 1000),
        silence=_encode_silence(),
    )


def _encode_video(width: int, height: int, fps: int, bitrate: int, count: int) -> tuple[bytes, ...]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
    encoder.framerate = fractions.Fraction(fps, 1)
    encoder.time_base = fractions.Fraction(1, fps)
    encoder.bit_rate = bitrate
    encoder.gop_size = count + 1  # one key frame: the first
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = np.random.default_rng(7)
    frames: list[bytes] = []
    for index in range(count):
        frame = av.VideoFrame.from_ndarray(_picture(width, height, index, rng), format="yuv420p")
        frame.pts = index
        frames += [bytes(packet) for packet in encoder.encode(frame)]
    frames += [bytes(packet) for packet in encoder.encode(None)]
    return tuple(frames)


def _picture(width: int, height: int, index: int, rng: np.random.Generator) -> np.ndarray:
    """A gradient with a moving block of noise: enough motion to use the bitrate."""
    luma = np.tile(np.linspace(30, 220, width, dtype=np.uint8), (height, 1))
    size = height // 3
    x = (index * 4) % (width - size)
    luma[height // 3 : height // 3 + size, x : x + size] = rng.integers(0, 255, (size, size))
    chroma = np.full((height // 4, width), 110, dtype=np.uint8)
    return np.vstack([luma, chroma, chroma + 30])


def _opus_encoder(bitrate: int) -> av.CodecContext:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = AUDIO_RATE, "mono", "s16"
    encoder.bit_rate = bitrate
    encoder.time_base = fractions.Fraction(1, AUDIO_RATE)
    return encoder


def _encode_pcm(encoder: av.CodecContext, samples: np.ndarray) -> list[bytes]:
    packets: list[bytes] = []
    for index in range(len(samples) // AUDIO_FRAME):
        chunk = samples[index * AUDIO_FRAME : (index + 1) * AUDIO_FRAME]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = index * AUDIO_FRAME
        packets += [bytes(packet) for packet in encoder.encode(frame)]
    return packets


def _encode_speech(seconds: float, bitrate: int) -> tuple[bytes, ...]:
    """Harmonics of a wandering pitch, cut into ~4 syllables a second: speech-like bits."""
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / AUDIO_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)
    samples = (voice * syllables * 0.15 * 32767).astype(np.int16)
    return tuple(_encode_pcm(_opus_encoder(bitrate), samples))


def _encode_silence() -> bytes:
    """Opus settles on a tiny frame for digital silence; take one once it has settled."""
    packets = _encode_pcm(_opus_encoder(32_000), np.zeros(AUDIO_FRAME * 10, np.int16))
    return packets[-1]


class ReplayVideoTrack(MediaStreamTrack):
    """Replays the VP8 loop at its frame rate."""

    kind = "video"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__()
        self.frames = media.video
        self.fps = media.fps
        self._start: float | None = None
        self._count = 0
        self._position = 0
        self._keyframe_wanted = False
        self._last_keyframe = 0.0
        self.keyframes_sent = 0

    def request_keyframe(self) -> None:
        self._keyframe_wanted = True

    async def recv(self) -> av.Packet:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self._count / self.fps - now
        if wait > 0:
            await asyncio.sleep(wait)
        if self._keyframe_wanted and now - self._last_keyframe >= KEYFRAME_MIN_INTERVAL:
            self._keyframe_wanted = False
            self._position = 0
        if self._position == 0:
            self._last_keyframe = now
            self.keyframes_sent += 1
        packet = av.Packet(self.frames[self._position])
        packet.pts = self._count * (VIDEO_CLOCK // self.fps)
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._count += 1
        self._position = (self._position + 1) % len(self.frames)
        return packet


@dataclass(frozen=True)
class TalkSchedule:
    """One talker at a time: seat `seat` of `seats` talks during its turns of `turn_s`."""

    seat: int
    seats: int
    turn_s: float = 10.0
    offset_s: float = 0.0  # meetings are offset so that their turns do not all change at once

    def talking(self, wall: float) -> bool:
        return self._turn(wall) % self.seats == self.seat

    def next_turn_start(self, wall: float) -> float:
        """Wall time at which this seat next starts talking (after `wall`)."""
        turn = self._turn(wall)
        ahead = (self.seat - turn) % self.seats or self.seats
        return (turn + ahead) * self.turn_s - self.offset_s

    def _turn(self, wall: float) -> int:
        return math.floor((wall + self.offset_s) / self.turn_s)


ALWAYS_TALKING = TalkSchedule(seat=0, seats=1)


class MeetingAudioTrack(MediaStreamTrack):
    """An always-on microphone with Opus DTX: speech on its turns, sparse silence otherwise.

    Frame slots are 20 ms apart from the first `recv`; the RTP timestamp is the slot's, so
    that the silences between DTX packets advance the clock as a real sender's do.
    """

    kind = "audio"

    def __init__(self, media: EncodedMedia, schedule: TalkSchedule) -> None:
        super().__init__()
        self.speech = media.speech
        self.silence = media.silence
        self.schedule = schedule
        self._start: float | None = None  # wall clock, shared with the schedule
        self._slot = -1
        self._last_sent = -DTX_EVERY
        self._spoken = 0
        self.level_dbov = SILENCE_DBOV  # of the last packet, for its audio level extension

    async def recv(self) -> av.Packet:
        now = time.time()
        if self._start is None:
            self._start = now
        slot = self._next_slot(now)
        wait = self._start + slot * AUDIO_PERIOD - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._slot = self._last_sent = slot
        if self.schedule.talking(self._start + slot * AUDIO_PERIOD + 1e-6):
            data = self.speech[self._spoken % len(self.speech)]
            self._spoken += 1
            self.level_dbov = SPEECH_DBOV
        else:
            data = self.silence
            self.level_dbov = SILENCE_DBOV
        packet = av.Packet(data)
        packet.pts = slot * AUDIO_FRAME
        packet.time_base = fractions.Fraction(1, AUDIO_RATE)
        return packet

    def _next_slot(self, now: float) -> int:
        assert self._start is not None
        slot = self._slot + 1
        if self.schedule.talking(self._start + slot * AUDIO_PERIOD + 1e-6):
            return slot
        dtx = self._last_sent + DTX_EVERY
        talk = math.ceil((self.schedule.next_turn_start(now) - self._start) / AUDIO_PERIOD)
        return max(slot, min(dtx, talk))
