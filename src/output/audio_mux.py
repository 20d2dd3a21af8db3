"""Audio tracks muxed beside the video in a FileOutput (AAC), both behind one `AudioMuxSource` interface.

* `AudioFileMux`: an audio file (offline `render`). Audio pts start at 0, the same instant as the first
  video frame's media time 0. `mux_until(t)` encodes the source up to media time t (so packets interleave
  with the video as it is written); `finish` encodes the rest and flushes the encoder. The source is
  decoded as it goes: memory stays bounded for any length.
* `LivePcmMux`: the live audio (microphone or a file playing in real time) of a live `file:` output.
  Blocks arrive on the audio thread as (capture_ts, 16 kHz mono float32), stamped on the same monotonic
  clock as the video frames. A live FileOutput stamps its video with capture time minus the first frame's,
  so each audio sample goes at its own capture time minus that same origin: the mouth in the file is where
  it was on screen. Audio captured before the first frame is cut; a gap in the audio (a microphone that
  stalled or was unplugged) becomes silence; audio that runs ahead of its timestamps by more than
  `RESYNC_S` is trimmed. Small jitter is absorbed (the samples stay contiguous, so no clicks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from src.audio.io.file_source import AudioFileReader
from src.audio.pcm import PCM_RATE_HZ, PcmQueue, PcmSource
from src.core.errors import OutputError

log = logging.getLogger(__name__)

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
AAC_FRAME = 1024
RESYNC_S = 0.04  # live audio further than this from its timestamp is re-aligned (silence in, or samples out)
MAX_QUEUED_S = 10.0  # live blocks waiting for the writer; the oldest go beyond this (counted)


class AudioMuxSource(Protocol):
    """An audio track muxed beside the video: opened on the container, fed up to each video time, finished."""

    def open(self, container: av.container.OutputContainer) -> None: ...

    def mux_until(self, container: av.container.OutputContainer, t: Fraction) -> None: ...

    def finish(self, container: av.container.OutputContainer) -> None: ...


def add_aac_stream(container: av.container.OutputContainer, rate_hz: int, layout: str, bitrate: int) -> av.AudioStream:
    try:
        stream = container.add_stream("aac", rate=rate_hz)
    except (av.error.FFmpegError, ValueError) as exc:
        raise OutputError(f"output file: AAC audio encoder not available ({exc}); install an ffmpeg build with aac") from None
    stream.layout = layout
    stream.bit_rate = bitrate
    stream.time_base = Fraction(1, rate_hz)
    return stream

RATE_HZ = PCM_RATE_HZ


class AudioFileMux:
    """Muxes `path`'s audio into a FileOutput: `file_output.audio = AudioFileMux("speech.wav")`.

    `max_duration_s` cuts the audio there (for a render limited to fewer frames than the audio).
    """

    def __init__(self, path: str | Path, bitrate: int = 128_000, max_duration_s: float | None = None) -> None:
        self.reader = AudioFileReader(path)  # raises AudioInputError for a bad file, before any output is opened
        native = self.reader.native_rate_hz
        self.rate_hz = native if native in AAC_RATES else 48000
        self.layout = "mono" if self.reader.channels <= 1 else "stereo"
        self.bitrate = bitrate
        self._stream: av.AudioStream | None = None
        self._frames: Iterator[av.AudioFrame] | None = None
        self._pending: av.AudioFrame | None = None
        self._samples = 0  # samples handed to the encoder (the next frame's pts)
        self._limit = self.reader._max_samples_at(self.rate_hz)
        if max_duration_s is not None:  # a render cut short (--duration) keeps only that much audio
            cap = max(0, round(max_duration_s * self.rate_hz))
            self._limit = cap if self._limit is None else min(self._limit, cap)
        self.finished = False

    @property
    def duration_s(self) -> float:
        """Audio encoded so far, in seconds."""
        return self._samples / self.rate_hz

    def open(self, container: av.container.OutputContainer) -> None:
        self._stream = add_aac_stream(container, self.rate_hz, self.layout, self.bitrate)
        self._frames = self.reader.av_frames(self.rate_hz, self.layout, AAC_FRAME)
        self._samples = 0

    def _encode(self, frame: av.AudioFrame | None, container: av.container.OutputContainer) -> None:
        assert self._stream is not None
        for packet in self._stream.encode(frame):
            container.mux(packet)

    def _next(self) -> av.AudioFrame | None:
        if self._pending is not None:
            f, self._pending = self._pending, None
            return f
        assert self._frames is not None, "open() first"
        return next(self._frames, None)

    def mux_until(self, container: av.container.OutputContainer, t: Fraction) -> None:
        """Encode audio up to media time `t` (seconds, as a Fraction)."""
        if self.finished or self._stream is None:
            return
        target = int(t * self.rate_hz)
        while self._samples < target:
            frame = self._next()
            if frame is None:
                return
            if self._limit is not None and self._samples + frame.samples > self._limit:
                keep = self._limit - self._samples
                if keep <= 0:
                    return
                frame = _truncate(frame, keep)
            frame.pts = self._samples
            frame.time_base = Fraction(1, self.rate_hz)
            self._samples += frame.samples
            self._encode(frame, container)

    def finish(self, container: av.container.OutputContainer) -> None:
        """Encode everything left of the source and flush the encoder."""
        if self.finished or self._stream is None:
            return
        self.mux_until(container, Fraction(10**9))
        self._encode(None, container)
        self.finished = True
        if self.reader.decode_errors:
            log.warning("%s: %d undecodable packets skipped in the muxed audio", self.reader.label, self.reader.decode_errors)


def _truncate(frame: av.AudioFrame, n: int) -> av.AudioFrame:
    data = frame.to_ndarray()[:, :n].copy()
    out = av.AudioFrame.from_ndarray(data, format=frame.format.name, layout=frame.layout.name)
    out.sample_rate = frame.sample_rate
    return out


class LivePcmMux:
    """AAC track from a PcmSource (`add_pcm_listener(cb)`), aligned to the video's capture-time origin.

    `origin()` returns the capture time of the video's first frame (None until it is written).
    """

    def __init__(self, source: PcmSource, origin: Callable[[], float | None], bitrate: int = 96_000) -> None:
        self.source = source
        self.origin = origin
        self.bitrate = bitrate
        self._queue = PcmQueue(MAX_QUEUED_S, RATE_HZ)
        self._stream: av.AudioStream | None = None
        self._buf = np.zeros(0, np.float32)  # samples not yet encoded (starting at media sample `_written`)
        self._written = 0  # samples handed to the encoder
        self.silence_samples = 0  # inserted for gaps
        self.trimmed_samples = 0  # cut: before the first frame, overlapping, or after the last frame
        self._video_t: list[float] = []  # the last two video times seen (for the end of the track)
        self._closed = False
        source.add_pcm_listener(self._on_pcm)

    def _on_pcm(self, capture_ts: float, samples: np.ndarray) -> None:
        if not self._closed:
            self._queue.push(capture_ts, np.asarray(samples, np.float32).reshape(-1))

    @property
    def dropped_samples(self) -> int:
        """Samples lost to a full queue (the writer fell more than `MAX_QUEUED_S` behind)."""
        return self._queue.dropped_samples

    @property
    def duration_s(self) -> float:
        return (self._written + len(self._buf)) / RATE_HZ

    def open(self, container: av.container.OutputContainer) -> None:
        self._stream = add_aac_stream(container, RATE_HZ, "mono", self.bitrate)

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
        self._place(t0, self._queue.take_all())
        self._encode_frames(container, final=False)

    def finish(self, container: av.container.OutputContainer) -> None:
        self._closed = True
        self.source.remove_pcm_listener(self._on_pcm)
        if self._stream is None:
            return
        t0 = self.origin()
        if t0 is not None:
            self._place(t0, self._queue.take_all())
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
