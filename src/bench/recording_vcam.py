"""A pyvirtualcam backend that records what a camera app would receive: the virtual camera's fault double
for tests and benchmarks on machines without a camera device (no v4l2loopback here)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyvirtualcam

from src.output.timestamp_code import read_stamp, wall_ms_now


class RecordingVcamBackend:
    """A pyvirtualcam backend that records what a camera app would receive.

    Register it with `register_recording_backend()` and select it with
    `--set output.vcam.backend=recording`. Each instance (one per opened camera)
    keeps the size, pixel format, send times and, for stamped frames, the
    glass-to-glass latency (consumer wall clock minus the stamp). `accepted`
    lists the fourcc codes it takes (a fault double for backends without BGR).
    """

    accepted: tuple[str, ...] = ("24BG", "raw ", "I420")
    instances: list[RecordingVcamBackend] = []
    keep_frames = 0  # keep the last N frames (copies) for inspection

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any) -> None:
        code = pyvirtualcam.util.decode_fourcc(fourcc)
        if code not in self.accepted:
            raise ValueError(f"pixel format {code!r} not supported (takes {', '.join(self.accepted)})")
        self.width, self.height, self.fps, self.fourcc = width, height, fps, code
        self._device = device or "recording"
        self.send_ts: list[float] = []  # time.monotonic() of each send
        self.latency_ms: list[float] = []  # per new stamped frame: wall clock at send - stamp
        self.latency_ts: list[float] = []  # ... and when it was sent (monotonic)
        self.stamps: list[int | None] = []
        self.frames: list[np.ndarray] = []
        self.sizes: set[int] = set()
        self.closed = False
        type(self).instances.append(self)

    def _image(self, frame: np.ndarray) -> np.ndarray:
        if self.fourcc == "I420":
            return frame[: self.width * self.height].reshape(self.height, self.width)  # the Y plane
        return frame.reshape(self.height, self.width, 3)

    def send(self, frame: np.ndarray) -> None:
        now_ms = wall_ms_now()
        self.send_ts.append(time.monotonic())
        self.sizes.add(frame.size)
        image = self._image(frame)
        value = read_stamp(image)
        # A repeated frame shows old content: latency counts each stamp's first appearance.
        if value is not None and (not self.stamps or value != self.stamps[-1]):
            self.latency_ms.append(float(now_ms - value))
            self.latency_ts.append(self.send_ts[-1])
        self.stamps.append(value)
        if self.keep_frames:
            self.frames.append(image.copy())
            del self.frames[: -self.keep_frames]

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int | None:
        return pyvirtualcam.util.encode_fourcc(self.fourcc)


def register_recording_backend(name: str = "recording", accepted: tuple[str, ...] | None = None) -> type[RecordingVcamBackend]:
    """Register a recording backend under `name` (a fresh subclass, so its `instances` are its own)."""
    cls = type(f"RecordingVcamBackend_{name}", (RecordingVcamBackend,),
               {"instances": [], "accepted": accepted or RecordingVcamBackend.accepted})
    pyvirtualcam.register_backend(name, cls)
    return cls
