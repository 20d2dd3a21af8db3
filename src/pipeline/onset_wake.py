"""Waking the live animate stage when the audio mouth starts to open, instead of polling for it.

The audio-driven live loop renders a frame at once when a speech onset arrives between two
ticks. It used to look for one every 4 ms: 250 wake-ups a second of the animate thread, each a
timed wait and a history look-up (about 0.01 of a core, measured). Here the audio thread, which
knows when its mouth crosses the opening threshold, sets an event; the animate thread sleeps on
it until the next tick. A mouth source without block listeners keeps the polling.

A file input with no one else to hand blocks to on time runs ahead (src/audio/driver.py): its
shapes are in the history before they are due and no block arrives per hop. The listener is
registered as one that can do without blocks then, and `wait` asks the source when the next
opening is due (`next_opening`) and wakes at that instant: the same frame, never later.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class OnsetWake:
    """`wait(timeout)` returns early when the audio mouth has started to open since `arm()`."""

    def __init__(self, mouth: Any, threshold: float) -> None:
        self.mouth = mouth
        self.threshold = threshold
        self._event = threading.Event()
        self._open = False
        self._next_opening = getattr(mouth, "next_opening", None)
        if self._next_opening is not None:
            mouth.add_block_listener(self._on_block, in_time=False)
        else:
            mouth.add_block_listener(self._on_block)

    @classmethod
    def attach(cls, mouth: Any, threshold: float) -> OnsetWake | None:
        """An OnsetWake on `mouth`, or None when it cannot tell (no block listeners: poll instead)."""
        if mouth is None or not callable(getattr(mouth, "add_block_listener", None)):
            return None
        return cls(mouth, threshold)

    def _on_block(self, block: Any) -> None:
        opening = self.mouth.mouth_at(block.end_ts).open > self.threshold
        if opening and not self._open:
            self._event.set()
        self._open = opening

    def arm(self) -> None:
        """Forget earlier onsets: call before checking the mouth, then `wait`."""
        self._event.clear()

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` s, or until an opening that is already known is due; True when an
        onset delivered by a block woke it (the caller looks at the mouth either way)."""
        if self._next_opening is not None:
            now = time.monotonic()
            due = self._next_opening(now, now + timeout, self.threshold)
            if due is not None:
                timeout = due - now
        return self._event.wait(max(0.0, timeout))

    def wake(self) -> None:
        """Wake a waiting loop now (on stop)."""
        self._event.set()
