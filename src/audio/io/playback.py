"""Audible playback of a file input on the default output device (optional, best effort).

`write` never blocks: samples go into a bounded queue the PortAudio callback
drains (an underrun plays silence). If no output device can be opened the
player warns once and stays silent; the stream goes on.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import numpy as np

from src.audio.io.devices import _sd, stream_closed, stream_opened
from src.audio.io.resample import StreamingResampler

log = logging.getLogger(__name__)

MAX_QUEUED_S = 1.0


class AudioPlayback:
    """Plays 16 kHz mono blocks on the default output device."""

    def __init__(self, sample_rate_hz: int = 16000) -> None:
        self.in_rate = sample_rate_hz
        self._stream: Any = None
        self._chunks: deque[np.ndarray] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._resampler: StreamingResampler | None = None
        self.out_rate = 0
        self.latency_s = 0.0
        self.underruns = 0
        self.dropped = 0
        self.failed = False

    def open(self) -> bool:
        """Open the output; False (after one warning) if that is impossible."""
        try:
            sd = _sd()
            info = sd.query_devices(kind="output")
            rates = [self.in_rate, int(info.get("default_samplerate") or 48000)]
            last: Exception | None = None
            for rate in dict.fromkeys(rates):
                try:
                    stream = sd.OutputStream(samplerate=rate, channels=1, dtype="float32", latency="low", callback=self._callback)
                except Exception as exc:  # noqa: BLE001 - try the device's own rate next
                    last = exc
                    continue
                self.out_rate = int(rate)
                self._resampler = None if rate == self.in_rate else StreamingResampler(self.in_rate, int(rate))
                stream.start()
                stream_opened()
                self._stream = stream
                self.latency_s = float(stream.latency)
                log.info("playing audio on %s (%d Hz, %.0f ms output latency)", info.get("name"), rate, 1000 * self.latency_s)
                return True
            raise RuntimeError(str(last))
        except Exception as exc:  # noqa: BLE001 - playback is optional: warn once, continue silently
            self.failed = True
            log.warning("audio playback unavailable (%s); continuing without sound", str(exc).splitlines()[0][:160])
            return False

    def write(self, samples: np.ndarray) -> None:
        if self._stream is None:
            return
        x = self._resampler.process(samples) if self._resampler is not None else np.asarray(samples, np.float32)
        with self._lock:
            self._chunks.append(x)
            self._queued += len(x)
            limit = int(MAX_QUEUED_S * self.out_rate)
            while self._queued > limit and self._chunks:
                old = self._chunks.popleft()
                self._queued -= len(old)
                self.dropped += len(old)

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            while filled < frames and self._chunks:
                chunk = self._chunks[0]
                n = min(frames - filled, len(chunk))
                out[filled : filled + n] = chunk[:n]
                filled += n
                if n == len(chunk):
                    self._chunks.popleft()
                else:
                    self._chunks[0] = chunk[n:]
                self._queued -= n
        if filled < frames:
            out[filled:] = 0.0
            if filled:
                self.underruns += 1

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()
            stream.close()
        except Exception:  # noqa: BLE001 - a dead device may refuse to stop
            pass
        stream_closed()
