"""The newest item and the coroutines waiting for a newer one (one asyncio loop only).

Each item carries a rising `seq`; a consumer asks for the newest item after the one it has, so a slow
consumer skips items instead of queueing them (a viewer gets the newest frame, never a backlog).
"""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar


class Sequenced(Protocol):
    @property
    def seq(self) -> int: ...


T = TypeVar("T", bound=Sequenced)


class NewestValue(Generic[T]):
    """Holds `latest`; `next_after(seq)` waits until an item newer than `seq` exists, or raises `closed_error`."""

    closed_error: type[Exception] = RuntimeError

    def __init__(self) -> None:
        self.latest: T | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self.closed = False

    def _wake(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def set_latest(self, item: T) -> None:
        self.latest = item
        self._wake()

    async def next_after(self, seq: int) -> T:
        """The newest item with a sequence number above `seq` (waits for one)."""
        while not self.closed:
            latest = self.latest
            if latest is not None and latest.seq > seq:
                return latest
            fut = asyncio.get_running_loop().create_future()
            self._waiters.add(fut)
            try:
                await fut
            finally:
                self._waiters.discard(fut)
        raise self.closed_error(f"{type(self).__name__} closed")

    def close(self) -> None:
        self.closed = True
        self._wake()
