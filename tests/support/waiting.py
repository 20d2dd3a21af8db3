"""Waiting for something that happens eventually: tests assert that it happens, not how fast."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout_s: float, poll_s: float = 0.02) -> bool:
    """True as soon as `predicate()` is truthy; False if it is still falsy after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)
