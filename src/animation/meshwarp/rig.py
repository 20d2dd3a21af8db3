"""A parametric face rig built from the source's own landmarks.

Each basis is a field of landmark offsets (468 x 3) in the source's face-aligned
frame, in inter-ocular units, for one unit of a parameter: jaw drop, mouth
width, rounding, each eye closing, each brow raising. Synthetic motion (idle
blinks) and audio (visemes) drive the face through these; webcam landmarks
drive it directly. `mouth_mask` marks the region the audio owns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from src.core.face_mesh import (
    INNER_LIP_MID,
    LEFT_BROW,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    LIPS_UPPER_INNER,
    LIPS_UPPER_OUTER,
    MOUTH_CORNERS,
    N_MESH,
    RIGHT_BROW,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
)

BASES = ("jaw", "width", "round", "blink_l", "blink_r", "brow_l", "brow_r")


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


@dataclass
class FaceRig:
    bases: np.ndarray  # (len(BASES), 468, 3) float32
    mouth_mask: np.ndarray  # (468,) float32 in [0, 1]
    rest_gap: float  # the source's own inner-lip gap (IOD units)
    rest_eye_gap: tuple[float, float]

    def offsets(self, coefs: np.ndarray) -> np.ndarray:
        """Sum of bases weighted by `coefs` (len(BASES),): (468, 3)."""
        flat = self.bases.reshape(len(self.bases), -1)
        return (coefs.astype(np.float32) @ flat).reshape(self.bases.shape[1:])


def _eye_basis(local: np.ndarray, upper: list[int], lower: list[int], corners: tuple[int, int],
               brow: list[int]) -> tuple[np.ndarray, float]:
    """Closing one eye fully: the upper lid meets the lower lid, the skin above follows."""
    out = np.zeros((N_MESH, 3), np.float32)
    gaps = local[lower, 1] - local[upper, 1]  # per column, positive
    xs_up = local[upper, 0]
    x0, x1 = sorted((local[corners[0], 0], local[corners[1], 0]))
    lid_y = local[upper, 1].mean()
    brow_y = local[brow, 1].mean()
    span = max(lid_y - brow_y, 1e-3)
    order = np.argsort(xs_up)
    for i in range(N_MESH):
        x, y = local[i, 0], local[i, 1]
        lateral = 1.0 - _smoothstep(0.0, 0.12, np.array(max(x0 - x, x - x1, 0.0)))
        if lateral <= 0:
            continue
        g = float(np.interp(x, xs_up[order], gaps[order]))
        if y <= lid_y + 0.02 and y >= lid_y - span:
            # Skin between the lid margin and the brow: follows less the higher it sits.
            w = 1.0 - (lid_y - y) / span
            out[i, 1] = 0.85 * g * max(w, 0.0) ** 1.5 * lateral
    for j, idx in enumerate(upper):
        out[idx, 1] = gaps[j] * 0.97  # the margins meet; the lashes cover the seam
    for j, idx in enumerate(lower):
        out[idx, 1] = -gaps[j] * 0.08
    for idx in corners:
        out[idx] = 0.0
    return out, float(gaps.mean())


def _brow_basis(local: np.ndarray, brow: list[int], upper: list[int]) -> np.ndarray:
    out = np.zeros((N_MESH, 3), np.float32)
    bx = local[brow, 0]
    x0, x1 = bx.min(), bx.max()
    brow_y = local[brow, 1].mean()
    lid_y = local[upper, 1].mean()
    for i in range(N_MESH):
        x, y = local[i, 0], local[i, 1]
        lateral = 1.0 - _smoothstep(0.0, 0.2, np.array(max(x0 - x, x - x1, 0.0)))
        if lateral <= 0 or y > lid_y:
            continue
        if y >= brow_y:  # between brow and lid: stretches
            w = (lid_y - y) / max(lid_y - brow_y, 1e-3)
        else:  # forehead above the brow: follows, fading upward
            w = 1.0 - _smoothstep(0.0, 0.7, np.array(brow_y - y)) * 0.8
        out[i, 1] = -float(np.clip(w, 0, 1)) * lateral
    return out


def build_face_rig(local: np.ndarray) -> FaceRig:
    """`local`: the source's 478 (or 468) landmarks in its face frame, IOD units (x right, y down)."""
    local = np.asarray(local[:N_MESH], np.float32)
    mc = (local[INNER_LIP_MID[0]] + local[INNER_LIP_MID[1]]) / 2
    hw = float(np.linalg.norm(local[MOUTH_CORNERS[0], :2] - local[MOUTH_CORNERS[1], :2])) / 2
    rest_gap = float(local[INNER_LIP_MID[1], 1] - local[INNER_LIP_MID[0], 1])
    dx = local[:, 0] - mc[0]
    dy = local[:, 1] - mc[1]
    # Jaw drop: everything below the mouth line moves down, less toward the jaw hinges.
    jaw = np.zeros((N_MESH, 3), np.float32)
    vertical = _smoothstep(-0.02, 0.10 + 0.5 * max(rest_gap, 0.0), dy)
    lateral = np.clip(1.0 - (np.abs(dx) / (hw * 2.6)) ** 2, 0.0, 1.0)
    jaw[:, 1] = vertical * lateral
    jaw[:, 2] = -0.15 * vertical * lateral  # the chin moves slightly toward the camera as it drops
    jaw[LIPS_LOWER_INNER, 1] = 1.0
    jaw[LIPS_LOWER_OUTER, 1] = np.maximum(jaw[LIPS_LOWER_OUTER, 1], 0.95)
    jaw[LIPS_UPPER_INNER, 1] = -0.06
    jaw[LIPS_UPPER_OUTER, 1] = np.minimum(jaw[LIPS_UPPER_OUTER, 1], -0.03)
    for idx in (*MOUTH_CORNERS, 78, 308):
        jaw[idx, 1] = 0.42
    # Mouth width: horizontal stretch about the mouth centre, fading out over the cheeks.
    region = np.exp(-((np.maximum(np.abs(dx) - hw, 0) / 0.35) ** 2 + (dy / 0.45) ** 2))
    width = np.zeros((N_MESH, 3), np.float32)
    width[:, 0] = dx * region
    width[:, 1] = 0.08 * np.abs(dx) * region  # spread lips flatten slightly
    # Rounding: narrower, lips pushed forward, a small opening.
    rnd = -0.45 * width
    lips = [*LIPS_UPPER_OUTER, *LIPS_LOWER_OUTER, *LIPS_UPPER_INNER, *LIPS_LOWER_INNER]
    rnd[lips, 2] -= 0.12
    rnd += 0.12 * jaw
    # Narrowing alone keeps the lips' curve (a smile's raised corners) and sharpens it into a V;
    # a rounded mouth is an oval: corners level with the mouth centre, the lips bulging out
    # (upper up, lower down) halfway between the corners and the middle.
    near = np.exp(-((np.maximum(np.abs(dx) - hw, 0) / 0.2) ** 2 + (dy / 0.3) ** 2))
    u = np.clip(np.abs(dx) / max(hw, 1e-3), 0.0, 1.0)
    rnd[:, 1] += 0.6 * np.maximum(-dy, 0.0) * u**2 * near  # raised corners come down
    arch, bulge = 1.0 - u**2, 4.0 * u * (1.0 - u)
    for ring, dy_ring in ((LIPS_UPPER_INNER, -0.05 * arch), (LIPS_UPPER_OUTER, -0.03 * arch),
                          (LIPS_LOWER_INNER, 0.07 * bulge), (LIPS_LOWER_OUTER, 0.05 * bulge)):  # fmt: skip
        rnd[ring, 1] += dy_ring[ring]
    blink_l, gap_l = _eye_basis(local, LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS, LEFT_BROW[:5])
    blink_r, gap_r = _eye_basis(local, RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS, RIGHT_BROW[:5])
    brow_l = _brow_basis(local, LEFT_BROW[:5], LEFT_EYE_UPPER)
    brow_r = _brow_basis(local, RIGHT_BROW[:5], RIGHT_EYE_UPPER)
    bases = np.stack([jaw, width, rnd, blink_l, blink_r, brow_l, brow_r]).astype(np.float32)
    mouth_mask = np.clip(np.maximum(np.abs(jaw[:, 1]), np.abs(width[:, 0]) / max(hw, 1e-3)) * 1.5, 0, 1)
    mouth_mask[lips] = 1.0
    return FaceRig(bases=bases, mouth_mask=mouth_mask.astype(np.float32), rest_gap=rest_gap, rest_eye_gap=(gap_l, gap_r))
