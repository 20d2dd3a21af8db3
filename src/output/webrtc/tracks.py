"""Media tracks for WebRTC viewers: the newest video frame, and audio from the audio helper.

`FrameHub` lives on the server's asyncio loop and holds only the newest frame;
every viewer's `HubVideoTrack` takes the newest frame each time its encoder is
ready (like aiortc's `MediaRelay(buffered=False)`), so a slow viewer skips frames
and never holds up the pipeline or the other viewers.

`AudioFanIn` takes the audio helper's (capture_ts, float32 mono 16 kHz) blocks on
the audio thread and copies them into each viewer's bounded buffer;
`PcmAudioTrack` plays them out in 20 ms frames at 48 kHz for Opus, delayed to
match the video's measured latency (lip sync), with silence when there is no data.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from src.audio.pcm import PcmQueue, PcmSource
from src.core.runtime.newest import NewestValue

log = logging.getLogger(__name__)

VIDEO_CLOCK_HZ = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_HZ)
SOURCE_RATE_HZ = 16_000
OPUS_RATE_HZ = 48_000
AUDIO_PTIME_S = 0.020
OPUS_SAMPLES = int(OPUS_RATE_HZ * AUDIO_PTIME_S)  # 960
SOURCE_SAMPLES = int(SOURCE_RATE_HZ * AUDIO_PTIME_S)  # 320
AUDIO_TIME_BASE = fractions.Fraction(1, OPUS_RATE_HZ)
SYNC_TOLERANCE_S = 0.030  # audio within this of the video's delay is played as is (no clicks)


@dataclass(slots=True)
class HubFrame:
    """One frame ready for the encoders: I420 planes (H*3/2 x W) plus its capture time."""

    yuv: np.ndarray
    capture_ts: float  # time.monotonic() at capture
    seq: int


class FrameHub(NewestValue[HubFrame]):
    """The newest frame, and the viewers waiting for one. Used only on the server's loop."""

    closed_error = MediaStreamError

    def __init__(self) -> None:
        super().__init__()
        self.t0: float | None = None  # capture time of the first frame: 90 kHz pts origin

    def publish(self, frame: HubFrame) -> None:
        if self.closed:
            return
        if self.t0 is None:
            self.t0 = frame.capture_ts
        self.set_latest(frame)


class HubVideoTrack(MediaStreamTrack):
    """A viewer's video: the hub's newest frame, stamped on a 90 kHz clock from its capture time."""

    kind = "video"

    def __init__(self, hub: FrameHub) -> None:
        super().__init__()
        self._hub = hub
        self._seq = -1
        self._last_pts = -1
        self.frames = 0
        self.skipped = 0  # frames that came and went while this viewer's encoder was busy

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._hub.next_after(self._seq)
        if self._seq >= 0:
            self.skipped += item.seq - self._seq - 1
        self._seq = item.seq
        frame = av.VideoFrame.from_ndarray(item.yuv, format="yuv420p")
        t0 = self._hub.t0 if self._hub.t0 is not None else item.capture_ts
        pts = int(round((item.capture_ts - t0) * VIDEO_CLOCK_HZ))
        if pts <= self._last_pts:  # RTP timestamps must never go backwards
            pts = self._last_pts + 1
        self._last_pts = pts
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.frames += 1
        return frame


class AudioFanIn:
    """Receives the audio helper's blocks (audio thread) and copies them to every viewer's buffer."""

    def __init__(self, source: PcmSource, buffer_ms: float, video_delay_s: Callable[[], float]) -> None:
        self.source = source
        self.buffer_samples = int(buffer_ms * SOURCE_RATE_HZ / 1000)
        self.video_delay_s = video_delay_s
        self._buffers: set[PcmQueue] = set()
        self._lock = threading.Lock()
        self.blocks = 0
        self.bad_blocks = 0
        source.add_pcm_listener(self._on_pcm)

    def _on_pcm(self, capture_ts: float, block: np.ndarray) -> None:
        try:
            samples = np.asarray(block, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            if self.bad_blocks == 0:
                log.warning("webrtc audio: a block that is not mono float32 samples was ignored (further ones are counted)")
            self.bad_blocks += 1
            return
        self.blocks += 1
        with self._lock:
            buffers = list(self._buffers)
        for buf in buffers:
            buf.push(float(capture_ts), samples)

    def delay_s(self) -> float:
        """How late audio plays: the video's latency, within what the buffer can hold."""
        limit = max(self.buffer_samples / SOURCE_RATE_HZ - 2 * AUDIO_PTIME_S, 0.0)
        return min(max(self.video_delay_s(), 0.0), limit)

    def track(self) -> PcmAudioTrack:
        buf = PcmQueue(self.buffer_samples / SOURCE_RATE_HZ, SOURCE_RATE_HZ)
        with self._lock:
            self._buffers.add(buf)
        return PcmAudioTrack(self, buf)

    def release(self, buf: PcmQueue) -> None:
        with self._lock:
            self._buffers.discard(buf)

    def detach(self) -> None:
        """Stop listening, if the source allows it."""
        self.source.remove_pcm_listener(self._on_pcm)


class PcmAudioTrack(MediaStreamTrack):
    """A viewer's audio: 20 ms frames of 48 kHz s16 mono, paced in real time."""

    kind = "audio"

    def __init__(self, fan_in: AudioFanIn, buf: PcmQueue) -> None:
        super().__init__()
        self._fan_in = fan_in
        self._buf = buf
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE_HZ)
        self._pending = np.zeros(0, dtype=np.int16)  # resampled, not yet sent
        self._start: float | None = None
        self._pts = 0
        self.silent_frames = 0

    def _take_source(self) -> np.ndarray:
        """The next 20 ms at 16 kHz, aligned so audio plays out as late as the video (lip sync)."""
        now = time.monotonic()
        target = now - self._fan_in.delay_s()  # capture time that should be heard now
        head = self._buf.head_ts()
        if head is not None and head < target - SYNC_TOLERANCE_S:
            self._buf.drop(int((target - head) * SOURCE_RATE_HZ))  # behind: skip ahead
            head = self._buf.head_ts()
        if head is None or head > target + SYNC_TOLERANCE_S:
            return np.zeros(SOURCE_SAMPLES, dtype=np.float32)  # nothing yet, or too early: silence
        got = self._buf.pop(SOURCE_SAMPLES)
        if len(got) < SOURCE_SAMPLES:
            got = np.concatenate([got, np.zeros(SOURCE_SAMPLES - len(got), dtype=np.float32)])
        return got

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._pts / OPUS_RATE_HZ - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        src = self._take_source()
        if not np.any(src):
            self.silent_frames += 1
        pcm = (np.clip(src, -1.0, 1.0) * 32767.0).astype(np.int16)
        frame16 = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame16.sample_rate = SOURCE_RATE_HZ
        out: list[np.ndarray] = [self._pending]
        for f in self._resampler.resample(frame16):
            out.append(f.to_ndarray().reshape(-1))
        pending = np.concatenate(out)
        if len(pending) < OPUS_SAMPLES:  # the resampler's start-up delay
            pending = np.concatenate([np.zeros(OPUS_SAMPLES - len(pending), dtype=np.int16), pending])
        chunk, self._pending = pending[:OPUS_SAMPLES], pending[OPUS_SAMPLES:]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OPUS_RATE_HZ
        frame.pts = self._pts
        frame.time_base = AUDIO_TIME_BASE
        self._pts += OPUS_SAMPLES
        return frame

    def stop(self) -> None:
        self._fan_in.release(self._buf)
        super().stop()

    @property
    def dropped_samples(self) -> int:
        return self._buf.dropped_samples
