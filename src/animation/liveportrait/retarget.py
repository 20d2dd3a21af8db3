"""Eye and lip open ratios for LivePortrait's retargeting, from our MediaPipe landmarks.

LivePortrait measures them on its own 203-point landmarks (lid gap / eye width;
inner-lip gap / mouth width); we measure the same ratios on MediaPipe's points,
so no landmark.onnx is needed.
"""

from __future__ import annotations

import numpy as np

from src.core.face_mesh import (
    INNER_LIP_MID,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    MOUTH_CORNERS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    interocular,
)
from src.core.frames import MotionState, MouthShape


def _gap(lm: np.ndarray, upper: list[int], lower: list[int]) -> float:
    return float(np.linalg.norm(lm[upper[2:-2], :2].mean(axis=0) - lm[lower[2:-2], :2].mean(axis=0)))


def eye_ratios(lm: np.ndarray) -> tuple[float, float]:
    """(left, right) lid gap / eye width."""
    out = []
    for upper, lower, (a, b) in ((LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS), (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS)):
        width = float(np.linalg.norm(lm[a, :2] - lm[b, :2])) + 1e-9
        out.append(_gap(lm, upper, lower) / width)
    return out[0], out[1]


def lip_ratio(lm: np.ndarray) -> float:
    """Inner-lip gap / mouth width."""
    gap = float(np.linalg.norm(lm[INNER_LIP_MID[0], :2] - lm[INNER_LIP_MID[1], :2]))
    width = float(np.linalg.norm(lm[MOUTH_CORNERS[0], :2] - lm[MOUTH_CORNERS[1], :2])) + 1e-9
    return gap / width


def mouth_width_iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[MOUTH_CORNERS[0], :2] - lm[MOUTH_CORNERS[1], :2])) / (interocular(lm) + 1e-9)


def eye_input(source_eye: np.ndarray, driving_eye: float) -> np.ndarray:
    """[1, 3] stitching_eye ratios: source left, source right, driving (as LivePortrait combines them)."""
    return np.array([[source_eye[0], source_eye[1], driving_eye]], np.float32)


def lip_input(source_lip: float, driving_lip: float) -> np.ndarray:
    return np.array([[source_lip, driving_lip]], np.float32)


def motion_eye_ratio(source_eye: np.ndarray, motion: MotionState) -> float:
    """Driving eye ratio for idle/audio driving: the source's own ratio scaled by MotionState.eye_open."""
    return float(np.mean(source_eye) * np.clip(np.mean(motion.eye_open), 0.0, 1.5))


def mouth_lip_ratio(source_lip: float, mouth_width_iod_: float, mouth: MouthShape, gain: float = 1.0) -> float:
    """MouthShape.open is an inner-lip gap in inter-ocular units; as a fraction of the mouth width it is a lip ratio."""
    return float(source_lip + gain * max(0.0, mouth.open) / max(mouth_width_iod_, 1e-3))
