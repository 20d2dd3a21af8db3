"""Eyelids smoothed on their own, relative to their eye's corners, so a blink survives the landmark filter.

A blink closes the lids in two or three frames at 30 fps. The landmark One-Euro filter (tuned so the head
and the mouth are steady at rest) takes most of it away: on the shared clip the driver's lids close to
0.24 of their open gap, the filtered ones only to 0.69. Here each lid point is taken relative to the
mean of its eye's two corners and filtered with a much higher `beta` (its cutoff rises quickly with the
lid's speed), then put back on the filtered corners, so the lids stay attached to the eye as the head
moves and follow a blink (0.30 on the shared clip), while at rest they are still smoothed.
"""

from __future__ import annotations

import numpy as np

from src.capture.one_euro import OneEuroFilter
from src.core.face_mesh import (
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
)

EYES = ((LEFT_EYE_UPPER + LEFT_EYE_LOWER, list(LEFT_EYE_CORNERS)), (RIGHT_EYE_UPPER + RIGHT_EYE_LOWER, list(RIGHT_EYE_CORNERS)))


class LidFilter:
    """`filtered = lids(raw, filtered, t)`: the lid points of `filtered` replaced (both arrays in IOD units)."""

    def __init__(self, min_cutoff_hz: float, beta: float, d_cutoff_hz: float) -> None:
        self._filter = OneEuroFilter(min_cutoff_hz, beta, d_cutoff_hz)

    def reset(self) -> None:
        self._filter.reset()

    def __call__(self, raw: np.ndarray, filtered: np.ndarray, t: float) -> np.ndarray:
        rel = np.concatenate([raw[lids] - raw[corners].mean(axis=0) for lids, corners in EYES])
        smooth = self._filter(rel, t)
        out = filtered.copy()
        start = 0
        for lids, corners in EYES:
            out[lids] = filtered[corners].mean(axis=0) + smooth[start : start + len(lids)]
            start += len(lids)
        return out
