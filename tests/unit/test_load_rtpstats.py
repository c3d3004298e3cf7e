"""The load tool's RTP accounting on synthetic sequences: loss, reordering, wraps, jitter."""

from __future__ import annotations

import pytest

from visio.load.rtpstats import StreamCounter, StreamTotals

AUDIO = 48_000
FRAME = 960  # 20 ms of Opus


def feed(counter: StreamCounter, packets: list[tuple[int, int, float]]) -> StreamCounter:
    for sequence, timestamp, arrival in packets:
        counter.add(sequence, timestamp, 100, arrival)
    return counter


def audio(sequences: list[int], first_seq: int = 0, ts0: int = 0) -> StreamCounter:
    """Packets sent every 20 ms, arriving on time, for the given sequence numbers."""
    packets = [
        (s % 65536, (ts0 + (s - first_seq) * FRAME) % 2**32, (s - first_seq) * 0.02)
        for s in sequences
    ]
    return feed(StreamCounter(AUDIO), packets)


def test_an_unbroken_stream_has_no_loss_and_one_frame_per_packet():
    counter = audio(list(range(100)))
    assert (counter.packets, counter.expected, counter.lost, counter.frames) == (100, 100, 0, 100)
    assert counter.bytes == 100 * 100
    assert counter.jitter_ms == pytest.approx(0, abs=1e-6)


def test_gaps_in_sequence_numbers_are_losses():
    counter = audio([s for s in range(100) if s not in (10, 11, 50)])
    assert (counter.packets, counter.expected, counter.lost) == (97, 100, 3)


def test_sequence_numbers_wrap_without_loss():
    counter = audio(list(range(65500, 65600)), first_seq=65500)
    assert (counter.packets, counter.expected, counter.lost, counter.restarts) == (100, 100, 0, 0)


def test_a_late_packet_fills_its_gap_and_a_duplicate_adds_nothing_expected():
    order = [*range(10), 11, 12, 10, 13, 13, 14]
    counter = audio(order)
    assert counter.expected == 15
    assert counter.late == 1
    assert counter.lost == 0  # the duplicate is counted as received, as RFC 3550 does


def test_a_jump_is_a_new_sequence_not_thousands_of_losses():
    counter = audio([*range(50), *range(40_000, 40_050)])
    assert counter.restarts == 1
    assert (counter.expected, counter.lost) == (100, 0)


def test_video_frames_are_counted_by_timestamp_change():
    # 3 frames of 3, 1 and 2 packets, 66 ms apart
    packets = [(0, 0, 0.0), (1, 0, 0.001), (2, 0, 0.002), (3, 6000, 0.066)]
    packets += [(4, 12000, 0.133), (5, 12000, 0.134)]
    counter = feed(StreamCounter(90_000), packets)
    assert (counter.packets, counter.frames, counter.lost) == (6, 3, 0)


def test_jitter_follows_rfc_3550():
    # Every other packet arrives 10 ms late: |D| is 10 ms at each step, J tends to 10 ms.
    packets = [(s, s * FRAME, s * 0.02 + (0.01 if s % 2 else 0)) for s in range(400)]
    counter = feed(StreamCounter(AUDIO), packets)
    assert counter.jitter_ms == pytest.approx(10, rel=0.01)


def test_jitter_grows_by_a_sixteenth_of_each_deviation():
    packets = [(0, 0, 0.0), (1, FRAME, 0.02 + 0.016)]  # one packet 16 ms late
    counter = feed(StreamCounter(AUDIO), packets)
    assert counter.jitter_ms == pytest.approx(1.0)


def test_jitter_ignores_the_timestamp_wrap_and_dtx_silences():
    start = 2**32 - 5 * FRAME
    # DTX: a packet every 400 ms (20 frames), sequence numbers still consecutive
    packets = [(s, (start + s * 20 * FRAME) % 2**32, s * 0.4) for s in range(20)]
    counter = feed(StreamCounter(AUDIO), packets)
    assert counter.jitter_ms == pytest.approx(0, abs=1e-6)
    assert (counter.frames, counter.lost) == (20, 0)


def test_totals_add_and_subtract():
    first, second = audio([0, 1, 3]).totals(), audio(list(range(10))).totals()
    total = StreamTotals()
    total += first
    total += second
    assert (total.packets, total.expected, total.lost) == (13, 14, 1)
    assert total.minus(first) == second
