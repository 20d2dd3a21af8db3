"""Audio files of any common kind (wav, mp3, ogg, flac, m4a, or a video's audio track) decoded
through PyAV and streamed as mono float32 at the analysis rate, never loaded whole.

`iter_audio_blocks(path)` yields fixed-size blocks; `decode_audio(path)` returns a
short file as one array. Bad input raises AudioInputError (one line naming the
file and the fix) before the first block; a packet that fails to decode
mid-stream is skipped, counted and logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from src.audio.io.blocks import AudioInputError

log = logging.getLogger(__name__)

FORMATS_HINT = "use an audio file such as wav, mp3, ogg, flac or m4a (or a video with sound)"


class AudioFileReader:
    """An opened audio file: checks it at construction, then streams decoded audio on demand."""

    def __init__(self, path: str | Path, sample_rate_hz: int = 16000) -> None:
        self.path = Path(path).expanduser()
        self.sample_rate_hz = sample_rate_hz
        self.label = f"audio file {self.path}"
        self.decode_errors = 0
        if not self.path.exists():
            raise AudioInputError(f"{self.label}: not found; check the path")
        if not self.path.is_file():
            raise AudioInputError(f"{self.label}: is not a file; {FORMATS_HINT}")
        container = self._open()
        try:
            audio = container.streams.audio
            if not audio:
                fmt = container.format.name or ""
                if fmt == "image2" or fmt.endswith("_pipe"):
                    raise AudioInputError(f"{self.label}: is an image, not audio; {FORMATS_HINT}")
                if container.streams.video:
                    raise AudioInputError(f"{self.label}: is a video without an audio track; use a file with sound or --audio none")
                raise AudioInputError(f"{self.label}: has no audio track; {FORMATS_HINT}")
            stream = audio[0]
            self.native_rate_hz = int(stream.rate or stream.codec_context.sample_rate or 0)
            self.channels = int(stream.channels or 0)
            self.codec = stream.codec_context.name
            self.has_video = bool(container.streams.video)
            self.duration_s = self._duration(container, stream)
            # MP4/M4A durations are exact (edit lists); decoders pad the last AAC frame past them.
            exact = "mp4" in container.format.name and self.duration_s is not None
            self._max_samples = round(self.duration_s * sample_rate_hz) if exact and self.duration_s else None
            # A file that opens but gives no audio (truncated header, wrong extension) fails here, not mid-render.
            first = self._first_samples(container, stream)
            if first == 0:
                raise AudioInputError(f"{self.label}: contains no decodable audio (corrupt?); {FORMATS_HINT}")
        finally:
            container.close()

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
            reason = "corrupt or not a media file" if isinstance(exc, av.error.InvalidDataError | ValueError) else str(exc)
            raise AudioInputError(f"{self.label}: cannot be decoded ({reason}); {FORMATS_HINT}") from None

    @staticmethod
    def _duration(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if container.duration is not None:
            return container.duration / av.time_base
        return None

    def _first_samples(self, container: av.container.InputContainer, stream: av.AudioStream) -> int:
        try:
            for packet in container.demux(stream):
                try:
                    for frame in packet.decode():
                        if frame.samples:
                            return int(frame.samples)
                except av.error.FFmpegError:
                    continue
        except av.error.FFmpegError:
            return 0
        return 0

    def _max_samples_at(self, rate_hz: int) -> int | None:
        """The exact length in samples at `rate_hz` when the container states it exactly (MP4), else None."""
        if self._max_samples is None or self.duration_s is None:
            return None
        return round(self.duration_s * rate_hz)

    def chunks(self) -> Iterator[np.ndarray]:
        """Decoded, resampled mono float32 chunks of whatever size the codec gives (clipped to [-1, 1])."""
        left = self._max_samples
        for chunk in self._decoded():
            if left is not None:
                chunk = chunk[:left]
                left -= len(chunk)
            if len(chunk):
                yield chunk
            if left is not None and left <= 0:
                return

    def _decoded(self) -> Iterator[np.ndarray]:
        container = self._open()
        try:
            stream = container.streams.audio[0]
            stream.codec_context.thread_type = "AUTO"
            resampler = av.AudioResampler(format="fltp", rate=self.sample_rate_hz)  # keep channels: we average them
            for packet in self._packets(container, stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    self._bad_packet(exc)
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        yield _mono(out)
            for out in resampler.resample(None):
                yield _mono(out)
        finally:
            container.close()

    def av_frames(self, rate_hz: int, layout: str, frame_size: int | None = None) -> Iterator[av.AudioFrame]:
        """Decoded frames resampled to float planar `rate_hz` / `layout` (for re-encoding), in order."""
        container = self._open()
        try:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate_hz, frame_size=frame_size)
            for packet in self._packets(container, stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:
                    self._bad_packet(exc)
                    continue
                for frame in frames:
                    frame.pts = None  # timestamps are assigned by sample count downstream
                    yield from resampler.resample(frame)
            yield from resampler.resample(None)
        finally:
            container.close()

    def _packets(self, container: av.container.InputContainer, stream: av.AudioStream) -> Iterator[av.Packet[av.AudioStream]]:
        demux = container.demux(stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:  # a damaged tail: keep what was decoded
                self._bad_packet(exc)
                return
            yield packet

    def _bad_packet(self, exc: Exception) -> None:
        self.decode_errors += 1
        if self.decode_errors == 1:
            log.warning("%s: skipping undecodable data (%s); further errors are only counted", self.label, exc)

    def blocks(self, block_s: float = 0.01) -> Iterator[np.ndarray]:
        """Blocks of exactly round(block_s * rate) samples; the last one may be shorter."""
        n = max(1, round(block_s * self.sample_rate_hz))
        pending = np.zeros(0, np.float32)
        for chunk in self.chunks():
            pending = np.concatenate([pending, chunk]) if len(pending) else chunk
            while len(pending) >= n:
                yield pending[:n].copy()
                pending = pending[n:]
        if len(pending):
            yield pending.copy()


def _mono(frame: av.AudioFrame) -> np.ndarray:
    x = frame.to_ndarray()  # planar: (channels, samples)
    mono = x[0] if x.shape[0] == 1 else x.mean(axis=0)
    return np.clip(mono.astype(np.float32, copy=False), -1.0, 1.0)


def iter_audio_blocks(path: str | Path, sample_rate_hz: int = 16000, block_s: float = 0.01) -> Iterator[np.ndarray]:
    """Mono float32 blocks of `block_s` seconds at `sample_rate_hz` (bounded memory for any length).

    The file is checked now: AudioInputError is raised here, not at the first block.
    """
    return AudioFileReader(path, sample_rate_hz).blocks(block_s)


def decode_audio(path: str | Path, sample_rate_hz: int = 16000) -> np.ndarray:
    """The whole file as one mono float32 array (for short files)."""
    reader = AudioFileReader(path, sample_rate_hz)
    parts = list(reader.chunks())
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def probe_audio(path: str | Path) -> AudioFileReader:
    """Check a file now (raises AudioInputError) and return its reader (duration_s, native_rate_hz, ...)."""
    return AudioFileReader(path)
