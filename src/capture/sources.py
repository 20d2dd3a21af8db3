"""Driver capture: webcam, video file, still image. All produce `VideoFrame`s.

`open_capture("webcam:0" | "path/to/video.mp4" | "photo.jpg" | "none", config)`.
Webcams and video files both go through cv2.VideoCapture (so tests drive the
webcam code with files). Live sources are paced to their fps; offline reads
run as fast as decoding allows.
"""

from __future__ import annotations

import glob
import logging
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import cv2
import numpy as np

from src.capture.quiet import quiet_stderr
from src.core.config import AppConfig
from src.core.errors import CaptureError
from src.core.frames import VideoFrame
from src.core.runtime.pacing import Pacer

log = logging.getLogger(__name__)
cv2.setLogLevel(2)  # errors only (LOG_LEVEL_ERROR): probing cameras must not spam stderr

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
MAX_CORRUPT_IN_A_ROW = 30


class CaptureSource(ABC):
    """A driver of frames. `read()` returns the next frame, or None at the end of the stream."""

    name = "capture"
    live = True  # a camera (frames come at their own pace; stale frames are worthless)

    def __init__(self) -> None:
        self.fps = 30.0
        self.size = (0, 0)
        self.index = 0
        self.corrupt_frames = 0
        self.last_read_s = 0.0  # time the last read() spent decoding (excluding pacing waits)

    @abstractmethod
    def read(self) -> VideoFrame | None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> CaptureSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def list_cameras(max_index: int = 8) -> list[str]:
    """Cameras that open, as 'index: description'. On Linux, the /dev/video* nodes that capture."""
    found: list[str] = []
    if sys.platform.startswith("linux"):
        for dev in sorted(glob.glob("/dev/video*"), key=lambda p: int(p.removeprefix("/dev/video") or 0)):
            idx = int(dev.removeprefix("/dev/video") or 0)
            cap = cv2.VideoCapture(idx, cv2.CAP_V4L2)
            try:
                if cap.isOpened():
                    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
                    found.append(f"{idx}: {dev} {w}x{h}")
            finally:
                cap.release()
        return found
    for idx in range(max_index):
        cap = cv2.VideoCapture(idx)
        try:
            if cap.isOpened():
                found.append(f"{idx}: camera {idx}")
        finally:
            cap.release()
    return found


class VideoCaptureSource(CaptureSource):
    """Frames from cv2.VideoCapture: a webcam (index or device path) or a video file."""

    def __init__(self, target: int | str, config: AppConfig, *, is_camera: bool, realtime: bool, loop: bool = False):
        super().__init__()
        self.target = target
        self.is_camera = is_camera
        self.live = is_camera
        self.loop = loop
        self.realtime = realtime
        cc = config.capture
        label = f"webcam {target}" if is_camera else f"driver video {target}"
        self.label = label
        if is_camera:
            backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") and isinstance(target, int) else cv2.CAP_ANY
            self._cap = cv2.VideoCapture(target, backend)
            if not self._cap.isOpened():
                cams = list_cameras()
                have = "; ".join(cams) if cams else "no camera was found"
                raise CaptureError(f"{label}: cannot be opened; cameras available: {have}. Use --driver webcam:N or a video file")
            if cc.mjpg:
                self._cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, cc.width_px)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cc.height_px)
            self._cap.set(cv2.CAP_PROP_FPS, cc.fps)
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a stale queue
        else:
            path = Path(str(target))
            if not path.is_file():
                raise CaptureError(f"{label}: file not found; check the path or use --driver webcam")
            with quiet_stderr():  # FFmpeg prints "moov atom not found" and the like for broken files
                self._cap = cv2.VideoCapture(str(path))
                opened = self._cap.isOpened()
                ok, first = self._cap.read() if opened else (False, None)
            if not opened:
                raise CaptureError(f"{label}: cannot be decoded; use a video file that plays in a media player (mp4, mov, avi, mkv)")
        if is_camera:
            ok, first = self._cap.read()
        if not ok or first is None or first.size == 0:
            self._cap.release()
            if is_camera:
                raise CaptureError(f"{label}: opened but gives no frames; close other programs using it or pick another camera")
            raise CaptureError(f"{label}: has no readable video frames (corrupt or not a video); re-encode it or pick another file")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 1.0 <= fps <= 240.0 else float(cc.fps)
        self.size = (first.shape[1], first.shape[0])
        self.frame_count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not is_camera else 0
        self._pending: np.ndarray | None = first
        self._media_index = 0
        self._pacer = Pacer(self.fps) if (realtime and not is_camera) else None
        self._corrupt_run = 0
        self._loop_offset = 0.0

    def _grab(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        while True:
            ok, frame = self._cap.read()
            if ok and frame is not None and frame.size:
                self._corrupt_run = 0
                return frame
            if self.is_camera:
                self._corrupt_run += 1
                self.corrupt_frames += 1
                if self._corrupt_run > MAX_CORRUPT_IN_A_ROW:
                    raise CaptureError(f"{self.label}: stopped delivering frames; check the cable or the camera")
                time.sleep(0.01)
                continue
            # OpenCV's position does not advance on a failed read: count from our own index.
            if self.frame_count and self._media_index < self.frame_count - 1 and self._corrupt_run < MAX_CORRUPT_IN_A_ROW:
                # A corrupt frame in the middle of the file: skip and count it.
                self._corrupt_run += 1
                self.corrupt_frames += 1
                self._media_index += 1
                continue
            if self.loop and self._media_index > 0:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._loop_offset += self._media_index / self.fps
                self._media_index = 0
                continue
            return None

    def read(self) -> VideoFrame | None:
        if self._pacer is not None:
            self._pacer.wait()  # a file plays at its own fps; a camera paces itself
        t0 = time.perf_counter()
        image = self._grab()
        self.last_read_s = time.perf_counter() - t0
        if image is None:
            return None
        ts = time.monotonic()
        media_time = None if self.is_camera else self._loop_offset + self._media_index / self.fps
        frame = VideoFrame(image=image, capture_ts=ts, index=self.index, media_time_s=media_time)
        self.index += 1
        self._media_index += 1
        return frame

    def close(self) -> None:
        self._cap.release()


class ImageSource(CaptureSource):
    """A still photo as the driver, repeated at `fps`."""

    live = False

    def __init__(self, path: str, config: AppConfig, *, realtime: bool):
        super().__init__()
        self.image = read_image(path, "driver image")
        self.fps = config.capture.fps
        self.size = (self.image.shape[1], self.image.shape[0])
        self._pacer = Pacer(self.fps) if realtime else None

    def read(self) -> VideoFrame | None:
        if self._pacer is not None:
            self._pacer.wait()
        self.last_read_s = 0.0
        frame = VideoFrame(self.image, time.monotonic(), self.index, self.index / self.fps)
        self.index += 1
        return frame


def read_image(path: str | Path, what: str = "source image") -> np.ndarray:
    """Read an image as BGR uint8, or raise a one-line user error naming it."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CaptureError(f"{what} {p}: file not found; check the path")
    data = np.fromfile(str(p), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.size == 0:
        raise CaptureError(f"{what} {p}: cannot be read as an image; use a PNG or JPEG photo")
    return image


def parse_driver(spec: str | None) -> tuple[str, str | int | None]:
    """'none' -> ('none', None); 'webcam' -> ('webcam', 0); 'webcam:2' -> ('webcam', 2); a path -> ('file', path)."""
    if spec is None or spec.strip().lower() in ("", "none"):
        return "none", None
    s = spec.strip()
    if s.lower() == "webcam":
        return "webcam", 0
    if s.lower().startswith("webcam:"):
        arg = s.split(":", 1)[1]
        return "webcam", int(arg) if arg.isdigit() else arg
    return "file", s


def open_capture(spec: str | None, config: AppConfig, *, realtime: bool = True, loop: bool | None = None) -> CaptureSource | None:
    """Open the driver named by `spec` (see parse_driver); None for 'none'."""
    kind, arg = parse_driver(spec)
    if kind == "none":
        return None
    if kind == "webcam":
        return VideoCaptureSource(arg if arg is not None else 0, config, is_camera=True, realtime=realtime)
    path = str(arg)
    if Path(path).suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path, config, realtime=realtime)
    return VideoCaptureSource(path, config, is_camera=False, realtime=realtime, loop=config.capture.loop if loop is None else loop)
