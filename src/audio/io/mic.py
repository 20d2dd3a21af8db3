"""Microphone capture: any native rate and channel count -> 16 kHz mono blocks stamped with capture time.

The PortAudio callback only copies the block and its timestamps into a bounded
queue (it never blocks); the reader (the audio driver's thread) resamples and
cuts 10 ms blocks. A device that disappears or stalls is warned about once per
outage and reopened every `retry_s`; a stalled stream stays open until the first
retry, and if it calls back again before then (a sound server that was starved
of CPU for a moment), the microphone is back without a reopen, minus the backlog
the stream catches up with. `read` never raises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Protocol

import numpy as np

from src.audio.io.blocks import AudioBlock, AudioInputError
from src.audio.io.devices import _sd, describe_devices, rescan_devices, resolve_input_device, stream_closed, stream_opened
from src.audio.io.resample import StreamingResampler, downmix

log = logging.getLogger(__name__)

STALL_S = 1.0  # no callback for this long while running = the device is gone
FIRST_CALLBACK_S = 5.0  # a new stream may take this long to deliver (PulseAudio takes ~2 s here)
TRACK_GAIN = 0.02  # per block: the stamp timeline follows the callbacks' clock with a ~0.5 s time constant
RESYNC_S = 0.2  # a stamp this far off the timeline (dropped audio, a reopened device) restarts it
CATCH_UP_S = 1.0  # after a stalled stream resumes, audio arriving faster than real time for this long is its backlog
CATCH_UP_SLACK_S = 0.05  # ... beyond this much ahead of real time


class StampTimeline:
    """Capture stamps that never go backwards. Each callback's own timestamp jitters with scheduling
    (a late wake-up makes its buffer look younger than the previous one's end), so block stamps run on
    a timeline advancing by exactly the audio's duration and pulled gently toward the callbacks' clock;
    a jump larger than RESYNC_S (a gap) restarts the timeline there, forward only."""

    def __init__(self) -> None:
        self.last: float | None = None
        self.resyncs = 0

    def stamp(self, observed: float, duration_s: float) -> float:
        if self.last is None:
            self.last = observed
            return observed
        expected = self.last + duration_s
        err = observed - expected
        if err > RESYNC_S:
            self.resyncs += 1
            ts = observed
        else:
            ts = expected + TRACK_GAIN * max(err, -RESYNC_S)
        ts = max(ts, self.last + 0.5 * duration_s)
        self.last = ts
        return ts


class InputStreams(Protocol):
    """Where a `MicCapture` gets its streams. The default is a PortAudio input device (`PortAudioInput`);
    `serve` sessions plug in audio pushed by a browser or a client the same way, so one capture path
    (format choice, stamping, stall detection, reopening) serves both."""

    def describe(self) -> dict[str, Any]:
        """{"index", "name", "default_samplerate", "max_input_channels"} of the input, looked up now."""
        ...

    def rescan(self) -> None:
        """Look for devices again before a reopen (one that was unplugged may be back under a new index)."""
        ...

    def open(self, info: dict[str, Any], **stream_args: Any) -> Any:
        """A PortAudio-like input stream: samplerate=, channels=, blocksize=, callback=, finished_callback=."""
        ...


class PortAudioInput:
    """A microphone through PortAudio (`device`: None for the default, an index or part of a name)."""

    def __init__(self, device: str | int | None) -> None:
        self.device = device

    def describe(self) -> dict[str, Any]:
        return resolve_input_device(self.device)

    def rescan(self) -> None:
        rescan_devices()

    def open(self, info: dict[str, Any], **stream_args: Any) -> Any:
        return _sd().InputStream(device=info["index"], dtype="float32", latency="low", **stream_args)


class MicCapture:
    """16 kHz mono `AudioBlock`s from a microphone (`device`: None, an index or part of a name)."""

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate_hz: int = 16000,
        block_ms: float = 10.0,
        retry_s: float = 2.0,
        ring_s: float = 2.0,
        streams: InputStreams | None = None,
    ) -> None:
        self.device_spec = device
        self.ring_s = ring_s  # audio kept between the callback and the reader; older audio is dropped
        self.streams = streams or PortAudioInput(device)
        self.info = self.streams.describe()
        self.label = f"microphone {self.info['index']}: {self.info['name']}"
        self.out_rate = sample_rate_hz
        self.block_len = max(1, round(sample_rate_hz * block_ms / 1000.0))
        self.retry_s = retry_s
        self._stream: Any = None
        self._raw: deque[tuple[np.ndarray, float, float]] = deque()
        self._raw_cond = threading.Condition()
        self._raw_max = 1  # samples
        self._raw_queued = 0
        self._raw_dropped = 0
        self._last_callback = 0.0
        self._finished_unexpectedly = False
        self._stopping = False
        self.in_rate = 0
        self.channels = 0
        self._resampler: StreamingResampler | None = None
        self._anchors: deque[tuple[int, float, float]] = deque(maxlen=64)  # (input index, capture ts, arrival ts)
        self._pending = np.zeros(0, np.float32)
        self._pending_m0 = 0  # output index of _pending[0]
        self._index = 0
        self._timeline = StampTimeline()
        self.lost = False
        self.lost_reason = ""
        self.outages = 0
        self.reopen_attempts = 0
        self.resumes = 0  # outages that ended with the same stream calling back again
        self._catch_up: tuple[float, int] | None = None  # (resume time, input samples let through since)
        self._next_retry = 0.0
        self.callbacks = 0
        self._callbacks_this_stream = 0
        self.status_flags = 0
        self.adc_offsets_ms: deque[float] = deque(maxlen=500)

    # -- opening -------------------------------------------------------------------------------
    def _open(self) -> None:
        info = self.info
        native = int(round(info.get("default_samplerate") or 48000))
        max_ch = int(info.get("max_input_channels") or 1)
        rates = [native] + [r for r in (48000, 44100, 16000) if r != native]
        channel_options = [c for c in dict.fromkeys((1, min(2, max_ch), max_ch)) if c >= 1]
        last_exc: Exception | None = None
        for rate in rates:
            for ch in channel_options:
                try:
                    stream = self.streams.open(
                        info,
                        samplerate=rate,
                        channels=ch,
                        # 0 = whatever size the host delivers, as soon as it has it: fixed sizes stall
                        # PortAudio's ALSA-on-PulseAudio path and add latency elsewhere.
                        blocksize=0,
                        callback=self._callback,
                        finished_callback=self._finished,
                    )
                except Exception as exc:  # noqa: BLE001 - PortAudio refuses a rate or channel count; try the next
                    last_exc = exc
                    continue
                self._setup_stream(stream, rate, ch)
                return
        raise AudioInputError(f"{self.label}: cannot be opened ({last_exc}); input devices: {describe_devices('input')}")

    def _setup_stream(self, stream: Any, rate: int, channels: int) -> None:
        self.in_rate = int(rate)
        self.channels = channels
        self._resampler = StreamingResampler(self.in_rate, self.out_rate)
        self._raw_max = int(self.ring_s * self.in_rate)
        self._anchors.clear()
        self._pending = np.zeros(0, np.float32)
        self._pending_m0 = 0
        self._finished_unexpectedly = False
        self._catch_up = None
        self._last_callback = time.monotonic()
        self._callbacks_this_stream = 0
        self._stream = stream
        stream.start()
        stream_opened()
        log.info("%s: %d Hz, %d channel(s), resampled to %d Hz mono", self.label, self.in_rate, channels, self.out_rate)

    def start(self) -> None:
        """Open the device; raises AudioInputError (a user error) if it cannot be opened at all."""
        self._stopping = False
        self._open()

    def stop(self) -> None:
        self._stopping = True
        self._close_stream()
        with self._raw_cond:
            self._raw_cond.notify_all()

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort() if hasattr(stream, "abort") else stream.stop()
        except Exception:  # noqa: BLE001 - a dead device may refuse to stop
            pass
        try:
            stream.close()
        except Exception:  # noqa: BLE001 - a dead device may refuse to close
            pass
        stream_closed()

    # -- PortAudio thread ----------------------------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        now = time.monotonic()
        self.callbacks += 1
        self._callbacks_this_stream += 1
        if status:
            self.status_flags += 1
        ts = None
        try:
            adc, cur = float(time_info.inputBufferAdcTime), float(time_info.currentTime)
        except (AttributeError, TypeError, ValueError):
            adc = cur = 0.0
        if adc > 0 and cur > 0:
            cand = now - (cur - adc)
            if now - 0.5 < cand <= now + 0.001:  # PortAudio's clock is sane: map it to monotonic
                ts = cand
                self.adc_offsets_ms.append((now - cand) * 1000.0)
        if ts is None:
            ts = now - frames / max(1, self.in_rate)
        block = downmix(indata)
        with self._raw_cond:
            self._last_callback = now
            self._raw.append((block, ts, now))
            self._raw_queued += len(block)
            while self._raw_queued > self._raw_max and len(self._raw) > 1:
                old = self._raw.popleft()
                self._raw_queued -= len(old[0])
                self._raw_dropped += len(old[0])
            self._raw_cond.notify()

    def _finished(self) -> None:
        if not self._stopping:
            self._finished_unexpectedly = True
            with self._raw_cond:
                self._raw_cond.notify()

    # -- reader thread -------------------------------------------------------------------------
    def _check_health(self) -> None:
        if self.lost or self._stream is None:
            return
        reason = ""
        if self._finished_unexpectedly:
            reason = "the stream was aborted"
        else:
            try:
                active = bool(self._stream.active)
            except Exception as exc:  # noqa: BLE001 - a dead device raises here
                active = False
                reason = f"{type(exc).__name__}: {exc}"
            if not active and not reason:
                reason = "the stream stopped"
            else:
                limit = STALL_S if self._callbacks_this_stream else FIRST_CALLBACK_S
                if time.monotonic() - self._last_callback > limit:
                    reason = f"no audio for {limit:.1f} s"
        if reason:
            self._mark_lost(reason, stalled=reason.startswith("no audio"))

    def _mark_lost(self, reason: str, stalled: bool = False) -> None:
        self.lost = True
        self.lost_reason = reason
        self.outages += 1
        log.warning("%s stopped (%s); the mouth closes, retrying every %g s", self.label, reason, self.retry_s)
        if not stalled:  # a stalled stream may resume on its own until the first retry closes it
            self._close_stream()
        with self._raw_cond:
            self._raw.clear()
            self._raw_queued = 0
        self._next_retry = time.monotonic() + self.retry_s

    def _resumed(self) -> bool:
        """The stalled stream, still open, called back again: the microphone is back as it was.

        A stream that resumes first delivers what it held during the stall, faster than real time; that
        audio is stale for a live mouth (stamped one block after another, it would make the mouth trail the
        voice by the stall's length), so for CATCH_UP_S whatever arrives ahead of real time is dropped."""
        with self._raw_cond:
            if self._stream is None or not self._raw or self._finished_unexpectedly:
                return False
            self._raw_dropped += self._raw_queued
            self._raw.clear()
            self._raw_queued = 0
        self._catch_up = (time.monotonic(), 0)
        self.lost = False
        self.resumes += 1
        log.info("%s is back (the stream resumed)", self.label)
        return True

    def _retry(self) -> None:
        if time.monotonic() < self._next_retry or self._stopping:
            return
        self._next_retry = time.monotonic() + self.retry_s
        self.reopen_attempts += 1
        self._close_stream()  # a stalled stream that never resumed
        try:
            self.streams.rescan()
            self.info = self.streams.describe()
            self._open()
        except Exception as exc:  # noqa: BLE001 - still gone; try again later
            log.debug("%s: reopen failed: %s", self.label, exc)
            return
        self.lost = False
        log.info("%s is back", self.label)

    def wait(self, timeout: float) -> None:
        """Sleep until a raw block arrives (or `timeout`)."""
        with self._raw_cond:
            if not self._raw and not self._finished_unexpectedly and not self._stopping:
                self._raw_cond.wait(timeout)

    def read(self, timeout: float = 0.05) -> list[AudioBlock]:
        """The 16 kHz blocks completed since the last call (possibly none). Never raises."""
        if self.lost and not self._resumed():
            self._retry()
            if self.lost:
                time.sleep(min(timeout, 0.05))
                return []
        self.wait(timeout)
        with self._raw_cond:
            raw = list(self._raw)
            self._raw.clear()
            self._raw_queued = 0
        if not raw:
            self._check_health()
            return []
        if self._catch_up is not None:
            raw = self._drop_backlog(raw)
        out: list[AudioBlock] = []
        for x, ts, arrival in raw:
            out.extend(self._feed(x, ts, arrival))
        return out

    def _drop_backlog(self, raw: list[tuple[np.ndarray, float, float]]) -> list[tuple[np.ndarray, float, float]]:
        """The newest of `raw` that keeps the audio let through since the resume within real time (+ slack)."""
        assert self._catch_up is not None
        t0, passed = self._catch_up
        now = time.monotonic()
        budget = int((now - t0 + CATCH_UP_SLACK_S) * self.in_rate) - passed
        keep = len(raw)
        while keep > 0 and budget - len(raw[keep - 1][0]) >= 0:
            keep -= 1
            budget -= len(raw[keep][0])
        dropped, kept = raw[:keep], raw[keep:]
        self._raw_dropped += sum(len(x) for x, _, _ in dropped)
        self._catch_up = None if now - t0 > CATCH_UP_S else (t0, passed + sum(len(x) for x, _, _ in kept))
        return kept

    def _feed(self, x: np.ndarray, ts: float, arrival: float) -> list[AudioBlock]:
        rs = self._resampler
        assert rs is not None
        self._anchors.append((rs.samples_in, ts, arrival))
        y = rs.process(x)
        self._pending = np.concatenate([self._pending, y]) if len(self._pending) else y
        blocks = []
        while len(self._pending) >= self.block_len:
            samples = self._pending[: self.block_len].copy()
            self._pending = self._pending[self.block_len :]
            blocks.append(self._stamp(samples, self._pending_m0))
            self._pending_m0 += self.block_len
        return blocks

    def _stamp(self, samples: np.ndarray, m0: int) -> AudioBlock:
        rs = self._resampler
        assert rs is not None
        starts = np.array([a[0] for a in self._anchors], np.float64)
        pos0 = rs.input_position(m0)
        i0 = max(0, int(np.searchsorted(starts, pos0, side="right")) - 1)
        start, ts, _ = self._anchors[i0]
        capture_ts = self._timeline.stamp(ts + (pos0 - start) / self.in_rate, len(samples) / self.out_rate)
        # The newest input sample each output sample needs decides when it could first be computed.
        m = np.arange(m0, m0 + len(samples))
        needed = (m * rs.down) // rs.up
        which = np.searchsorted(starts, needed, side="right") - 1
        arrivals: list[tuple[int, float]] = []
        for off in np.flatnonzero(np.r_[True, np.diff(which) != 0]):
            arrivals.append((int(off), self._anchors[max(0, int(which[off]))][2]))
        block = AudioBlock(samples, capture_ts, self._index, self.out_rate, arrivals)
        self._index += 1
        return block

    def stats(self) -> dict[str, Any]:
        offs = list(self.adc_offsets_ms)
        return {
            "device": self.label,
            "native_rate_hz": self.in_rate,
            "channels": self.channels,
            "callbacks": self.callbacks,
            "status_flags": self.status_flags,
            "raw_dropped_samples": self._raw_dropped,
            "outages": self.outages,
            "reopen_attempts": self.reopen_attempts,
            "resumes": self.resumes,
            "lost": self.lost,
            "adc_to_callback_ms": round(float(np.median(offs)), 2) if offs else None,
            "stamp_resyncs": self._timeline.resyncs,
        }
