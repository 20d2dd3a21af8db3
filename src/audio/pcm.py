"""The audio -> output contract: a PCM source, and the one bounded PCM queue every consumer uses.

A `PcmSource` (the live audio driver: a microphone or a file playing) calls each listener with
`(capture_ts, samples)` on its audio thread: 16 kHz mono float32 blocks stamped on the monotonic
clock. A listener must return at once, so consumers hand blocks to a `PcmQueue` and read at their own pace.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

PCM_RATE_HZ = 16000

PcmListener = Callable[[float, np.ndarray], None]


@runtime_checkable
class PcmSource(Protocol):
    """Blocks of (capture_ts, float32 mono samples at `PCM_RATE_HZ`), pushed to listeners."""

    def add_pcm_listener(self, callback: PcmListener) -> None: ...

    def remove_pcm_listener(self, callback: PcmListener) -> None: ...


class PcmQueue:
    """A bounded FIFO of (capture_ts, samples) blocks, usable as a PCM listener (`queue(ts, samples)`).

    When more than `max_s` is queued, the oldest samples go (counted in `dropped_samples`); a
    partly dropped block keeps the capture time of its first remaining sample. Thread-safe: the
    audio thread pushes, one consumer reads whole blocks (`get`, `take_all`) or samples (`pop`).
    """

    def __init__(self, max_s: float = 1.0, sample_rate_hz: int = PCM_RATE_HZ) -> None:
        self.rate_hz = sample_rate_hz
        self.capacity = max(1, int(round(max_s * sample_rate_hz)))
        self._blocks: deque[tuple[float, np.ndarray]] = deque()
        self._size = 0
        self._cond = threading.Condition()
        self.dropped_samples = 0

    def __call__(self, capture_ts: float, samples: np.ndarray) -> None:
        self.push(capture_ts, samples)

    def push(self, capture_ts: float, samples: np.ndarray) -> None:
        with self._cond:
            self._blocks.append((float(capture_ts), samples))
            self._size += len(samples)
            if self._size > self.capacity:
                self._drop_locked(self._size - self.capacity)
            self._cond.notify()

    def _drop_locked(self, n: int) -> None:
        while n > 0 and self._blocks:
            ts, block = self._blocks[0]
            k = min(n, len(block))
            if k == len(block):
                self._blocks.popleft()
            else:
                self._blocks[0] = (ts + k / self.rate_hz, block[k:])
            self._size -= k
            self.dropped_samples += k
            n -= k

    def drop(self, n: int) -> None:
        """Discard up to `n` samples from the front (counted in `dropped_samples`, like an overflow)."""
        with self._cond:
            self._drop_locked(n)

    def get(self, timeout: float | None = None) -> tuple[float, np.ndarray] | None:
        """The oldest whole block, waiting up to `timeout` s for one (None if none came)."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._blocks), timeout):
                return None
            ts, x = self._blocks.popleft()
            self._size -= len(x)
            return ts, x

    def take_all(self) -> list[tuple[float, np.ndarray]]:
        """Every queued block, oldest first; the queue is left empty."""
        with self._cond:
            blocks = list(self._blocks)
            self._blocks.clear()
            self._size = 0
        return blocks

    def head_ts(self) -> float | None:
        with self._cond:
            return self._blocks[0][0] if self._blocks else None

    def pop(self, n: int) -> np.ndarray:
        """Up to `n` samples from the front (fewer if the queue runs dry)."""
        out: list[np.ndarray] = []
        with self._cond:
            while n > 0 and self._blocks:
                ts, block = self._blocks[0]
                take = block[:n]
                out.append(take)
                if len(take) == len(block):
                    self._blocks.popleft()
                else:
                    self._blocks[0] = (ts + len(take) / self.rate_hz, block[len(take) :])
                self._size -= len(take)
                n -= len(take)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def __len__(self) -> int:
        with self._cond:
            return self._size
