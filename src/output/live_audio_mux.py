"""The live audio (microphone or a file playing in real time) muxed into a live `file:` output.

Blocks arrive on the audio thread as (capture_ts, 16 kHz mono float32), stamped
on the same monotonic clock as the video frames. A live FileOutput stamps its
video with capture time minus the first frame's, so each audio sample goes at
its own capture time minus that same origin: the mouth in the file is where it
was on screen. Audio captured before the first frame is cut; a gap in the
audio (a microphone that stalled or was unplugged) becomes silence; audio that
runs ahead of its timestamps by more than `RESYNC_S` is trimmed. Small jitter
is absorbed (the samples stay contiguous, so no clicks).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np

from src.errors import OutputError
from src.output.base import detach_pcm_listener
from src.output.file_output import AudioMuxSource

log = logging.getLogger(__name__)

RATE_HZ = 16000
AAC_FRAME = 1024
RESYNC_S = 0.04  # audio further than this from its timestamp is re-aligned (silence in, or samples out)
MAX_QUEUED_S = 10.0  # blocks waiting for the writer; the oldest go beyond this (counted)


class LivePcmMux(AudioMuxSource):
    """AAC track from a PcmSource (`add_pcm_listener(cb)`), aligned to the video's capture-time origin.

    `origin()` returns the capture time of the video's first frame (None until it is written).
    """

    def __init__(self, source: Any, origin: Callable[[], float | None], bitrate: int = 96_000) -> None:
        self.source = source
        self.origin = origin
        self.bitrate = bitrate
        self._queue: deque[tuple[float, np.ndarray]] = deque()
        self._queued = 0
        self._lock = threading.Lock()
        self._stream: av.AudioStream | None = None
        self._buf = np.zeros(0, np.float32)  # samples not yet encoded (starting at media sample `_written`)
        self._written = 0  # samples handed to the encoder
        self.dropped_samples = 0  # lost to a full queue
        self.silence_samples = 0  # inserted for gaps
        self.trimmed_samples = 0  # cut: before the first frame, overlapping, or after the last frame
        self._video_t: list[float] = []  # the last two video times seen (for the end of the track)
        self._closed = False
        source.add_pcm_listener(self._on_pcm)

    def _on_pcm(self, capture_ts: float, samples: np.ndarray) -> None:
        if self._closed:
            return
        block = np.asarray(samples, np.float32).reshape(-1)
        with self._lock:
            self._queue.append((float(capture_ts), block))
            self._queued += len(block)
            while self._queued > MAX_QUEUED_S * RATE_HZ and self._queue:
                _, old = self._queue.popleft()
                self._queued -= len(old)
                self.dropped_samples += len(old)

    @property
    def duration_s(self) -> float:
        return (self._written + len(self._buf)) / RATE_HZ

    def open(self, container: av.container.OutputContainer) -> None:
        try:
            stream = container.add_stream("aac", rate=RATE_HZ)
        except (av.error.FFmpegError, ValueError) as exc:
            raise OutputError(f"output file: AAC audio encoder not available ({exc}); install an ffmpeg build with aac") from None
        stream.layout = "mono"
        stream.bit_rate = self.bitrate
        stream.time_base = Fraction(1, RATE_HZ)
        self._stream = stream

    def _take(self) -> list[tuple[float, np.ndarray]]:
        with self._lock:
            blocks = list(self._queue)
            self._queue.clear()
            self._queued = 0
        return blocks

    def _place(self, t0: float, blocks: list[tuple[float, np.ndarray]]) -> None:
        """Append blocks to the pending buffer at their capture-time positions."""
        parts = [self._buf]
        end = self._written + len(self._buf)  # media sample just after the pending audio
        for ts, block in blocks:
            start = int(round((ts - t0) * RATE_HZ))
            if start + len(block) <= 0:
                self.trimmed_samples += len(block)
                continue
            if start < 0:
                self.trimmed_samples += -start
                block, start = block[-start:], 0
            if start - end > RESYNC_S * RATE_HZ:  # a gap: silence up to the block
                gap = start - end
                parts.append(np.zeros(gap, np.float32))
                self.silence_samples += gap
                end += gap
            elif end - start > RESYNC_S * RATE_HZ:  # ahead of its time: drop the overlap
                cut = min(end - start, len(block))
                self.trimmed_samples += cut
                block = block[cut:]
            parts.append(block)
            end += len(block)
        self._buf = np.concatenate(parts) if len(parts) > 1 else self._buf

    def _encode_frames(self, container: av.container.OutputContainer, final: bool) -> None:
        assert self._stream is not None
        n_full = len(self._buf) // AAC_FRAME
        if final and len(self._buf) % AAC_FRAME:
            n_full += 1
            pad = n_full * AAC_FRAME - len(self._buf)
            self._buf = np.concatenate([self._buf, np.zeros(pad, np.float32)])
        for k in range(n_full):
            chunk = self._buf[k * AAC_FRAME : (k + 1) * AAC_FRAME]
            frame = av.AudioFrame.from_ndarray(np.clip(chunk, -1.0, 1.0)[None, :], format="flt", layout="mono")
            frame.sample_rate = RATE_HZ
            frame.pts = self._written
            frame.time_base = Fraction(1, RATE_HZ)
            for packet in self._stream.encode(frame):
                container.mux(packet)
            self._written += AAC_FRAME
        self._buf = self._buf[n_full * AAC_FRAME :]

    def mux_until(self, container: av.container.OutputContainer, t: Fraction) -> None:
        """Encode every block that has arrived (audio is captured before the frames it drives)."""
        self._video_t = [*self._video_t[-1:], float(t)]
        t0 = self.origin()
        if t0 is None or self._stream is None:
            return
        self._place(t0, self._take())
        self._encode_frames(container, final=False)

    def finish(self, container: av.container.OutputContainer) -> None:
        self._closed = True
        detach_pcm_listener(self.source, self._on_pcm)
        if self._stream is None:
            return
        t0 = self.origin()
        if t0 is not None:
            self._place(t0, self._take())
        if self._video_t:  # the track ends with the last video frame's display time, like the video
            period = self._video_t[-1] - self._video_t[0] if len(self._video_t) == 2 else 0.0
            end = int(round((self._video_t[-1] + period) * RATE_HZ)) - self._written
            if 0 <= end < len(self._buf):
                self.trimmed_samples += len(self._buf) - end
                self._buf = self._buf[:end]
        self._encode_frames(container, final=True)
        for packet in self._stream.encode(None):
            container.mux(packet)
        if self.dropped_samples or self.silence_samples:
            log.info("live audio in the file: %.2f s of gaps filled with silence, %.2f s dropped (writer behind)",
                     self.silence_samples / RATE_HZ, self.dropped_samples / RATE_HZ)  # fmt: skip
