"""Per-stage metrics: fps, processing time percentiles, drops, queue depth, latency.

Readable at any time from any thread (`snapshot()`); the pipeline logs them once
a second at debug level.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

WINDOW = 600  # samples kept for percentiles


def percentiles(values: list[float] | np.ndarray, qs: tuple[float, ...] = (50, 95)) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return {f"p{int(q)}": float("nan") for q in qs}
    return {f"p{int(q)}": round(float(np.percentile(arr, q)), 3) for q in qs}


class StageMetrics:
    """Counters for one stage (or output). Thread-safe."""

    def __init__(self, name: str, depth: Callable[[], int] | None = None) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._durations_ms: deque[float] = deque(maxlen=WINDOW)
        self._done_ts: deque[float] = deque(maxlen=WINDOW)
        self._latency_ms: deque[float] = deque(maxlen=WINDOW)
        self.frames = 0
        self.errors = 0
        self.skipped = 0
        self.extra_drops = 0
        self._depth = depth
        self._drop_sources: list[Callable[[], int]] = []

    def add_drop_source(self, fn: Callable[[], int]) -> None:
        self._drop_sources.append(fn)

    def record(self, duration_s: float, n: int = 1, latency_s: float | None = None) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames += n
            per_item = duration_s * 1000.0 / max(n, 1)
            for _ in range(n):
                self._durations_ms.append(per_item)
                self._done_ts.append(now)
            if latency_s is not None:
                self._latency_ms.append(latency_s * 1000.0)

    def record_latency(self, latency_s: float) -> None:
        with self._lock:
            self._latency_ms.append(latency_s * 1000.0)

    def count_error(self) -> None:
        with self._lock:
            self.errors += 1

    def count_skipped(self, n: int = 1) -> None:
        with self._lock:
            self.skipped += n

    @property
    def dropped(self) -> int:
        return self.extra_drops + sum(fn() for fn in self._drop_sources)

    def fps(self, window_s: float = 2.0) -> float:
        with self._lock:
            if len(self._done_ts) < 2:
                return 0.0
            now = time.monotonic()
            recent = [t for t in self._done_ts if now - t <= window_s]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def durations_ms(self) -> list[float]:
        with self._lock:
            return list(self._durations_ms)

    def latencies_ms(self) -> list[float]:
        with self._lock:
            return list(self._latency_ms)

    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {
            "fps": round(self.fps(), 2),
            "ms": percentiles(self.durations_ms()),
            "frames": self.frames,
            "dropped": self.dropped,
            "errors": self.errors,
            "skipped": self.skipped,
            "queue_depth": self._depth() if self._depth else 0,
        }
        lat = self.latencies_ms()
        if lat:
            snap["latency_ms"] = percentiles(lat, (50, 95, 99))
        return snap


class PipelineMetrics:
    """All stages' metrics by name, in pipeline order."""

    def __init__(self) -> None:
        self._stages: dict[str, StageMetrics] = {}
        self._lock = threading.Lock()
        self.started_at = time.monotonic()

    def stage(self, name: str, depth: Callable[[], int] | None = None) -> StageMetrics:
        with self._lock:
            if name not in self._stages:
                self._stages[name] = StageMetrics(name, depth)
            elif depth is not None:  # created earlier by a counter (e.g. skipped frames): its queue is known now
                self._stages[name]._depth = depth
            return self._stages[name]

    def get(self, name: str) -> StageMetrics | None:
        return self._stages.get(name)

    def names(self) -> list[str]:
        return list(self._stages)

    def snapshot(self) -> dict[str, Any]:
        return {name: m.snapshot() for name, m in list(self._stages.items())}

    def summary_line(self) -> str:
        parts = []
        for name, m in list(self._stages.items()):
            ms = percentiles(m.durations_ms())
            parts.append(f"{name}: {m.fps():.1f}fps {ms['p50']:.1f}/{ms['p95']:.1f}ms drop={m.dropped}")
        return " | ".join(parts)
