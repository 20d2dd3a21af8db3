"""MP4 file output through PyAV: H.264, yuv420p, timestamps from the frames."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import cast

import av

from src.audio.pcm import PcmSource
from src.core.config import AppConfig, FileOutputConfig
from src.core.errors import OutputError
from src.core.frames import RenderedFrame
from src.output import crash_safe_mp4
from src.output.alpha import alpha_codec_for, bgra
from src.output.audio_mux import AudioMuxSource, LivePcmMux
from src.output.base import OUTPUTS, Output
from src.output.yuv import bgr_to_i420

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 90000)


def check_writable(path: Path, what: str = "output file") -> None:
    """Raise OutputError unless `path` can be created (its folder is made if missing)."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot create folder {parent} ({exc.strerror}); choose a writable path") from None
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a folder; give a file name such as {path / 'out.mp4'}")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"{what} {path}: not writable (permission denied); choose a writable path")


class FileOutput(Output):
    """Writes frames to a video file.

    Frames with a media time (offline render) are stamped with it; live frames
    are stamped with their capture time relative to the first frame, so the file
    plays back at the speed it was captured even when the rate varies.
    """

    name = "file"
    realtime = False
    accepts_audio = True

    def __init__(self, arg: str | None, config: AppConfig | None = None) -> None:
        if not arg:
            raise OutputError("--output file: missing path; use --output file:out/video.mp4")
        self.path = Path(arg).expanduser()
        self.cfg = config.output.file if config else FileOutputConfig()
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._t0: float | None = None
        self._last_pts = -1
        self.frames = 0
        self.audio: AudioMuxSource | None = None
        self._alpha = alpha_codec_for(self.path, config.animation.background if config else "keep")

    def attach_audio(self, source: PcmSource) -> None:
        """Live: mux the driving audio (a PcmSource: microphone or a file playing) beside the video."""

        self.audio = LivePcmMux(source, lambda: self._t0)

    def open(self, width: int, height: int, fps: float) -> None:
        check_writable(self.path)
        try:  # PyAV opens lazily: create the file now so an impossible path fails here, not mid-stream
            with open(self.path, "ab"):
                pass
        except OSError as exc:
            raise OutputError(f"output file {self.path}: cannot be created ({exc.strerror}); choose a writable path") from None
        if width % 2 or height % 2:
            raise OutputError(f"output file {self.path}: {width}x{height} is odd; H.264 needs even sizes (set animation.output_size_px)")
        try:
            # fragmented while it is written: playable up to a crash (src/output/crash_safe_mp4.py)
            opts = crash_safe_mp4.container_options() if crash_safe_mp4.applies(self.path) else {}
            self._container = av.open(str(self.path), mode="w", options=opts)
        except (av.error.FFmpegError, OSError) as exc:
            raise OutputError(f"output file {self.path}: cannot open for writing ({exc}); choose another path") from None
        alpha = self._alpha
        try:
            stream = cast(av.VideoStream, self._container.add_stream(alpha.codec if alpha else self.cfg.codec,
                                                                     rate=Fraction(fps).limit_denominator(1001)))
        except (av.error.FFmpegError, ValueError) as exc:
            self._container.close()
            raise OutputError(f"output.file.codec {self.cfg.codec!r}: not available ({exc}); use libx264") from None
        stream.width = width
        stream.height = height
        stream.pix_fmt = alpha.pix_fmt if alpha else "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = {**alpha.options} if alpha else {**crash_safe_mp4.encoder_options(self.cfg.crf, self.cfg.preset, fps, live=True)}
        self._stream = stream
        if self.audio is not None:
            self.audio.open(self._container)
        self._fps = fps

    def _pts(self, frame: RenderedFrame) -> int:
        if frame.media_time_s is not None:
            seconds = frame.media_time_s
        else:
            if self._t0 is None:
                self._t0 = frame.capture_ts
            seconds = frame.capture_ts - self._t0
        pts = int(round(seconds / TIME_BASE))
        if pts <= self._last_pts:  # never go backwards or repeat (a muxer error)
            pts = self._last_pts + 1
        self._last_pts = pts
        return pts

    def write(self, frame: RenderedFrame) -> None:
        assert self._container is not None and self._stream is not None, "open() first"
        if self.frames == 0 and frame.media_time_s is not None:  # offline: x264 may buffer and use its threads
            self._stream.options = {**crash_safe_mp4.encoder_options(self.cfg.crf, self.cfg.preset, self._fps, live=False)}
        if self._alpha is not None and self._alpha.pix_fmt.startswith("yuva"):
            vf = av.VideoFrame.from_ndarray(bgra(frame), format="bgra")
        elif self._stream.pix_fmt == "yuv420p" and frame.image.shape[0] % 2 == 0 and frame.image.shape[1] % 2 == 0:
            vf = av.VideoFrame.from_ndarray(bgr_to_i420(frame.image[..., :3]), format="yuv420p")  # (yuv.py: 3.5x faster)
        else:
            vf = av.VideoFrame.from_ndarray(frame.image[..., :3], format="bgr24")
        vf.pts = self._pts(frame)
        vf.time_base = TIME_BASE
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames += 1
        if self.audio is not None:
            self.audio.mux_until(self._container, vf.pts * TIME_BASE)

    def close(self) -> None:
        if self._container is None:
            return
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
            if self.audio is not None:
                self.audio.finish(self._container)
        finally:
            self._container.close()
            self._container = None
        if crash_safe_mp4.applies(self.path):
            crash_safe_mp4.finalize(self.path)  # a clean stop: the fragments become a plain MP4
        log.info("wrote %d frames to %s", self.frames, self.path)


OUTPUTS.register("file", FileOutput)
