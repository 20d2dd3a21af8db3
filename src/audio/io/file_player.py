"""A file played as if it were a live input: blocks stamped and delivered on the monotonic clock.

Block n is stamped `t0 + n * block_s` and handed over once it has "finished
being captured" (`t0 + (n + 1) * block_s`). Deadlines are absolute, so sleep
jitter never accumulates: the lag at minute 10 is the lag at minute 1. After a
stall longer than `REANCHOR_S` (a suspended machine) the timeline restarts from
now instead of bursting to catch up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from src.audio.io.blocks import AudioBlock
from src.audio.io.file_source import AudioFileReader

log = logging.getLogger(__name__)

REANCHOR_S = 0.5


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep_until(self, t: float, stop: threading.Event) -> None: ...


class MonotonicClock:
    """time.monotonic(), sleeping on the stop event so a stop interrupts the wait."""

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float, stop: threading.Event) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            stop.wait(delay)


class FilePlayer:
    """Blocks of an audio file, paced in real time (or as fast as decoding when `realtime` is False)."""

    def __init__(
        self,
        path: str | Path,
        sample_rate_hz: int = 16000,
        block_ms: float = 10.0,
        realtime: bool = True,
        loop: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.reader = AudioFileReader(path, sample_rate_hz)  # raises AudioInputError for bad files
        self.path = self.reader.path
        self.rate = sample_rate_hz
        self.block_len = max(1, round(sample_rate_hz * block_ms / 1000.0))
        self.block_s = self.block_len / sample_rate_hz
        self.realtime = realtime
        self.loop = loop
        self.clock = clock or MonotonicClock()
        self.duration_s = self.reader.duration_s
        self._blocks: Iterator[np.ndarray] | None = None
        self._ahead: deque[tuple[np.ndarray, bool]] = deque()  # read ahead by `peek`: (samples, starts a pass)
        self._t0 = 0.0
        self._n = 0  # blocks delivered on this timeline
        self._media_n = 0  # samples into the current pass of the file
        self.passes = 0
        self.finished = False
        self.reanchors = 0
        self.lag_ms: deque[float] = deque(maxlen=2000)  # delivery time minus due time

    def start(self) -> None:
        self._t0 = self.clock.now()
        self._n = 0
        self._media_n = 0
        self._blocks = self.reader.blocks(self.block_s)
        self._ahead.clear()
        self.passes = 1

    @property
    def t0(self) -> float:
        return self._t0

    def _fetch(self) -> tuple[np.ndarray, bool] | None:
        """The next block's samples (padded to a whole hop) and whether it starts a new pass of the file."""
        assert self._blocks is not None, "start() first"
        new_pass = False
        for _ in range(2):
            x = next(self._blocks, None)
            if x is not None:
                if len(x) < self.block_len:  # the file's last partial block: pad, so every hop is the same length
                    x = np.concatenate([x, np.zeros(self.block_len - len(x), np.float32)])
                return x, new_pass
            if not self.loop:
                return None
            log.debug("%s: looping", self.reader.label)
            self._blocks = self.reader.blocks(self.block_s)
            new_pass = True
        return None

    def _next_samples(self) -> np.ndarray | None:
        item = self._ahead.popleft() if self._ahead else self._fetch()
        if item is None:
            return None
        x, new_pass = item
        if new_pass:
            self._media_n = 0
            self.passes += 1
        return x

    def peek(self, n: int) -> list[np.ndarray]:
        """The samples of the next `n` blocks (fewer at the end of the file), not yet delivered: `read`
        still hands them over one by one when due. For analysing a file ahead in batches."""
        while len(self._ahead) < n:
            item = self._fetch()
            if item is None:
                break
            self._ahead.append(item)
        return [x for x, _ in list(self._ahead)[:n]]

    def read(self, stop: threading.Event) -> list[AudioBlock]:
        """The next block once it is due ([] at the end of the file or when stopped)."""
        x = self._next_samples()
        if x is None:
            self.finished = True
            return []
        capture_ts = self._t0 + self._n * self.block_s
        if self.realtime:
            due = capture_ts + self.block_s
            self.clock.sleep_until(due, stop)
            now = self.clock.now()
            if stop.is_set() and now < due:
                return []
            late = now - due
            if late > REANCHOR_S:
                self.reanchors += 1
                log.info("%s: playback stalled %.1f s; restarting its clock from now", self.reader.label, late)
                self._t0 += late
                capture_ts += late
                late = 0.0
            self.lag_ms.append(late * 1000.0)
        block = AudioBlock(x, capture_ts, self._n, self.rate, media_time_s=self._media_n / self.rate)
        self._n += 1
        self._media_n += len(x)
        return [block]

    def take(self, n: int, lead_s: float, stop: threading.Event) -> list[AudioBlock]:
        """The next `n` blocks (fewer at the end of the file) at once, `lead_s` before the first is
        captured: for a consumer that only needs their time stamps to be right, not their delivery
        time (the mouth history). Stamped as `read` stamps them; a stall restarts the timeline too."""
        start = self._t0 + self._n * self.block_s
        if self.realtime:
            self.clock.sleep_until(start - lead_s, stop)
            if stop.is_set():
                return []
            late = self.clock.now() - (start - lead_s)
            if late > REANCHOR_S:
                self.reanchors += 1
                log.info("%s: playback stalled %.1f s; restarting its clock from now", self.reader.label, late)
                self._t0 += late
                late = 0.0
            self.lag_ms.append(max(late, 0.0) * 1000.0)
        out = []
        for _ in range(n):
            x = self._next_samples()
            if x is None:
                self.finished = True
                break
            out.append(AudioBlock(x, self._t0 + self._n * self.block_s, self._n, self.rate, media_time_s=self._media_n / self.rate))
            self._n += 1
            self._media_n += len(x)
        return out
