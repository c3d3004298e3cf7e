"""The load tool's pre-encoded media: the loops, the talk turns, DTX pacing, key frames."""

from __future__ import annotations

import asyncio
import time

import av
import pytest

from visio.load.media import (
    AUDIO_FRAME,
    DTX_EVERY,
    MeetingAudioTrack,
    ReplayVideoTrack,
    TalkSchedule,
    encode_media,
)


@pytest.fixture(scope="module")
def media():
    return encode_media(video_seconds=2.0, speech_seconds=1.0)


def test_the_loops_decode_and_have_the_low_layer_shape(media):
    decoder = av.CodecContext.create("libvpx", "r")
    pictures = [p for data in media.video for p in decoder.decode(av.Packet(data))]
    assert len(pictures) == len(media.video) == 30
    assert (pictures[0].width, pictures[0].height) == (320, 180)
    key_frames = [data[0] & 1 == 0 for data in media.video]  # VP8 frame tag, RFC 6386 9.1
    assert key_frames == [True] + [False] * 29
    assert 60 < media.video_kbps < 250
    assert len(media.speech) == 50 and 16 < media.speech_kbps < 64
    assert len(media.silence) <= 8


def test_one_seat_of_a_meeting_talks_at_a_time_and_turns_rotate():
    seats = [TalkSchedule(seat, 6, turn_s=10, offset_s=3) for seat in range(6)]
    talkers = []
    for wall in range(1_000_000, 1_000_120, 5):
        talking = [s.seat for s in seats if s.talking(wall)]
        assert len(talking) == 1
        talkers.append(talking[0])
    assert set(talkers) == set(range(6))
    for schedule in seats:
        start = schedule.next_turn_start(1_000_000.0)
        assert 1_000_000 < start <= 1_000_060
        assert schedule.talking(start + 0.001) and not schedule.talking(start - 0.001)


async def test_a_talker_sends_every_20_ms_and_a_silent_microphone_every_400_ms(media):
    talker = MeetingAudioTrack(media, TalkSchedule(0, 1))
    packets = [await talker.recv() for _ in range(5)]
    assert [p.pts for p in packets] == [i * AUDIO_FRAME for i in range(5)]
    assert bytes(packets[1]) == media.speech[1]

    # Turns of 10^9 s: the seat that does not talk now stays silent for the whole test.
    talking_now = int(time.time() // 1e9) % 2
    track = MeetingAudioTrack(media, TalkSchedule(1 - talking_now, 2, turn_s=1e9))
    started = time.monotonic()
    packets = [await track.recv() for _ in range(3)]
    elapsed = time.monotonic() - started
    assert [p.pts for p in packets] == [i * DTX_EVERY * AUDIO_FRAME for i in range(3)]
    assert all(bytes(p) == media.silence for p in packets)
    assert 0.75 < elapsed < 1.2  # two 400 ms waits


async def test_video_replays_at_its_frame_rate_and_restarts_on_a_key_frame_request(media):
    track = ReplayVideoTrack(media)
    packets = [await track.recv() for _ in range(4)]
    assert [bytes(p) for p in packets] == list(media.video[:4])
    assert [p.pts for p in packets] == [0, 6000, 12000, 18000]
    await asyncio.sleep(0.5)  # key frames asked by PLI are at least 0.5 s apart
    track.request_keyframe()
    again = await track.recv()
    assert bytes(again) == media.video[0]  # the loop's key frame
    assert again.pts == 24000  # the RTP clock goes on
    assert track.keyframes_sent == 2
