"""bgr_to_i420 gives what FFmpeg's swscale gives (PyAV's own conversion), within 2 levels."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from src.output.yuv import bgr_to_i420


def _swscale(bgr: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format="yuv420p").to_ndarray()


@pytest.mark.parametrize("kind", ["portrait", "noise", "edges"])
def test_matches_swscale(portrait_bgr: np.ndarray, kind: str) -> None:
    if kind == "portrait":
        bgr = cv2.resize(portrait_bgr, (512, 512))
    elif kind == "noise":
        bgr = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    else:  # saturated colour blocks with hard edges: where top-left chroma sampling would fray
        bgr = np.zeros((64, 96, 3), np.uint8)
        bgr[:, 31:] = (0, 0, 255)
        bgr[17:, 63:] = (255, 0, 0)
        bgr[41:, :47] = (0, 255, 0)
    ours, ref = bgr_to_i420(bgr).astype(int), _swscale(bgr).astype(int)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 2
    # OpenCV's own I420 (top-left chroma) is further off on hard edges: the averaging is what matches
    if kind == "edges":
        assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).astype(int) - ref).max() > 20


def test_odd_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        bgr_to_i420(np.zeros((31, 40, 3), np.uint8))
