"""One speaker's audio on its way to captions: how loud they are, and, while they hold a
recognition slot, the thread that feeds their audio to the speech engine."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from visio.transcripts.capture import speaker_label

if TYPE_CHECKING:  # the speech engine loads on first use only
    from visio.speech.streaming import CaptionStream, CaptionUpdate, StreamingEngine

log = logging.getLogger(__name__)
SAMPLE_RATE = 16_000
VOICE_LEVEL = 0.01  # RMS of a 20 ms frame above this counts as voice (about -40 dBFS)
ACTIVE_HOLD_S = 1.5  # still "talking" this long after the last voiced frame
MAX_BACKLOG = 400  # 8 s of 20 ms chunks: a thread that far behind drops audio
PREROLL_CHUNKS = 50  # ~1 s kept while not recognising: speech starts before its slot does

Updates = Callable[["Speaker", "list[CaptionUpdate]"], None]


class Speaker:
    def __init__(self, participant_id: str, name: str, target: str, guest: bool = False) -> None:
        self.participant_id = participant_id
        self.name = name
        self.guest = guest
        self.target = target  # camera | screen
        self.level = 0.0  # smoothed RMS
        self.voiced_at = 0.0  # time.monotonic() of the last voiced frame
        self.started_talking_at = 0.0
        self.captioned: bool | None = None  # None: never talked yet
        self._queue: queue.Queue[np.ndarray | None] | None = None
        self._thread: threading.Thread | None = None
        self.stream_started_at = 0.0  # wall-clock time of the stream's sample 0
        self._preroll: deque[np.ndarray] = deque(maxlen=PREROLL_CHUNKS)

    @property
    def label(self) -> str:
        return speaker_label(self.name, self.guest, self.target)

    @property
    def talking(self) -> bool:
        return time.monotonic() - self.voiced_at < ACTIVE_HOLD_S

    @property
    def recognising(self) -> bool:
        return self._thread is not None

    def hear(self, samples: np.ndarray) -> None:
        """Audio from the network (event loop thread)."""
        rms = float(np.sqrt(np.mean(samples * samples))) if len(samples) else 0.0
        self.level = 0.8 * self.level + 0.2 * rms
        if rms > VOICE_LEVEL:
            if not self.talking:
                self.started_talking_at = time.monotonic()
            self.voiced_at = time.monotonic()
        if self._queue is None:
            self._preroll.append(samples)
        elif self._queue.qsize() > MAX_BACKLOG:
            log.warning("captions fall behind; audio dropped", extra={"speaker": self.label})
        else:
            self._queue.put(samples)

    def start(self, engine: StreamingEngine, language: str | None, on_updates: Updates) -> None:
        """Take a recognition slot: a thread of its own feeds the engine from now on."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._queue = queue.Queue()
        buffered = sum(len(chunk) for chunk in self._preroll)
        self.stream_started_at = time.time() - buffered / SAMPLE_RATE
        while self._preroll:
            self._queue.put(self._preroll.popleft())
        self._thread = threading.Thread(
            target=self._run,
            args=(engine, language, self._queue, loop, on_updates),
            name=f"captions-{self.participant_id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> threading.Thread | None:
        """Give the slot back: the current utterance is finished and the thread ends."""
        thread, self._thread = self._thread, None
        if self._queue is not None:
            self._queue.put(None)
            self._queue = None
        return thread

    def _run(
        self,
        engine: StreamingEngine,
        language: str | None,
        chunks: queue.Queue[np.ndarray | None],
        loop: asyncio.AbstractEventLoop,
        on_updates: Updates,
    ) -> None:
        try:
            stream: CaptionStream = engine.open_stream(language)
            ended = False
            while not ended:
                audio, ended = _take_all(chunks)
                if len(audio):
                    updates = stream.accept(audio)
                    if updates:
                        loop.call_soon_threadsafe(on_updates, self, updates)
            updates = stream.close()
            if updates:
                loop.call_soon_threadsafe(on_updates, self, updates)
        except RuntimeError as exc:  # the loop closed under us: the meeting is gone
            log.debug("captions thread ended", extra={"error": str(exc)})
        except Exception:
            log.exception("captions thread failed", extra={"speaker": self.label})


def _take_all(chunks: queue.Queue[np.ndarray | None]) -> tuple[np.ndarray, bool]:
    """Everything queued (waiting for at least one chunk), and whether the end came.

    One engine call for all of it: a thread that fell behind catches up in one decode.
    """
    first = chunks.get()
    if first is None:
        return np.zeros(0, dtype=np.float32), True
    pending = [first]
    while True:
        try:
            more = chunks.get_nowait()
        except queue.Empty:
            return np.concatenate(pending), False
        if more is None:
            return np.concatenate(pending), True
        pending.append(more)
