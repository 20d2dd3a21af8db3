"""Waking the live animate stage when the audio mouth starts to open, instead of polling for it.

The audio-driven live loop renders a frame at once when a speech onset arrives between two
ticks. It used to look for one every 4 ms: 250 wake-ups a second of the animate thread, each a
timed wait and a history look-up (about 0.01 of a core, measured). Here the audio thread, which
knows when its mouth crosses the opening threshold, sets an event; the animate thread sleeps on
it until the next tick. A mouth source without block listeners keeps the polling.
"""

from __future__ import annotations

import threading
from typing import Any


class OnsetWake:
    """`wait(timeout)` returns early when the audio mouth has started to open since `arm()`."""

    def __init__(self, mouth: Any, threshold: float) -> None:
        self.mouth = mouth
        self.threshold = threshold
        self._event = threading.Event()
        self._open = False
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
        """Sleep up to `timeout` s; True when an onset woke it."""
        return self._event.wait(max(0.0, timeout))

    def wake(self) -> None:
        """Wake a waiting loop now (on stop)."""
        self._event.set()
