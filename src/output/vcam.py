"""Virtual camera output (pyvirtualcam): OBS, Zoom, Meet and browsers see us as a webcam.

`write()` (the fan-out thread) converts the newest frame to the camera's pixel
format and leaves it for the sender thread, which feeds the camera at its own
fps: a frame that arrives on time goes out at once; when the pipeline is late the
last frame is repeated, so apps never see the camera stall; a faster pipeline
is thinned to the camera's rate. Nothing here ever blocks the pipeline.
"""

from __future__ import annotations

import logging
import platform
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import pyvirtualcam

from src.core.config import AppConfig, VcamOutputConfig
from src.core.errors import OutputError
from src.core.frames import RenderedFrame
from src.core.runtime.log_once import ErrorTally
from src.core.runtime.threads import name_os_thread
from src.output.base import OUTPUTS, Output

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 2.0
EARLY_FRACTION = 0.25  # a new frame may go out this fraction of a period before its slot
LATE_FRACTION = 0.25  # the last frame is repeated this fraction of a period after a missed slot

LINUX_HINT = (
    'load v4l2loopback: sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="puppetcam" '
    "(package v4l2loopback-dkms), then retry"
)
WINDOWS_HINT = "install OBS Studio (28 or newer), click 'Start Virtual Camera' in it once, then retry"
MACOS_HINT = (
    "install OBS Studio (28 or newer), click 'Start Virtual Camera' in it once "
    "(allow its system extension when asked), then retry"
)
_NO_DEVICE_MARKERS = ("no v4l2 loopback device", "not installed", "not found", "no such device", "not available")

_FORMATS = {
    "bgr": pyvirtualcam.PixelFormat.BGR,
    "rgb": pyvirtualcam.PixelFormat.RGB,
    "i420": pyvirtualcam.PixelFormat.I420,
}


def platform_hint(system: str | None = None) -> str:
    """How to get a virtual camera on this (or the named) OS."""
    system = system or platform.system()
    if system == "Linux":
        return LINUX_HINT
    if system == "Windows":
        return WINDOWS_HINT
    if system == "Darwin":
        return MACOS_HINT
    return f"no virtual camera backend exists for {system}; use --output webrtc or --output window instead"


def no_camera_error(system: str | None = None) -> OutputError:
    """The one-line user error for 'there is no virtual camera on this machine'."""
    return OutputError(f"--output vcam: no virtual camera found; {platform_hint(system)}")


def one_line(text: str) -> str:
    return " | ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _to_format(image_bgr: np.ndarray, fmt: pyvirtualcam.PixelFormat) -> np.ndarray:
    if fmt == pyvirtualcam.PixelFormat.BGR:
        # A copy: the sender thread reads it later, and the frame's buffer is not ours to hold.
        return np.array(image_bgr, order="C", copy=True)
    if fmt == pyvirtualcam.PixelFormat.RGB:
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    if fmt == pyvirtualcam.PixelFormat.I420:
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2YUV_I420)  # (H * 3/2, W), the planar layout
    raise ValueError(f"unsupported pixel format {fmt}")


def open_camera(
    width: int, height: int, fps: float, device: str | None, backend: str | None, pixel_format: str
) -> pyvirtualcam.Camera:
    """Open a virtual camera, trying BGR, RGB, then I420 unless a format is configured.

    Raises OutputError: the platform's install hint when no camera exists, else the backends' reasons.
    """
    if backend is not None and backend not in pyvirtualcam.camera.BACKENDS:
        known = ", ".join(sorted(pyvirtualcam.camera.BACKENDS)) or "none on this platform"
        raise OutputError(f"output.vcam.backend {backend!r}: not available here; known: {known}")
    if not pyvirtualcam.camera.BACKENDS:
        raise no_camera_error()
    formats = [_FORMATS[pixel_format]] if pixel_format != "auto" else list(_FORMATS.values())
    reasons: list[str] = []
    for fmt in formats:
        try:
            return pyvirtualcam.Camera(width, height, fps, fmt=fmt, device=device, backend=backend)
        except (RuntimeError, ValueError, TypeError, OSError) as exc:
            reasons.append(one_line(str(exc)))
    text = reasons[0] if len(set(reasons)) == 1 else "; ".join(f"{f}: {r}" for f, r in zip(formats, reasons, strict=True))
    if device is None and all(any(m in r.lower() for m in _NO_DEVICE_MARKERS) for r in reasons):
        raise no_camera_error()
    where = f"--output vcam:{device}" if device else "--output vcam"
    raise OutputError(f"{where}: cannot open the virtual camera ({text}); {platform_hint()}")


@dataclass
class VcamStats:
    """What the sender thread did (read from any thread)."""

    frames_in: int = 0  # frames handed over by write()
    sent: int = 0  # frames sent to the camera, repeats included
    repeats: int = 0  # sends of an already-sent frame (the pipeline was late)
    skipped: int = 0  # frames replaced by a newer one before they could be sent
    errors: int = 0


class VirtualCameraOutput(Output):
    """`--output vcam[:DEVICE]`: frames go to a virtual camera at the camera's own fps."""

    name = "vcam"
    realtime = True

    def __init__(self, arg: str | None = None, config: AppConfig | None = None) -> None:
        self.cfg = config.output.vcam if config else VcamOutputConfig()
        self.device = arg or self.cfg.device
        self.camera: pyvirtualcam.Camera | None = None
        self.stats = VcamStats()
        self._cond = threading.Condition()
        self._fresh: np.ndarray | None = None  # converted, not yet sent
        self._last: np.ndarray | None = None  # the last frame sent (repeated when late)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._size = (0, 0)
        self._send_errors = ErrorTally(log, "virtual camera: send failed (%s); further identical errors are only counted")

    @property
    def backend(self) -> str | None:
        return self.camera.backend if self.camera is not None else None

    def open(self, width: int, height: int, fps: float) -> None:
        w = self.cfg.width_px or width
        h = self.cfg.height_px or height
        cam_fps = self.cfg.fps or fps
        self.camera = open_camera(w, h, cam_fps, self.device, self.cfg.backend, self.cfg.pixel_format)
        self._size = (w, h)
        self.fps = cam_fps
        log.info("virtual camera %s (%s backend): %dx%d @ %.1f fps, %s", self.camera.device, self.camera.backend, w, h,
                 cam_fps, self.camera.fmt)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="output:vcam-sender", daemon=True)
        self._thread.start()

    def write(self, frame: RenderedFrame) -> None:
        if self.camera is None:
            raise RuntimeError("VirtualCameraOutput.write before open()")
        image = frame.image
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self.cfg.mirror:
            image = cv2.flip(image, 1)
        data = _to_format(image, self.camera.fmt)
        with self._cond:
            if self._fresh is not None:
                self.stats.skipped += 1
            self._fresh = data
            self.stats.frames_in += 1
            self._cond.notify()

    def _next(self, due: float) -> tuple[np.ndarray | None, bool, float]:
        """Wait for the next send: (data, is_repeat, due); data None when stopping."""
        period = 1.0 / self.fps
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._fresh is not None and now >= due - EARLY_FRACTION * period:
                    data, self._fresh = self._fresh, None
                    return data, False, due
                if self._fresh is None and self._last is not None and now >= due + LATE_FRACTION * period:
                    return self._last, True, due
                if self._fresh is not None:
                    wake = due - EARLY_FRACTION * period
                elif self._last is not None:
                    wake = due + LATE_FRACTION * period
                else:
                    wake = now + 0.1
                self._cond.wait(max(wake - now, 0.0005))
        return None, False, due

    def _run(self) -> None:
        name_os_thread()
        assert self.camera is not None
        period = 1.0 / self.fps
        due = time.monotonic()
        while True:
            data, repeat, due = self._next(due)
            if data is None:
                break
            try:
                self.camera.send(data)
            except Exception as exc:  # noqa: BLE001 - one failed send never ends the stream
                self.stats.errors += 1
                self._send_errors.report(exc)
            self._last = data
            self.stats.sent += 1
            self.stats.repeats += int(repeat)
            now = time.monotonic()
            # The next slot is one period after this one; if we fell far behind (a long
            # stall) restart the schedule from now instead of bursting to catch up.
            due = due + period if now - due < period else now + period

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("virtual camera: sender thread did not stop within %.1f s", JOIN_TIMEOUT_S)
            self._thread = None
        if self.camera is not None:
            try:
                self.camera.close()
            finally:
                self.camera = None
                log.info("virtual camera: %d frames sent (%d repeats)", self.stats.sent, self.stats.repeats)


OUTPUTS.register("vcam", VirtualCameraOutput)
