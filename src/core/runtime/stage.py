"""A pipeline stage: one named thread that reads a buffer, processes, writes buffers.

Stages are started and stopped by their owner (the pipeline): stopped through a
shared Event, joined with a timeout, never left running. An exception raised
while processing one item is logged (once per kind) and counted; the stream
goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from src.core.runtime.log_once import ErrorTally
from src.core.runtime.metrics import StageMetrics
from src.core.runtime.ring_buffer import BufferClosed, RingBuffer
from src.core.runtime.threads import name_os_thread

log = logging.getLogger(__name__)

POLL_S = 0.05  # how often a waiting stage checks the stop event


class EndOfStream(Exception):
    """A producer raises this when its source is exhausted."""


class StageThread:
    """Runs `fn` in a named thread.

    Producer (no inbox): `fn()` returns an item (or None to produce nothing this
    time) and raises EndOfStream when done. Processor: `fn(items)` gets a list of
    1..batch_size items and returns a list of results (possibly empty).
    Results go to every outbox. When the stage ends it closes its outboxes, so
    end of stream flows downstream.
    """

    def __init__(
        self,
        name: str,
        fn: Callable[..., Any],
        metrics: StageMetrics,
        stop: threading.Event,
        inbox: RingBuffer[Any] | None = None,
        outboxes: Sequence[RingBuffer[Any]] = (),
        batch_size: int = 1,
        latency_of: Callable[[Any], float | None] | None = None,
        on_exit: Callable[[], None] | None = None,
        self_timed: bool = False,
    ) -> None:
        self.name = name
        self._fn = fn
        self.metrics = metrics
        self._stop = stop
        self.inbox = inbox
        self.outboxes = list(outboxes)
        self.batch_size = batch_size
        self._latency_of = latency_of
        self._on_exit = on_exit
        self._self_timed = self_timed  # fn records its own busy time (its waits are not processing)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._errors = ErrorTally(log, f"stage {name}: %s (the stream goes on; further identical errors are only counted)")
        self.exception: BaseException | None = None
        self.finished = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def first_error(self) -> str | None:
        """The first error an item raised (`Type: message`), if any."""
        return self._errors.first

    def _report(self, exc: Exception) -> None:
        self.metrics.count_error()
        self._errors.report(exc)

    def _emit(self, results: Sequence[Any]) -> None:
        for result in results:
            if self._latency_of is not None:
                lat = self._latency_of(result)
                if lat is not None:
                    self.metrics.record_latency(lat)
            for box in self.outboxes:
                box.put(result)

    def _run(self) -> None:
        name_os_thread()
        try:
            while not self._stop.is_set():
                if self.inbox is None:
                    t0 = time.perf_counter()
                    try:
                        item = self._fn()
                    except EndOfStream:
                        break
                    except Exception as exc:  # noqa: BLE001 - one bad frame never ends a stream
                        self._report(exc)
                        continue
                    if item is None:
                        continue
                    if not self._self_timed:
                        self.metrics.record(time.perf_counter() - t0)
                    self._emit([item])
                    continue
                try:
                    items = self.inbox.get_batch(self.batch_size, timeout=POLL_S)
                except BufferClosed:
                    break
                if not items:
                    continue
                t0 = time.perf_counter()
                try:
                    results = self._fn(items)
                except EndOfStream:
                    break
                except Exception as exc:  # noqa: BLE001 - one bad frame never ends a stream
                    self._report(exc)
                    continue
                if not self._self_timed:
                    self.metrics.record(time.perf_counter() - t0, n=len(items))
                self._emit(results)
        except BaseException as exc:
            self.exception = exc
            log.exception("stage %s failed", self.name)
        finally:
            for box in self.outboxes:
                box.close()
            if self._on_exit is not None:
                try:
                    self._on_exit()
                except Exception:
                    log.exception("stage %s: cleanup failed", self.name)
            self.finished.set()
