"""Cross-session batching: one model worker per neural network, taking rows from every session.

A batched animator (`lipsync-unet`, `liveportrait`) calls its ONNX models through
`OnnxModel.run(feeds)` with the batch on axis 0. `ModelBatchers.share(animator)` swaps
each of the animator's `OnnxModel`s for a `BatchingModel` bound to one `BatchWorker`
per model file: the first session's loaded model serves everyone (later sessions' copies
are closed), and each worker joins the calls that arrive within `wait_s` of the first
(up to `max_rows` rows: the auto-tuned `pipeline.batch_size`, or `serve.max_sessions`
when it was not tuned) into one run, then hands every caller its own rows back.
`meshwarp` has no ONNX model and is left alone. Ray Serve's `@serve.batch` does the
same across processes (the next engine).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.animation.onnx_session import OnnxModel
from src.core.runtime.threads import name_os_thread

log = logging.getLogger(__name__)

POLL_S = 0.1


@dataclass
class _Request:
    feeds: dict[str, np.ndarray]
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


class BatchWorker:
    """Runs one model for many callers, in batches (see the module doc)."""

    def __init__(self, model: OnnxModel, max_rows: int, wait_s: float) -> None:
        self.model = model
        self.max_rows = max(1, max_rows)
        self.wait_s = max(0.0, wait_s)
        self.sizes: Counter[int] = Counter()  # rows per run -> runs
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"batch-{model.name}", daemon=True)
        self._thread.start()

    def submit(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._stop.is_set():
            raise RuntimeError(f"batch worker for {self.model.name} is stopped")
        rows = int(next(iter(feeds.values())).shape[0]) if feeds else 1
        req = _Request({k: np.asarray(v) for k, v in feeds.items()}, rows)
        self._queue.put(req)
        req.done.wait()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    def _collect(self, first: _Request) -> list[_Request]:
        batch = [first]
        rows = first.rows
        deadline = time.monotonic() + self.wait_s
        while rows < self.max_rows:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                req = self._queue.get(timeout=left)
            except queue.Empty:
                break
            batch.append(req)
            rows += req.rows
        return batch

    @staticmethod
    def _signature(req: _Request) -> tuple[Any, ...]:
        return tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in req.feeds.items()))

    def _run(self) -> None:
        name_os_thread()
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            batch = self._collect(first)
            groups: dict[tuple[Any, ...], list[_Request]] = {}
            for req in batch:  # rows join only with rows of the same shapes
                groups.setdefault(self._signature(req), []).append(req)
            for reqs in groups.values():
                self._run_group(reqs)

    def _run_group(self, reqs: list[_Request]) -> None:
        try:
            feeds = {k: np.concatenate([r.feeds[k] for r in reqs]) for k in reqs[0].feeds}
            out = self.model.run(feeds)
            self.sizes[sum(r.rows for r in reqs)] += 1
            start = 0
            for r in reqs:
                r.result = {k: v[start : start + r.rows] for k, v in out.items()}
                start += r.rows
        except BaseException as exc:  # noqa: BLE001 - every caller gets the error, the worker goes on
            for r in reqs:
                r.error = exc
        for r in reqs:
            r.done.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        while True:
            try:
                req = self._queue.get_nowait()
            except queue.Empty:
                break
            req.error = RuntimeError("batch worker stopped")
            req.done.set()


class BatchingModel:
    """Stands in for an `OnnxModel` inside one session's animator: `run` goes through the shared worker."""

    def __init__(self, worker: BatchWorker) -> None:
        self._worker = worker

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self._worker.submit(dict(feeds))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._worker.model, name)


class ModelBatchers:
    """The workers of one server, keyed by model file (see the module doc)."""

    def __init__(self, max_rows: int, wait_s: float) -> None:
        self.max_rows = max_rows
        self.wait_s = wait_s
        self.workers: dict[tuple[str, str], BatchWorker] = {}
        self._lock = threading.Lock()

    def _shared(self, model: OnnxModel) -> BatchingModel:
        key = (str(model.path), model.name)
        with self._lock:
            worker = self.workers.get(key)
            if worker is None:
                worker = self.workers[key] = BatchWorker(model, self.max_rows, self.wait_s)
                log.info("cross-session batching for %s: up to %d rows within %.0f ms", model.name, self.max_rows,
                         self.wait_s * 1000)
        if worker.model is not model:
            model.close()  # this session's own copy is not needed
        return BatchingModel(worker)

    def share(self, animator: Any) -> int:
        """Swap the animator's ONNX models (also inside a fallback wrapper or a models holder) for shared,
        batching ones; returns how many were swapped."""
        swapped = 0
        seen: set[int] = set()

        def walk(obj: Any, depth: int) -> None:
            nonlocal swapped
            if depth > 3 or id(obj) in seen or not hasattr(obj, "__dict__"):
                return
            seen.add(id(obj))
            for name, value in list(vars(obj).items()):
                if isinstance(value, OnnxModel):
                    setattr(obj, name, self._shared(value))
                    swapped += 1
                elif isinstance(value, dict):
                    for k, v in list(value.items()):
                        if isinstance(v, OnnxModel):
                            value[k] = self._shared(v)
                            swapped += 1
                elif type(value).__module__.startswith("src.animation"):
                    walk(value, depth + 1)

        walk(animator, 0)
        return swapped

    def batch_sizes(self) -> dict[str, dict[int, int]]:
        with self._lock:
            return {w.model.name: dict(w.sizes) for w in self.workers.values()}

    def close(self) -> None:
        with self._lock:
            workers, self.workers = list(self.workers.values()), {}
        for w in workers:
            w.stop()
