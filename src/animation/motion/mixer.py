"""Mixes the driver's motion, idle motion and the audio mouth into one MotionState per frame.

States: driven (a face is tracked) -> holding (face missing for less than
`tracking.lost_after_ms`: keep the last pose) -> idle (ease from the last pose
into idle motion over `idle.ease_ms`) -> driven again (blend from wherever the
avatar was over `idle.blend_in_ms`, so nothing jumps).
With audio: audio owns the mouth (configurable: `animation.mouth_owner`).
"""

from __future__ import annotations

import numpy as np

from src.animation.motion.idle import IdleMotion
from src.core.config import AppConfig
from src.core.frames import MotionState, MouthShape
from src.core.run_state import RunState


def _smooth(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _orthonormalize(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r.astype(np.float32)


def blend_motion(a: MotionState, b: MotionState, alpha: float) -> MotionState:
    """(1 - alpha) * a + alpha * b, with rotations re-orthonormalised and a missing expression as zeros."""
    if alpha <= 0.0:
        return a.copy()
    if alpha >= 1.0:
        return b.copy()
    k = float(alpha)
    lerp = lambda x, y: (1 - k) * x + k * y  # noqa: E731
    if a.expression is None and b.expression is None:
        expr = None
    else:
        ea = a.expression if a.expression is not None else np.zeros_like(b.expression)
        eb = b.expression if b.expression is not None else np.zeros_like(a.expression)
        expr = lerp(ea, eb).astype(np.float32)
    abs_rot = None
    if a.absolute_rotation is not None and b.absolute_rotation is not None:
        abs_rot = _orthonormalize(lerp(a.absolute_rotation, b.absolute_rotation))
    else:
        abs_rot = b.absolute_rotation if k >= 0.5 else a.absolute_rotation
    return MotionState(
        rotation=_orthonormalize(lerp(a.rotation, b.rotation)),
        translation=lerp(a.translation, b.translation).astype(np.float32),
        scale=lerp(a.scale, b.scale),
        eye_open=(lerp(a.eye_open[0], b.eye_open[0]), lerp(a.eye_open[1], b.eye_open[1])),
        brow_raise=(lerp(a.brow_raise[0], b.brow_raise[0]), lerp(a.brow_raise[1], b.brow_raise[1])),
        mouth=MouthShape(lerp(a.mouth.open, b.mouth.open), lerp(a.mouth.width, b.mouth.width),
                         lerp(a.mouth.round, b.mouth.round), lerp(a.mouth.closed, b.mouth.closed)),
        expression=expr,
        face_present=b.face_present if k >= 0.5 else a.face_present,
        absolute_rotation=abs_rot,
        param_weight=lerp(a.param_weight, b.param_weight),
        mouth_weight=lerp(a.mouth_weight, b.mouth_weight),
    )


class MotionMixer:
    """Not thread-safe: owned by the animate stage."""

    def __init__(self, config: AppConfig, start_time: float = 0.0, state: RunState | None = None) -> None:
        self.config = config
        self.state = state or RunState.from_config(config)
        self.idle = IdleMotion(config.idle, start_time)
        self._last_driven: MotionState | None = None
        self._last_face_t: float | None = None
        self._lost_at: float | None = None  # when idle took over
        self._from_state: MotionState | None = None  # what the avatar showed when the face came back
        self._return_t: float | None = None
        self._last_out: MotionState | None = None
        self.mode = "idle"

    def update(self, t: float, driven: MotionState | None, audio_mouth: MouthShape | None = None) -> MotionState:
        cfg = self.config
        lost_s = cfg.tracking.lost_after_ms / 1000.0
        idle_state = self.idle.state(t) if cfg.idle.enabled else MotionState(param_weight=1.0, mouth_weight=1.0)
        if driven is not None:
            if self.mode == "idle" and self._last_out is not None:
                self._from_state = self._last_out
                self._return_t = t
            self.mode = "driven"
            self._last_driven = driven
            self._last_face_t = t
            out = driven
            if self._return_t is not None and self._from_state is not None:
                u = (t - self._return_t) / max(cfg.idle.blend_in_ms / 1000.0, 1e-6)
                if u < 1.0:
                    out = blend_motion(self._from_state, driven, _smooth(u))
                else:
                    self._return_t = None
                    self._from_state = None
        elif self._last_driven is not None and self._last_face_t is not None and t - self._last_face_t < lost_s:
            self.mode = "holding"
            out = self._last_driven
        else:
            if self.mode != "idle":
                self._lost_at = t
                self.mode = "idle"
            out = idle_state
            if self._last_driven is not None and self._lost_at is not None:
                u = (t - self._lost_at) / max(cfg.idle.ease_ms / 1000.0, 1e-6)
                if u < 1.0:
                    out = blend_motion(self._last_driven, idle_state, _smooth(u))
                else:
                    self._last_driven = None
        if audio_mouth is not None and (self.state.mouth_owner == "audio" or self.mode != "driven"):
            out = out.copy()
            out.mouth = audio_mouth
            out.mouth_weight = 1.0
        self._last_out = out
        return out
