"""Media made in the test: ffmpeg runs, H.264 clips written with PyAV, rotated images."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest


def need_ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        pytest.skip("ffmpeg not installed (Debian package ffmpeg)")
    return exe


def ffmpeg(*args: str) -> None:
    cmd = [need_ffmpeg(), "-v", "error", "-y", *args]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 15.0) -> Path:
    """Write BGR frames as an H.264 mp4 with PyAV (real encoder, real container)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=int(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "18", "preset": "ultrafast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def rotate_image(img: np.ndarray, angle_deg: float, center: tuple[float, float] | None = None) -> np.ndarray:
    """cv2 rotation (positive = counter-clockwise on screen), edges replicated."""
    h, w = img.shape[:2]
    c = center or (w / 2, h / 2)
    m = cv2.getRotationMatrix2D(c, angle_deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
