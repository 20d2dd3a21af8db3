"""A bounded jitter buffer for pushed PCM (a WebSocket client, a browser's microphone).

Samples arrive in bursts at whatever rate the network allows; a clocked reader takes a
fixed number every 20 ms. Playback starts once `target` samples are buffered (absorbing
arrival jitter), an underrun returns silence (the mouth closes; the picture goes on) and
waits for the target again, and more than `capacity` samples drops the oldest.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class JitterBuffer:
    """Thread-safe FIFO of float32 mono samples at one rate with prefill and a hard bound."""

    def __init__(self, target_samples: int, capacity_samples: int) -> None:
        self.target = max(0, int(target_samples))
        self.capacity = max(self.target + 1, int(capacity_samples))
        self._blocks: deque[np.ndarray] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._playing = False
        self._flushing = False
        self.underruns = 0
        self.dropped_samples = 0
        self.received_samples = 0
        self.played_samples = 0

    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32).reshape(-1)
        if not len(x):
            return
        with self._lock:
            self._blocks.append(x)
            self._size += len(x)
            self.received_samples += len(x)
            while self._size > self.capacity:
                over = self._size - self.capacity
                head = self._blocks[0]
                if len(head) <= over:
                    self._blocks.popleft()
                    self._size -= len(head)
                    self.dropped_samples += len(head)
                else:
                    self._blocks[0] = head[over:]
                    self._size -= over
                    self.dropped_samples += over

    def pull(self, n: int) -> np.ndarray | None:
        """`n` samples, or None when not playing (prefilling, or run dry: an underrun)."""
        with self._lock:
            if not self._playing:
                if self._size == 0 or self._size < self.target:
                    return None
                self._playing = True
            out = np.zeros(n, np.float32)
            got = 0
            while got < n and self._blocks:
                head = self._blocks[0]
                k = min(n - got, len(head))
                out[got : got + k] = head[:k]
                if k == len(head):
                    self._blocks.popleft()
                else:
                    self._blocks[0] = head[k:]
                self._size -= k
                got += k
            self.played_samples += got
            if self._size == 0:  # ran dry: an underrun, unless the sender said it was done
                self._playing = False
                if not self._flushing:
                    self.underruns += 1
                self._flushing = False
            return out if got else None

    def flush(self) -> None:
        """The sender is done: play what is buffered even below the target."""
        with self._lock:
            self._playing = self._size > 0
            self._flushing = self._playing

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
            self._size = 0
            self._playing = False
            self._flushing = False

    def __len__(self) -> int:
        with self._lock:
            return self._size
