"""MediaPipe face-mesh landmark indices and the geometry computed from them.

"Left"/"right" are image sides (as in ANCHORS.md): the left eye is the one on
the image's left. Coordinates are pixels; z is MediaPipe's relative depth in
the same scale as x (smaller = closer to the camera).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 478
N_MESH = 468  # without the 10 iris points

LEFT_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
LEFT_EYE_LOWER = [7, 163, 144, 145, 153, 154, 155]
LEFT_EYE_CORNERS = (33, 133)  # outer, inner
RIGHT_EYE_UPPER = [466, 388, 387, 386, 385, 384, 398]
RIGHT_EYE_LOWER = [249, 390, 373, 374, 380, 381, 382]
RIGHT_EYE_CORNERS = (263, 362)
LEFT_EYE_RING = [33, *LEFT_EYE_UPPER, 133, *reversed(LEFT_EYE_LOWER)]
RIGHT_EYE_RING = [263, *RIGHT_EYE_UPPER, 362, *reversed(RIGHT_EYE_LOWER)]
LEFT_IRIS = [468, 469, 470, 471, 472]
RIGHT_IRIS = [473, 474, 475, 476, 477]

LEFT_BROW = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
RIGHT_BROW = [300, 293, 334, 296, 336, 276, 283, 282, 295, 285]

LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_LOWER_OUTER = [146, 91, 181, 84, 17, 314, 405, 321, 375]
LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_LOWER_INNER = [95, 88, 178, 87, 14, 317, 402, 318, 324]
INNER_MOUTH_RING = [*LIPS_UPPER_INNER, *reversed(LIPS_LOWER_INNER)]
MOUTH_CORNERS = (61, 291)
INNER_LIP_MID = (13, 14)  # upper, lower

FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]  # fmt: skip
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10

# Points that barely move with expressions: used to estimate the rigid head motion.
STABLE_POINTS = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 234, 454, 93, 323, 127, 356,
                 21, 251, 54, 284, 103, 332, 109, 338, 67, 297, 98, 327, 129, 358]  # fmt: skip


def eye_centers(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the left and right eye rings (3-D)."""
    return lm[LEFT_EYE_RING].mean(axis=0), lm[RIGHT_EYE_RING].mean(axis=0)


def interocular(lm: np.ndarray) -> float:
    left, right = eye_centers(lm)
    return float(np.linalg.norm((right - left)[:2]))


def face_frame(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(origin, axes) of a face-aligned frame: origin between the eyes; axes as columns:
    x from the left eye to the right eye, y down the face (forehead -> chin), z = x cross y (into the face)."""
    left, right = eye_centers(lm)
    origin = (left + right) / 2.0
    x = right - left
    x /= np.linalg.norm(x) + 1e-9
    down = lm[CHIN] - lm[FOREHEAD]
    y = down - np.dot(down, x) * x
    y /= np.linalg.norm(y) + 1e-9
    z = np.array([x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]])  # np.cross is slow
    return origin, np.stack([x, y, z], axis=1)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares s, R, t with dst ~ s * R @ src + t (Umeyama), for (N, D) point sets."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(len(sig))
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    rot = u @ np.diag(d) @ vt
    var = (a**2).sum() / len(src)
    scale = float((sig * d).sum() / var) if var > 0 else 1.0
    return scale, rot, mu_d - scale * rot @ mu_s


def rotation_to_euler(rot: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees for R = Ry(yaw) @ Rx(pitch) @ Rz(roll), camera axes x right, y down, z forward."""
    r = np.asarray(rot, dtype=np.float64).tolist()  # scalar math: this runs for every frame
    pitch = math.degrees(math.asin(min(1.0, max(-1.0, -r[1][2]))))
    yaw = math.degrees(math.atan2(r[0][2], r[2][2]))
    roll = math.degrees(math.atan2(r[1][0], r[1][1]))
    return yaw, pitch, roll


def euler_to_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
    cp, sp = math.cos(math.radians(pitch)), math.sin(math.radians(pitch))
    cr, sr = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    # Ry(yaw) @ Rx(pitch) @ Rz(roll), written out (scalar math: this runs for every frame)
    return np.array([
        [cy * cr + sy * sp * sr, -cy * sr + sy * sp * cr, sy * cp],
        [cp * sr, cp * cr, -sp],
        [-sy * cr + cy * sp * sr, sy * sr + cy * sp * cr, cy * cp],
    ], np.float32)


@dataclass(slots=True)
class FaceMeasures:
    """Expression measures of one face, scale-free (divided by the inter-ocular distance)."""

    mouth_open: float  # inner-lip gap / IOD
    mouth_width: float  # corner distance / IOD
    eye_open: tuple[float, float]  # lid gap / eye width, left and right
    brow_height: tuple[float, float]  # brow-to-eye distance / IOD
    yaw: float
    pitch: float
    roll: float


def measure(lm: np.ndarray) -> FaceMeasures:
    iod = interocular(lm) + 1e-9
    origin, axes = face_frame(lm)
    local = (lm - origin) @ axes  # face-aligned coordinates

    def gap(upper: list[int], lower: list[int]) -> float:
        return float(np.mean(local[lower[2:-2], 1]) - np.mean(local[upper[2:-2], 1]))

    def eye(upper: list[int], lower: list[int], corners: tuple[int, int]) -> float:
        width = float(np.linalg.norm(local[corners[0], :2] - local[corners[1], :2])) + 1e-9
        return gap(upper, lower) / width

    mouth_gap = float(np.mean(local[[14, 87, 317], 1]) - np.mean(local[[13, 82, 312], 1]))
    width = float(np.linalg.norm(local[MOUTH_CORNERS[0], :2] - local[MOUTH_CORNERS[1], :2]))
    eye_l = local[LEFT_EYE_RING, 1].mean()
    eye_r = local[RIGHT_EYE_RING, 1].mean()
    brow_l = float(eye_l - local[LEFT_BROW, 1].mean())
    brow_r = float(eye_r - local[RIGHT_BROW, 1].mean())
    yaw, pitch, roll = rotation_to_euler(axes)
    return FaceMeasures(
        mouth_open=max(0.0, mouth_gap) / iod,
        mouth_width=width / iod,
        eye_open=(eye(LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS), eye(RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS)),
        brow_height=(brow_l / iod, brow_r / iod),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
    )
