"""Closed eyelids: skin over the eye when the driven lids nearly meet (a blink), with a lash line where they meet.

The warp alone narrows the eye but leaves the iris in the slit (and the eye layer and the gaze keep it
there on purpose, for squints and smiles). A lid closes when the driver's does: its eye opening (relative to
its neutral, `MotionState.eye_open`; idle motion blinks through it too) falls from `OPEN` to `CLOSED`, and
the output's lid gap is narrow as well (below `GAP_OPEN` of the portrait's own gap, so a lid never covers a
wide-open eye). An eye narrowed by an expression (anger) while the driver's eyes are open stays open.
Closing, the opening is covered by the portrait's upper-lid skin (its pixels just above the eye, moved down
into the opening: the face's own colour, light and texture) and a thin dark lash line along its middle.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.animation.meshwarp.mouth_layers import overlay_eye
from src.animation.meshwarp.scalar import clamp
from src.core.face_mesh import (
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_RING,
    LEFT_EYE_UPPER,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_RING,
    RIGHT_EYE_UPPER,
)

OPEN, CLOSED = 0.6, 0.35  # the driver's eye opening (1 = its neutral): above OPEN nothing is drawn, at CLOSED all
GAP_OPEN, GAP_CLOSED = 0.8, 0.55  # the same ramp on the output's lid gap / the portrait's
EYES = ((LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_RING, LEFT_EYE_CORNERS),
        (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_RING, RIGHT_EYE_CORNERS))


def _ramp(value: float, open_at: float, closed_at: float) -> float:
    return clamp((open_at - value) / (open_at - closed_at), 0.0, 1.0)


def closure(eye_open: float, gap: float, source_gap: float) -> float:
    """0 (open: draw nothing) .. 1 (closed: the lid covers the opening)."""
    return min(_ramp(eye_open, OPEN, CLOSED), _ramp(gap / max(source_gap, 1e-3), GAP_OPEN, GAP_CLOSED))


def close_eyelids(out: np.ndarray, source: np.ndarray, src: np.ndarray, dst: np.ndarray, source_gaps: tuple[float, float],
                  eye_open: tuple[float, float], up: np.ndarray, iod: float) -> None:
    """Cover each closing eye of `out` (in place). `src` / `dst`: the mesh points in the portrait and now,
    `source_gaps`: the portrait's lid gaps (px), `eye_open`: the driver's (left, right; 1 = neutral),
    `up`: the face's up direction in the portrait (unit, image x y)."""
    for (upper, lower, ring, corners), source_gap, driver_open in zip(EYES, source_gaps, eye_open, strict=True):
        gap = float(dst[lower[2:-2], 1].mean() - dst[upper[2:-2], 1].mean())
        amount = closure(driver_open, gap, source_gap)
        if amount <= 0.01:
            continue
        lift = up[:2] * source_gap * 1.1  # the skin just above the upper lid
        overlay_eye(out, source, src[ring, :2] + lift, dst[ring, :2], src[list(corners), :2] + lift, dst[list(corners), :2],
                    amount)
        _lash_line(out, dst, upper, lower, corners, amount, iod)


def _lash_line(out: np.ndarray, dst: np.ndarray, upper: list[int], lower: list[int], corners: tuple[int, int], amount: float,
               iod: float) -> None:
    line = np.vstack([dst[corners[0], :2], (dst[upper, :2] + dst[lower, :2]) / 2, dst[corners[1], :2]])
    pad = 4
    x0, y0 = np.floor(line.min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(line.max(axis=0)).astype(int) + pad
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, out.shape[1]), min(y1, out.shape[0])
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    thickness = max(1, int(round(iod * 0.012)))
    cv2.polylines(mask, [np.round((line - (x0, y0)) * 4).astype(np.int32)], False, (255,), thickness, cv2.LINE_AA, shift=2)
    roi = out[y0:y1, x0:x1].astype(np.float32)
    alpha = mask.astype(np.float32)[..., None] * (0.7 * amount / 255.0)
    out[y0:y1, x0:x1] = (roi * (1.0 - alpha) + roi * 0.5 * alpha + 0.5).astype(np.uint8)  # lashes: the skin darkened
