"""A stand-in for the PortAudio library under `sounddevice`, for faults a real device cannot be told to make.

`FakePortAudio(monkeypatch, audio)` replaces `sounddevice.query_devices`, `sounddevice.InputStream`
and PortAudio's re-initialisation (the rescan), so `MicCapture` runs its own device lookup, stream
opening, health checks and reopen code unchanged; only the library below it is fake. The device can
be unplugged (`plugged = False`: it leaves the device list and opening it fails as PortAudio fails),
and a stream can die on cue: it stops calling back ("stall") or is aborted ("abort"), or it pauses for
`unplugged_s` and then calls back again, the backlog first ("hiccup": a sound server starved of CPU).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

FAKE_DEVICE: dict[str, Any] = {
    "index": 0, "name": "Fake USB Microphone", "hostapi": 0,
    "max_input_channels": 2, "max_output_channels": 0, "default_samplerate": 48000.0,
}


class _ZeroClock:
    inputBufferAdcTime = 0.0
    currentTime = 0.0


class FakeInputStream:
    """A `sounddevice.InputStream` double. With `realtime=True` it delivers `audio` (rows: frames) in 10 ms
    callbacks from its own thread until `die_after_s` (then it stalls or aborts, see `mode`); with
    `realtime=False` it delivers only what the test `push`es, on the test's thread."""

    def __init__(self, owner: FakePortAudio, *, device: int | None, samplerate: float, channels: int,
                 callback: Callable[..., None], finished_callback: Callable[[], None] | None = None,
                 **kwargs: Any) -> None:
        self.owner = owner
        self.device, self.samplerate, self.channels = device, samplerate, channels
        self.kwargs = kwargs
        self.callback = callback
        self.finished_callback = finished_callback
        self.die_after_s = owner.next_die_after_s
        self.mode = owner.mode
        self._stop = threading.Event()
        self._dead = False
        self._thread: threading.Thread | None = None

    def clock(self) -> Any:
        return self.owner.clock()

    def push(self, block: np.ndarray) -> None:
        """Deliver one buffer (frames x channels) through the callback, as PortAudio's thread would."""
        self.callback(block, len(block), self.clock(), None)

    def _run(self) -> None:
        audio = self.owner.audio
        n, t0, k = 480, time.monotonic(), 0
        while not self._stop.is_set():
            if self.die_after_s is not None and time.monotonic() - t0 > self.die_after_s:
                self.owner.on_death(self)
                if self.mode == "hiccup":
                    self.die_after_s = None
                    self._stop.wait(self.owner.unplugged_s)
                    continue
                self._dead = True
                if self.mode == "abort" and self.finished_callback is not None:
                    self.finished_callback()
                return
            block = audio[(k * n) % len(audio) :][:n]
            if len(block) < n:
                block = np.concatenate([block, audio[: n - len(block)]])
            self.push(block[:, : self.channels])
            k += 1
            self._stop.wait(max(0.0, t0 + k * 0.01 - time.monotonic()))

    @property
    def active(self) -> bool:
        # a stalled device still looks active to PortAudio; an aborted one does not
        return not self._stop.is_set() and not (self._dead and self.mode == "abort")

    def start(self) -> None:
        if self.owner.realtime:
            self._thread = threading.Thread(target=self._run, name="fake-portaudio", daemon=True)
            self._thread.start()

    def abort(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)


class FakePortAudio:
    """Patches `sounddevice` for one test. `audio`: 48 kHz float32 frames x 2 channels, looped.

    `die_after_s`: the first stream dies this long after it starts; `unplugged_s`: then the device
    is gone from the device list for this long (every reopen fails), then plugged back in.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, audio: np.ndarray | None = None, *, realtime: bool = True,
                 die_after_s: float | None = None, unplugged_s: float = 0.0, mode: str = "stall",
                 clock: Callable[[], Any] | None = None) -> None:
        import sounddevice as sd

        self.audio = audio if audio is not None else np.zeros((4800, 2), np.float32)
        self.realtime = realtime
        self.next_die_after_s = die_after_s
        self.unplugged_s = unplugged_s
        self.mode = mode
        self.clock: Callable[[], Any] = clock or _ZeroClock
        self.plugged = True
        self.died_at: float | None = None
        self.streams: list[FakeInputStream] = []
        self.failed_opens = 0
        self.rescans = 0
        self._sd = sd
        monkeypatch.setattr(sd, "query_devices", self.query_devices)
        monkeypatch.setattr(sd, "InputStream", self.open_stream)
        monkeypatch.setattr(sd, "_terminate", self._rescan)
        monkeypatch.setattr(sd, "_initialize", lambda: None)

    def _rescan(self) -> None:
        self.rescans += 1

    def _present(self) -> bool:
        if self.died_at is not None and time.monotonic() >= self.died_at + self.unplugged_s:
            self.plugged = True
        return self.plugged

    def query_devices(self) -> list[dict[str, Any]]:
        return [dict(FAKE_DEVICE)] if self._present() else []

    def on_death(self, stream: FakeInputStream) -> None:
        self.died_at = time.monotonic()
        if self.unplugged_s > 0 and self.mode != "hiccup":
            self.plugged = False

    def open_stream(self, **kwargs: Any) -> FakeInputStream:
        if not self._present() or kwargs.get("device") != FAKE_DEVICE["index"]:
            self.failed_opens += 1
            raise self._sd.PortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")
        if kwargs.get("channels", 1) > FAKE_DEVICE["max_input_channels"]:
            raise self._sd.PortAudioError("Error opening InputStream: Invalid number of channels [PaErrorCode -9998]")
        stream = FakeInputStream(self, **kwargs)
        self.next_die_after_s = None  # only the first stream dies
        self.streams.append(stream)
        return stream


class FakeOutputDevice:
    """Patches `sounddevice.OutputStream` and `query_devices(kind="output")`: a speaker the test drains
    (`pull`), or with `broken=True` one that PortAudio cannot open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, broken: bool = False, rate_hz: int = 48000) -> None:
        import sounddevice as sd

        self.broken = broken
        self.rate_hz = rate_hz
        self.opened: list[dict[str, Any]] = []
        self.callback: Callable[..., None] | None = None
        self.started = False
        self.closed = False
        self._sd = sd
        monkeypatch.setattr(sd, "query_devices", self.query_devices)
        monkeypatch.setattr(sd, "OutputStream", self.open_stream)

    def query_devices(self, device: Any = None, kind: str | None = None) -> dict[str, Any]:
        return {"index": 1, "name": "Fake Speaker", "max_input_channels": 0, "max_output_channels": 2,
                "default_samplerate": float(self.rate_hz)}

    def open_stream(self, **kwargs: Any) -> FakeOutputDevice:
        if self.broken:
            raise self._sd.PortAudioError("Error opening OutputStream: Device unavailable [PaErrorCode -9985]")
        self.opened.append(kwargs)
        self.callback = kwargs["callback"]
        return self

    latency = 0.02

    def start(self) -> None:
        self.started = True

    def abort(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True

    def pull(self, frames: int) -> np.ndarray:
        """What the device plays next: `frames` samples from the callback, as PortAudio's thread asks."""
        assert self.callback is not None, "no output stream was opened"
        out = np.full((frames, 1), np.nan, np.float32)
        self.callback(out, frames, _ZeroClock(), None)
        return out[:, 0].copy()
