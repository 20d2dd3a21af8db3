"""Face crops from our MediaPipe landmarks and the paste-back into the full frame.

LivePortrait crops a rotated square around the face (2.3 x the landmark
extent, shifted up by 0.125 of the crop) and resizes it to 512 (source) or
256 (driver). We build the same kind of crop from MediaPipe's points: the
jaw-line arc plus the brows approximate the extent of LivePortrait's 106
points; the "up" axis runs from the lips' centre to the eyes' centre.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.core.face_mesh import FACE_OVAL, LEFT_BROW, LEFT_EYE_RING, RIGHT_BROW, RIGHT_EYE_RING

# The lower arc of the face oval (right jaw -> chin -> left jaw) plus the brows: no forehead,
# as the 106-point set LivePortrait measures its crop on.
EXTENT_POINTS = FACE_OVAL[8:29] + LEFT_BROW + RIGHT_BROW
LIP_POINTS = [13, 14, 61, 291, 0, 17]


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square and resize to size x size (the animators' output canvas)."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    sq = image[y0 : y0 + s, x0 : x0 + s]
    if s == size:
        return np.ascontiguousarray(sq)
    return cv2.resize(sq, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)


def crop_matrix(landmarks: np.ndarray, dsize: int, scale: float = 2.3, vy_ratio: float = -0.125) -> np.ndarray:
    """2x3 similarity matrix from frame pixels to a dsize x dsize face crop."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    eyes = (lm[LEFT_EYE_RING].mean(axis=0) + lm[RIGHT_EYE_RING].mean(axis=0)) / 2.0
    lips = lm[LIP_POINTS].mean(axis=0)
    uy = lips - eyes
    uy /= np.linalg.norm(uy) + 1e-9
    ux = np.array([-uy[1], uy[0]])  # uy rotated by -90 deg: points to the image right for an upright face
    pts = lm[EXTENT_POINTS]
    local = np.stack([pts @ ux, pts @ uy], axis=1)
    lo, hi = local.min(axis=0), local.max(axis=0)
    size = float(max(hi - lo)) * scale
    centre_local = (lo + hi) / 2.0
    centre = centre_local[0] * ux + centre_local[1] * uy + vy_ratio * size * uy
    k = dsize / max(size, 1e-6)
    # crop = k * [ux; uy] @ (p - centre) + dsize / 2
    rot = np.stack([ux, uy])
    m = np.zeros((2, 3))
    m[:, :2] = k * rot
    m[:, 2] = dsize / 2.0 - k * rot @ centre
    return m.astype(np.float32)


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64)).astype(np.float32)


def crop_image(image: np.ndarray, m: np.ndarray, dsize: int) -> np.ndarray:
    return cv2.warpAffine(image, m, (dsize, dsize), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def paste_mask(dsize: int = 512, inset: float = 0.12, feather: float = 0.08) -> np.ndarray:
    """Soft ellipse in crop space (1 inside, 0 at the crop border): what is pasted back."""
    yy, xx = np.mgrid[0:dsize, 0:dsize].astype(np.float32)
    c = (dsize - 1) / 2.0
    r = dsize * (0.5 - inset)
    d = np.sqrt(((xx - c) / r) ** 2 + ((yy - c) / (r * 1.08)) ** 2)  # a little taller than wide
    f = feather * dsize / r
    return np.clip((1.0 + f - d) / f, 0.0, 1.0).astype(np.float32)


def paste_back(canvas: np.ndarray, crop: np.ndarray, m: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend `crop` (crop space, uint8) into `canvas` through `mask`; pixels the mask does not reach are untouched."""
    h, w = canvas.shape[:2]
    inv = invert_affine(m)
    back = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0.0,))
    out = canvas.copy()
    ys, xs = np.nonzero(alpha > 0)
    if len(ys):
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        a = alpha[y0:y1, x0:x1, None]
        region = canvas[y0:y1, x0:x1].astype(np.float32)
        blended = region + a * (back[y0:y1, x0:x1].astype(np.float32) - region)
        # Where alpha is 0 the blend equals the canvas exactly, so the outside stays lossless.
        out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out
