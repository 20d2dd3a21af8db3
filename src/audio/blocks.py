"""Audio blocks and the bounded ring buffer between audio capture and analysis.

Every block is mono float32 at the analysis rate (16 kHz) and carries
`capture_ts`: the `time.monotonic()` instant its first sample was captured (for
a file played in real time: the instant it would have been captured now).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from src.errors import CaptureError


class AudioInputError(CaptureError):
    """An audio input (microphone or file) that cannot be opened or decoded."""


@dataclass(slots=True)
class AudioBlock:
    """About 10 ms of mono audio at the analysis rate."""

    samples: np.ndarray  # (n,) float32 in [-1, 1]
    capture_ts: float  # time.monotonic() of samples[0]
    index: int  # 0, 1, 2, ... in stream order
    sample_rate_hz: int = 16000
    # When the samples reached the capture callback (monotonic): (offset, ts) pairs, in order;
    # samples[offset:] arrived at ts or later. Empty for files (nothing "arrives").
    arrivals: list[tuple[int, float]] = field(default_factory=list)
    media_time_s: float | None = None  # position in a file (None for a microphone)

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz

    @property
    def end_ts(self) -> float:
        """Capture time just after the last sample."""
        return self.capture_ts + self.duration_s

    @property
    def arrival_ts(self) -> float | None:
        """When the whole block had reached the capture callback (None for files)."""
        return self.arrivals[-1][1] if self.arrivals else None

    def arrival_of(self, offset: int) -> float | None:
        """When sample `offset` reached the capture callback."""
        found: float | None = None
        for start, ts in self.arrivals:
            if start > offset:
                break
            found = ts
        if found is None and self.arrivals:
            found = self.arrivals[0][1]
        return found


class AudioRing:
    """Bounded FIFO of blocks: `put` never blocks (the oldest block is dropped and counted
    when full), `get` waits up to a timeout. Writer and reader may be different threads."""

    def __init__(self, capacity: int, name: str = "audio-ring") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self._items: deque[AudioBlock] = deque()
        self._cond = threading.Condition()
        self.dropped = 0
        self.put_count = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def put(self, block: AudioBlock) -> None:
        with self._cond:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(block)
            self.put_count += 1
            self._cond.notify()

    def get(self, timeout: float | None = None) -> AudioBlock | None:
        """The oldest block, or None after `timeout` seconds with nothing to read."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._items), timeout):
                return None
            return self._items.popleft()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
