"""Sources fed by pushes instead of devices: the browser's camera, and the session's voice.

`PushCapture` is a `CaptureSource` whose frames are pushed (a browser's video track);
`read()` waits for the next one, so the pipeline treats it exactly like a webcam (the
same face tracker, the same idle fallback when frames stop or the face leaves).

`PushAudioStream` is a PortAudio-like input stream (what `MicCapture` opens through `PushInput`,
its `InputStreams` for a session) whose clock thread pulls 20 ms from a `Mixer` of pushed sources (a
browser's microphone, a WebSocket PCM stream, text to speech) and hands it to the
callback, silence included: the `AudioDriver` then does what it does for a microphone
(resampling, 10 ms blocks, analysis, mouth shapes, PCM listeners for the viewers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from src.capture.sources import CaptureSource
from src.core.frames import VideoFrame
from src.core.runtime.threads import name_os_thread

log = logging.getLogger(__name__)

STREAM_RATE_HZ = 48_000
TICK_S = 0.020
POLL_S = 0.05


class PushCapture(CaptureSource):
    """Frames pushed from another thread; `read()` returns the newest one not yet read."""

    name = "browser"
    live = True

    def __init__(self, fps: float = 30.0, stop_event: threading.Event | None = None) -> None:
        super().__init__()
        self.fps = fps
        self.stop_event = stop_event or threading.Event()
        self._cond = threading.Condition()
        self._latest: np.ndarray | None = None
        self._latest_ts = 0.0
        self._closed = False
        self.pushed = 0
        self.last_push = 0.0  # monotonic time of the newest frame (0: none yet)

    def push(self, image: np.ndarray, capture_ts: float | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            self._latest = image
            self._latest_ts = time.monotonic() if capture_ts is None else capture_ts
            self.pushed += 1
            self.last_push = time.monotonic()
            self.size = (image.shape[1], image.shape[0])
            self._cond.notify()

    def read(self) -> VideoFrame | None:
        """The next pushed frame; None only once closed or stopped (the pipeline's end of stream)."""
        with self._cond:
            while self._latest is None:
                if self._closed or self.stop_event.is_set():
                    return None
                self._cond.wait(POLL_S)
            image, ts, self._latest = self._latest, self._latest_ts, None
        frame = VideoFrame(image=image, capture_ts=ts, index=self.index)
        self.index += 1
        self.last_read_s = 0.0
        return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._latest = None
            self._cond.notify_all()


class PullSource(Protocol):
    def pull(self, n: int) -> np.ndarray | None:
        """`n` samples at STREAM_RATE_HZ, or None for silence."""
        ...


class Mixer:
    """Sums whatever its sources have for the next `n` samples (silence when none has anything)."""

    def __init__(self, sources: list[PullSource] | None = None) -> None:
        self.sources: list[PullSource] = list(sources or [])

    def pull(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float32)
        for src in list(self.sources):
            try:
                x = src.pull(n)
            except Exception as exc:  # noqa: BLE001 - one broken source never silences the others
                log.warning("audio source %r failed: %s", src, exc)
                continue
            if x is not None:
                out[: len(x)] += x[:n]
        np.clip(out, -1.0, 1.0, out=out)
        return out


class PushAudioStream:
    """A PortAudio-like input stream clocked by its own thread (see the module doc)."""

    def __init__(self, mixer: Mixer, *, samplerate: int, channels: int, callback: Callable[..., None],
                 finished_callback: Callable[[], None] | None = None, name: str = "session-audio-clock",
                 **_: Any) -> None:
        if int(samplerate) != STREAM_RATE_HZ:
            raise ValueError(f"push stream runs at {STREAM_RATE_HZ} Hz, asked for {samplerate}")
        self.mixer = mixer
        self.channels = int(channels)
        self._callback = callback
        self._finished = finished_callback
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.ticks = 0

    @property
    def active(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(1.0)

    abort = stop

    def close(self) -> None:
        self.stop()

    def _run(self) -> None:
        name_os_thread()
        n = int(STREAM_RATE_HZ * TICK_S)
        next_t = time.monotonic() + TICK_S
        while not self._stop.is_set():
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -0.2:  # we fell far behind (a stalled machine): restart the clock, never burst
                next_t = time.monotonic()
            next_t += TICK_S
            block = self.mixer.pull(n)
            data = np.repeat(block[:, None], self.channels, axis=1) if self.channels > 1 else block[:, None]
            try:
                self._callback(data, n, None, None)
            except Exception as exc:  # noqa: BLE001 - like PortAudio: the stream goes on
                log.debug("push stream callback failed: %s", exc)
            self.ticks += 1


class PushInput:
    """`InputStreams` for a session's voice: one mono 48 kHz input whose streams pull from `mixer`."""

    def __init__(self, mixer: Mixer, name: str) -> None:
        self.mixer = mixer
        self.name = name

    def describe(self) -> dict[str, Any]:
        return {"index": -1, "name": self.name, "default_samplerate": STREAM_RATE_HZ, "max_input_channels": 1}

    def rescan(self) -> None:
        """Nothing to look for: the input is the session's own mixer."""

    def open(self, info: dict[str, Any], **stream_args: Any) -> PushAudioStream:
        return PushAudioStream(self.mixer, name=f"{self.name} clock", **stream_args)

