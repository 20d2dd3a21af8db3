"""Bounded buffers between pipeline stages.

`newest` mode (live): `put` never blocks; when full the oldest item is dropped.
`get` returns the newest item and drops everything older. Both kinds of drop
are counted. `fifo` mode (live consumers that want every frame, such as a file
being recorded): `put` never blocks and drops the oldest when full, `get` is
FIFO. `lossless` mode (offline render): `put` blocks while full, `get` is FIFO,
nothing is ever dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

Mode = Literal["newest", "fifo", "lossless"]


class BufferClosed(Exception):
    """Raised by `get` once the producer has closed the buffer and it is empty."""


class RingBuffer(Generic[T]):
    def __init__(self, capacity: int, mode: Mode = "newest", name: str = "buffer") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        if mode not in ("newest", "fifo", "lossless"):
            raise ValueError(f"mode must be 'newest', 'fifo' or 'lossless', got {mode!r}")
        self.name = name
        self.capacity = capacity
        self.mode: Mode = mode
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.put_count = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Add an item. Returns False if the buffer is closed (or, lossless, on timeout)."""
        with self._cond:
            if self._closed:
                return False
            if self.mode == "lossless":
                if not self._cond.wait_for(lambda: len(self._items) < self.capacity or self._closed, timeout):
                    return False
                if self._closed:
                    return False
            elif len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.put_count += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item (newest mode) or the oldest (lossless); None on timeout.

        Raises BufferClosed when the buffer is closed and empty.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if not self._items:
                raise BufferClosed(self.name)
            if self.mode == "newest":
                item = self._items.pop()
                self.dropped += len(self._items)
                self._items.clear()
            else:
                item = self._items.popleft()
            self._cond.notify_all()
            return item

    def get_batch(self, max_items: int, timeout: float | None = None) -> list[T]:
        """Up to `max_items` in order (lossless) once at least one is there; [] on timeout.

        In newest mode this is the same as a one-item `get`.
        """
        if self.mode == "newest" or max_items <= 1:
            item = self.get(timeout)
            return [] if item is None else [item]
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return []
            if not self._items:
                raise BufferClosed(self.name)
            # Wait briefly for a full batch unless the producer has finished.
            want = min(max_items, self.capacity)
            self._cond.wait_for(lambda: len(self._items) >= want or self._closed, 0.05)
            n = min(max_items, len(self._items))
            batch = [self._items.popleft() for _ in range(n)]
            self._cond.notify_all()
            return batch

    def close(self) -> None:
        """No more items will be put; readers drain what is left, then get BufferClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._items.clear()
            self._cond.notify_all()
