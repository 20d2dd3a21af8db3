"""Expressions on demand: smile, surprise, anger, sadness, each with an intensity 0-1, over any motion.

Each expression is a field of landmark offsets (468 x 3) in the portrait's face
frame, inter-ocular units, built from its own landmarks like the face rig (a
smile lifts and widens the mouth corners and pushes the cheeks and lower lids
up; surprise raises the brows, opens the lids and drops the jaw; anger lowers
and draws the inner brows together, narrows the eyes and presses the lips;
sadness lifts the inner brows, droops the lids and pulls the corners down).
They add to whatever drives the face (the webcam's expression or idle motion).

Run-time API (thread-safe: the window's keys, a web route):

    animator.set_expression("smile", 0.7, hold_s=2.0)   # eases in, holds 2 s, eases out
    animator.set_expression("smile", 0.0)               # eases back to none
    # an unknown name raises UnknownExpressionError listing the known ones
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from src.animation.meshwarp.rig import BASES, FaceRig
from src.core.expressions import check_expression
from src.core.face_mesh import (
    LEFT_BROW,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    MOUTH_CORNERS,
    N_MESH,
    RIGHT_BROW,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
)

EASE_S = 0.25  # time to blend in or out
_INNER_BROW = (LEFT_BROW[3:5] + LEFT_BROW[8:10], RIGHT_BROW[3:5] + RIGHT_BROW[8:10])
_OUTER_BROW = (LEFT_BROW[0:2] + LEFT_BROW[5:7], RIGHT_BROW[0:2] + RIGHT_BROW[5:7])


def _bump(local: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    d2 = ((local[:, :2] - center[:2]) ** 2).sum(axis=1)
    return np.exp(-d2 / (radius * radius)).astype(np.float32)


def build_expressions(local: np.ndarray, rig: FaceRig) -> dict[str, np.ndarray]:
    """Offsets (468, 3) for each expression at full intensity, from the portrait's landmarks in its
    face frame (IOD units, x to the image-right eye, y down) and its rig."""
    loc = np.asarray(local[:N_MESH], np.float32)
    b = {name: rig.bases[i] for i, name in enumerate(BASES)}
    out: dict[str, np.ndarray] = {}
    corners = [loc[MOUTH_CORNERS[0]], loc[MOUTH_CORNERS[1]]]
    mouth_c = (corners[0] + corners[1]) / 2
    lower_lids = LEFT_EYE_LOWER + RIGHT_EYE_LOWER
    upper_lids = LEFT_EYE_UPPER + RIGHT_EYE_UPPER

    # Smile: corners up and out, cheeks up, lower lids lifted, a touch wider mouth.
    smile = 0.25 * b["width"]
    for c in corners:
        w = _bump(loc, c, 0.32)
        out_dir = np.sign(c[0] - mouth_c[0])
        smile[:, 0] += 0.07 * out_dir * w
        smile[:, 1] -= 0.15 * w
    for side in (-1, 1):
        cheek = mouth_c + np.array([side * 0.55, -0.55, 0.0], np.float32)
        smile[:, 1] -= 0.05 * _bump(loc, cheek, 0.3)
    smile[lower_lids, 1] -= 0.025
    out["smile"] = smile

    # Surprise: brows up, upper lids open, the jaw drops.
    surprise = 0.16 * (b["brow_l"] + b["brow_r"]) - 0.25 * (b["blink_l"] + b["blink_r"]) + 0.2 * b["jaw"] - 0.12 * b["width"]
    out["surprise"] = surprise

    # Anger: inner brows down and together, lids narrowed, lips pressed, corners a little down.
    anger = -0.05 * (b["brow_l"] + b["brow_r"]) + 0.25 * (b["blink_l"] + b["blink_r"]) - 0.12 * b["width"]
    for inner, sign in ((_INNER_BROW[0], 1), (_INNER_BROW[1], -1)):
        center = loc[inner].mean(axis=0)
        w = _bump(loc, center, 0.3)
        anger[:, 1] += 0.13 * w
        anger[:, 0] += 0.04 * sign * w
    for c in corners:
        anger[:, 1] += 0.03 * _bump(loc, c, 0.2)
    anger[LIPS_LOWER_INNER + LIPS_LOWER_OUTER, 1] -= 0.015
    out["anger"] = anger

    # Sadness: inner brows up, outer slightly down, lids droop, mouth corners down, lower lip pushed up.
    sad = 0.15 * (b["blink_l"] + b["blink_r"]) - 0.1 * b["width"]
    for inner, outer in zip(_INNER_BROW, _OUTER_BROW, strict=True):
        sad[:, 1] -= 0.09 * _bump(loc, loc[inner].mean(axis=0), 0.25)
        sad[:, 1] += 0.03 * _bump(loc, loc[outer].mean(axis=0), 0.25)
    for c in corners:
        sad[:, 1] += 0.09 * _bump(loc, c, 0.3)
    sad[LIPS_LOWER_OUTER, 1] -= 0.02
    sad[upper_lids, 1] += 0.0
    out["sadness"] = sad
    return {k: v.astype(np.float32) for k, v in out.items()}


def expression_on(animator: object, name: str, intensity: float, hold_s: float | None = None) -> None:
    """`animator.set_expression(...)` for an animator that has expressions (meshwarp, also behind a fallback wrapper)."""
    check_expression(name, intensity)
    for candidate in (animator, getattr(animator, "primary", None), getattr(animator, "active", None)):
        fn = getattr(candidate, "set_expression", None)
        if callable(fn):
            fn(name, intensity, hold_s)
            return
    raise RuntimeError(f"the {getattr(animator, 'name', 'current')} animator has no expressions; use --animator meshwarp")


def expression_state(animator: object) -> dict[str, object] | None:
    """The expression asked for now and how far it shows, `{"name", "intensity", "shown"}` ("none" when none is asked
    for or its hold ended); None for an animator without expressions (also behind a fallback wrapper)."""
    for candidate in (animator, getattr(animator, "primary", None), getattr(animator, "active", None)):
        ctl = getattr(candidate, "expressions", None)
        if isinstance(ctl, ExpressionController):
            name, intensity = ctl.target()
            shown = ctl.current().get(name, 0.0) if name != "none" else max(ctl.current().values(), default=0.0)
            return {"name": name, "intensity": round(intensity, 3), "shown": round(shown, 3)}
    return None


class ExpressionController:
    """The expression shown now: eases toward the requested one, holds it, eases out."""

    def __init__(self, bases: dict[str, np.ndarray], clock: Callable[[], float] = time.monotonic) -> None:
        self.bases = bases
        self._clock = clock
        self._lock = threading.Lock()
        self._weights = {k: 0.0 for k in bases}  # current (eased) weights
        self._target = {k: 0.0 for k in bases}
        self._until: float | None = None
        self._last_t: float | None = None

    def set(self, name: str, intensity: float = 0.8, hold_s: float | None = None, instant: bool = False) -> None:
        """Ease toward `name` at `intensity` (others ease out); after `hold_s` seconds ease out again.
        `instant`: jump there (stills, tests)."""
        key = check_expression(name, intensity)
        with self._lock:
            for k in self._target:
                self._target[k] = 0.0
            if key in self.bases:
                self._target[key] = float(intensity)
            if instant:
                self._weights = dict(self._target)
            self._until = None if hold_s is None or key not in self.bases else self._clock() + float(hold_s)

    def target(self) -> tuple[str, float]:
        """(name, intensity) asked for now; ("none", 0.0) when none is, or its hold ended."""
        with self._lock:
            held_out = self._until is not None and self._clock() >= self._until
            name, level = max(self._target.items(), key=lambda kv: kv[1], default=("none", 0.0))
        return ("none", 0.0) if held_out or level <= 0.0 else (name, level)

    def current(self) -> dict[str, float]:
        with self._lock:
            return dict(self._weights)

    def offsets(self) -> np.ndarray | None:
        """The blended offsets (468, 3) now, or None when no expression shows."""
        now = self._clock()
        with self._lock:
            if self._until is not None and now >= self._until:
                for k in self._target:
                    self._target[k] = 0.0
                self._until = None
            dt = 0.0 if self._last_t is None else max(now - self._last_t, 0.0)
            self._last_t = now
            step = dt / EASE_S
            total = None
            for k, target in self._target.items():
                w = self._weights[k]
                w = min(w + step, target) if w < target else max(w - step, target)
                self._weights[k] = w
                if w > 1e-4:
                    total = self.bases[k] * w if total is None else total + self.bases[k] * w
            return total
