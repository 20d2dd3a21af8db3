"""Streams an audio file into the output mp4 as AAC, in step with the video (FileOutput's AudioMuxSource).

Audio pts start at 0, the same instant as the first video frame's media time 0.
`mux_until(t)` encodes the source up to media time t (so packets interleave with
the video as it is written); `finish` encodes the rest and flushes the encoder.
The source is decoded as it goes: memory stays bounded for any length.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from src.audio.file_source import AudioFileReader
from src.errors import OutputError
from src.output.file_output import AudioMuxSource

log = logging.getLogger(__name__)

AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
AAC_FRAME = 1024


class AudioFileMux(AudioMuxSource):
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
        try:
            stream = container.add_stream("aac", rate=self.rate_hz)
        except (av.error.FFmpegError, ValueError) as exc:
            raise OutputError(f"output file: AAC audio encoder not available ({exc}); install an ffmpeg build with aac") from None
        stream.layout = self.layout
        stream.bit_rate = self.bitrate
        stream.time_base = Fraction(1, self.rate_hz)
        self._stream = stream
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
