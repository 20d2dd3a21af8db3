"""Driver motion relative to a neutral face: head pose, translation, scale, expression.

The neutral reference is the average of the first `neutral_frames` frames after
a face appears (re-taken on request: the window's `n` key). Landmarks are
smoothed with a One-Euro filter in inter-ocular units before anything else.
"""

from __future__ import annotations

import threading

import numpy as np

from src.capture.lid_filter import LidFilter
from src.capture.one_euro import OneEuroFilter
from src.core.config import TrackingConfig
from src.core.face_mesh import (
    LEFT_BROW,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    MOUTH_CORNERS,
    RIGHT_BROW,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    STABLE_POINTS,
    face_frame,
    interocular,
    similarity_transform,
)
from src.core.frames import FaceObservation, MotionState, MouthShape


def _lid_gap(local: np.ndarray, upper: list[int], lower: list[int], corners: tuple[int, int]) -> float:
    width = float(np.linalg.norm(local[corners[0], :2] - local[corners[1], :2])) + 1e-9
    return float(local[lower[2:-2], 1].mean() - local[upper[2:-2], 1].mean()) / width


class FaceMotionExtractor:
    """Turns tracked faces into `MotionState`s relative to the driver's neutral face."""

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        sm = self.cfg.smoothing
        self._filter = OneEuroFilter(sm.min_cutoff_hz, sm.beta, sm.d_cutoff_hz) if sm.enabled else None
        self._lids = LidFilter(sm.min_cutoff_hz, sm.lid_beta, sm.lid_d_cutoff_hz) if sm.enabled and sm.lid_beta > sm.beta else None
        self._lock = threading.Lock()
        self._reset_requested = False
        self._clear()

    def _clear(self) -> None:
        self._neutral_sum: np.ndarray | None = None
        self._neutral_n = 0
        self.neutral: np.ndarray | None = None  # (478, 3) px, averaged
        self._neutral_local: np.ndarray | None = None  # in the neutral face frame, IOD units
        self._neutral_axes: np.ndarray | None = None
        self._neutral_iod = 1.0
        self._last_seen: float | None = None
        if self._filter is not None:
            self._filter.reset()
        if self._lids is not None:
            self._lids.reset()

    def reset_neutral(self) -> None:
        """Re-take the neutral face from the next frames (thread-safe)."""
        with self._lock:
            self._reset_requested = True

    @property
    def has_neutral(self) -> bool:
        return self.neutral is not None and self._neutral_n >= self.cfg.neutral_frames

    def update(self, face: FaceObservation | None, ts: float) -> MotionState | None:
        """Motion for this frame, or None when no face is tracked."""
        with self._lock:
            if self._reset_requested:
                self._reset_requested = False
                self._clear()
        if face is None:
            if self._last_seen is not None and (ts - self._last_seen) * 1000.0 > self.cfg.lost_after_ms:
                # The face is gone: the next appearance gets a fresh neutral and filter state.
                self._clear()
            return None
        self._last_seen = ts
        lm = face.landmarks.astype(np.float64)
        iod = interocular(lm)
        if iod < 1.0:
            return None
        if self._filter is not None:
            filtered = self._filter(lm / iod, ts)
            if self._lids is not None:  # blinks survive the smoothing (see lid_filter.py)
                filtered = self._lids(lm / iod, filtered, ts)
            lm = filtered * iod
        self._accumulate_neutral(lm)
        return self._motion(lm)

    def _accumulate_neutral(self, lm: np.ndarray) -> None:
        if self._neutral_n >= self.cfg.neutral_frames:
            return
        if self._neutral_sum is None:
            self._neutral_sum = np.zeros_like(lm)
        if self.neutral is not None:
            # Average in the first frame's pose so small head motion does not blur the neutral.
            s, r, t = similarity_transform(lm[STABLE_POINTS], self.neutral[STABLE_POINTS] if self._neutral_n else lm[STABLE_POINTS])
            lm = (s * (r @ lm.T)).T + t
        self._neutral_sum += lm
        self._neutral_n += 1
        self.neutral = self._neutral_sum / self._neutral_n
        origin, axes = face_frame(self.neutral)
        self._neutral_iod = interocular(self.neutral)
        self._neutral_axes = axes
        self._neutral_origin = origin
        self._neutral_local = (self.neutral - origin) @ axes / self._neutral_iod
        # What `_motion` compares every frame with: the neutral's own lid gaps, brows and mouth width (once).
        n_local = self._neutral_local
        self._neutral_eyes = (_lid_gap(n_local, LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS),
                              _lid_gap(n_local, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS))
        self._neutral_brows = (n_local[LEFT_BROW, 1].mean(), n_local[RIGHT_BROW, 1].mean())
        self._neutral_width = float(np.linalg.norm(n_local[MOUTH_CORNERS[0], :2] - n_local[MOUTH_CORNERS[1], :2])) + 1e-9

    def _motion(self, lm: np.ndarray) -> MotionState:
        assert self.neutral is not None and self._neutral_local is not None and self._neutral_axes is not None
        neutral = self.neutral
        s, rot, t = similarity_transform(neutral[STABLE_POINTS], lm[STABLE_POINTS])
        # Expression: the current face with its rigid motion removed, in the neutral's face frame.
        unposed = (rot.T @ ((lm - t).T / s)).T
        local = (unposed - self._neutral_origin) @ self._neutral_axes / self._neutral_iod
        expression = (local - self._neutral_local).astype(np.float32)
        # Translation of the head centre, in neutral inter-ocular units.
        c0 = neutral[STABLE_POINTS].mean(axis=0)
        c1 = lm[STABLE_POINTS].mean(axis=0)
        translation = ((c1 - c0)[:2] / self._neutral_iod).astype(np.float32)
        eye_l = _lid_gap(local, LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS)
        eye_r = _lid_gap(local, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS)
        eye_l0, eye_r0 = self._neutral_eyes
        brow_l = float(-(local[LEFT_BROW, 1].mean() - self._neutral_brows[0]))
        brow_r = float(-(local[RIGHT_BROW, 1].mean() - self._neutral_brows[1]))
        gap = float(local[[14, 87, 317], 1].mean() - local[[13, 82, 312], 1].mean())
        width = float(np.linalg.norm(local[MOUTH_CORNERS[0], :2] - local[MOUTH_CORNERS[1], :2]))
        width0 = self._neutral_width
        _, abs_axes = face_frame(lm)
        return MotionState(
            rotation=rot.astype(np.float32),
            translation=translation,
            scale=float(s),
            eye_open=(eye_l / max(eye_l0, 1e-3), eye_r / max(eye_r0, 1e-3)),
            brow_raise=(brow_l, brow_r),
            mouth=MouthShape(open=max(0.0, gap), width=width / width0 - 1.0, round=0.0, closed=0.0),
            expression=expression,
            face_present=True,
            absolute_rotation=abs_axes.astype(np.float32),
            param_weight=0.0,
            mouth_weight=0.0,
        )
