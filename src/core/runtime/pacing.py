"""Pacing a loop to a target rate without drift (like pyvirtualcam's sleep_until_next_frame)."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Ticks at `fps` against absolute deadlines, so per-iteration jitter never accumulates.

    If the loop falls more than one period behind, the schedule is reset to now
    instead of bursting to catch up.
    """

    def __init__(self, fps: float, stop: threading.Event | None = None) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.period = 1.0 / fps
        self._next: float | None = None
        self._stop = stop or threading.Event()
        self.late_ticks = 0

    def reset(self) -> None:
        self._next = None

    def next_deadline(self) -> float:
        """When the next tick is due (now, if the pacer has not started)."""
        return time.monotonic() if self._next is None else self._next + self.period

    def rephase(self, t: float) -> None:
        """Make `t` the current tick: the schedule continues one period after it."""
        self._next = t

    def wait(self) -> float:
        """Sleep until the next tick; returns the tick's scheduled time (monotonic)."""
        now = time.monotonic()
        if self._next is None:
            self._next = now
            return now
        self._next += self.period
        delay = self._next - now
        if delay > 0:
            self._stop.wait(delay)
        elif -delay > self.period:
            self.late_ticks += 1
            self._next = time.monotonic()
        return self._next
