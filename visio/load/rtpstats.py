"""RTP accounting without decoding: packets, frames, loss and jitter of one received stream.

Loss comes from sequence numbers (RFC 3550, A.1 and A.3): expected = highest extended
sequence number - first + 1, lost = expected - received. Jitter is RFC 3550's
interarrival jitter (A.8), computed once per frame (when the RTP timestamp changes), as
browsers do: the packets of one video frame leave together and say nothing about the
network's variation.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_DROPOUT = 3000  # a forward jump larger than this is a new sequence, not loss
MAX_MISORDER = 100  # a packet at most this far behind is late, not a new sequence


@dataclass
class StreamTotals:
    """What a stream (or a sum of streams) received; all counts are cumulative."""

    packets: int = 0
    bytes: int = 0
    frames: int = 0
    expected: int = 0

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    def __iadd__(self, other: StreamTotals) -> StreamTotals:
        self.packets += other.packets
        self.bytes += other.bytes
        self.frames += other.frames
        self.expected += other.expected
        return self

    def minus(self, before: StreamTotals) -> StreamTotals:
        return StreamTotals(
            self.packets - before.packets,
            self.bytes - before.bytes,
            self.frames - before.frames,
            self.expected - before.expected,
        )


class StreamCounter:
    """One RTP stream (one SSRC) as it arrives."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.packets = 0
        self.bytes = 0
        self.frames = 0
        self.late = 0
        self.restarts = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._expected_before = 0  # expected packets of the sequences before a restart
        self._base = 0  # extended sequence number of the first packet of this sequence
        self._max = -1  # highest extended sequence number; -1 before the first packet
        self._last_timestamp = 0
        self._timestamp = 0  # the last timestamp, unwrapped past 2^32
        self._last_transit = 0.0
        self._jitter = 0.0  # in RTP timestamp units

    def add(self, sequence: int, timestamp: int, size: int, arrival: float) -> None:
        """Count one packet: its sequence number, RTP timestamp, size, arrival (seconds)."""
        self.packets += 1
        self.bytes += size
        self.last_at = arrival
        if self._max < 0:
            self.first_at = arrival
            self._start(sequence, timestamp, arrival)
            return
        delta = (sequence - self._max) % SEQ_MOD
        if delta == 0:
            return  # a duplicate
        if delta < MAX_DROPOUT:
            self._max += delta
            self._in_order(timestamp, arrival)
        elif delta > SEQ_MOD - MAX_MISORDER:
            self.late += 1
        else:
            self._expected_before += self._max - self._base + 1
            self.restarts += 1
            self._start(sequence, timestamp, arrival)

    def _start(self, sequence: int, timestamp: int, arrival: float) -> None:
        self._base = self._max = sequence
        self.frames += 1
        self._last_timestamp = self._timestamp = timestamp
        self._last_transit = arrival * self.clock_rate - timestamp

    def _in_order(self, timestamp: int, arrival: float) -> None:
        if timestamp == self._last_timestamp:
            return  # another packet of the same frame
        self.frames += 1
        step = (timestamp - self._last_timestamp) % TS_MOD  # the timestamp wraps at 2^32
        if step >= TS_MOD // 2:
            step -= TS_MOD
        self._timestamp += step
        self._last_timestamp = timestamp
        transit = arrival * self.clock_rate - self._timestamp
        self._jitter += (abs(transit - self._last_transit) - self._jitter) / 16
        self._last_transit = transit

    @property
    def expected(self) -> int:
        if self._max < 0:
            return 0
        return self._expected_before + self._max - self._base + 1

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.packets)

    @property
    def jitter_ms(self) -> float:
        return 1000.0 * self._jitter / self.clock_rate

    def totals(self) -> StreamTotals:
        return StreamTotals(self.packets, self.bytes, self.frames, self.expected)
