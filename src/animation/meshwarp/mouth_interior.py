"""The inside of a mouth opened wider than the portrait's own: teeth rows, a tongue, a throat, lit like the face.

Painted per frame in the driven inner-lip opening (a small ROI), in mouth
coordinates: s across the mouth (-1 at one corner, +1 at the other) and t down
the opening (0 at the upper lip, 1 at the lower lip), so every part scales
with the opening:

- the throat: the lip colour darkened, darkest toward the back centre, the
  darker the wider the mouth (a deeper cavity shows);
- an upper row of teeth hanging from the upper lip and a lower row rising from
  the lower lip (shorter: mostly behind the lip), teeth narrowing toward the
  corners (they curve away), a shadow under the lip and toward the corners;
- a tongue resting low in the opening, lit from above;
- everything scaled by the face's own light: its brightness and which side is lit.

Where the portrait shows its own teeth, they are kept and ride their lip (upper
teeth on the upper lip, lower on the lower); the painted rows fade out there.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

TEETH_BGR = np.array([200, 214, 228], np.float32)  # warm ivory
TONGUE_BGR = np.array([105, 110, 190], np.float32)
THROAT_BGR = np.array([45, 40, 120], np.float32)
# Cheek landmarks (image-left, image-right) sampled for the face's light.
_CHEEKS = ((50, 101, 118, 117, 123, 205), (280, 330, 347, 346, 352, 425))


@dataclass(frozen=True)
class FaceLight:
    level: float  # skin brightness relative to a well-lit face (1.0)
    side: float  # -1 lit from the image's left ... +1 from its right
    lip_bgr: tuple[float, float, float]


def face_light(image: np.ndarray, landmarks: np.ndarray, lip_bgr: np.ndarray) -> FaceLight:
    """The face's light from its cheeks: overall level and left/right balance."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    h, w = grey.shape

    def mean_at(idx: tuple[int, ...]) -> float:
        pts = np.round(landmarks[list(idx), :2]).astype(int)
        xs, ys = np.clip(pts[:, 0], 0, w - 1), np.clip(pts[:, 1], 0, h - 1)
        return float(grey[ys, xs].mean())

    left, right = mean_at(_CHEEKS[0]), mean_at(_CHEEKS[1])
    level = float(np.clip((left + right) / 2 / 175.0, 0.45, 1.25))
    side = float(np.clip((right - left) / max(left + right, 1.0) * 4.0, -1.0, 1.0))
    return FaceLight(level, side, (float(lip_bgr[0]), float(lip_bgr[1]), float(lip_bgr[2])))


def _contour_y(xs: np.ndarray, contour: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def _teeth_pattern(s: np.ndarray, n: int = 9) -> np.ndarray:
    """1 on a tooth, dipping to ~0.6 in the narrow gaps between teeth; teeth narrow toward the corners
    (equal angles on a curved arch: position = sin(angle))."""
    ang = np.arcsin(np.clip(s, -0.999, 0.999))
    phase = ang / np.pi * n
    d = np.abs(phase - np.round(phase))  # 0 at a gap
    return 0.8 + 0.2 * np.clip(d / 0.1, 0.0, 1.0)


def own_teeth(source: np.ndarray, src_upper: np.ndarray, src_lower: np.ndarray) -> bool:
    """Whether the portrait shows its own teeth: bright, unsaturated pixels fill a good part of its lip opening."""
    ring = np.vstack([src_upper, src_lower[::-1]]).astype(np.float32)
    mask = np.zeros(source.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(ring * 4).astype(np.int32)], (255,), cv2.LINE_8, shift=2)
    inside = mask > 0
    if inside.sum() < 12:
        return False
    hsv = cv2.cvtColor(source, cv2.COLOR_BGR2HSV)
    v, sat = hsv[..., 2][inside].astype(np.float32), hsv[..., 1][inside].astype(np.float32)
    return bool(((v > 140) & (sat < 90)).mean() > 0.25)


def paint_mouth_interior(image: np.ndarray, source: np.ndarray, dst_upper: np.ndarray, dst_lower: np.ndarray,
                         src_upper: np.ndarray, src_lower: np.ndarray, strength: float, light: FaceLight,
                         use_own: bool = True) -> None:
    """Paint the mouth's inside between the driven inner lips (in place); contours run corner to corner.
    `strength` in [0, 1] blends it in as the opening grows past the portrait's own. `use_own`: the
    portrait shows teeth (`own_teeth`): keep them, riding their lips, instead of painted rows."""
    if strength <= 0.01:
        return
    ring = np.vstack([dst_upper, dst_lower[::-1]]).astype(np.float32)
    x0 = max(int(np.floor(ring[:, 0].min())) - 2, 0)
    y0 = max(int(np.floor(ring[:, 1].min())) - 2, 0)
    x1 = min(int(np.ceil(ring[:, 0].max())) + 3, image.shape[1])
    y1 = min(int(np.ceil(ring[:, 1].max())) + 3, image.shape[0])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    h, w = y1 - y0, x1 - x0
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - (x0, y0)) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
    xs = np.arange(x0, x1, dtype=np.float32)
    yu = _contour_y(xs, dst_upper)[None, :]
    yl = _contour_y(xs, dst_lower)[None, :]
    dxa, dxb = float(dst_upper[:, 0].min()), float(dst_upper[:, 0].max())
    cx, half_w = (dxa + dxb) / 2, max((dxb - dxa) / 2, 1.0)
    mouth_w = 2 * half_w
    yy = np.arange(y0, y1, dtype=np.float32)[:, None]
    gap = np.maximum(yl - yu, 1.0)
    s = (xs[None, :] - cx) / half_w
    t = (yy - yu) / gap
    below_upper = yy - yu
    above_lower = yl - yy
    open_ratio = float(np.clip((yl - yu).max() / mouth_w, 0.0, 1.5))
    lip = np.array(light.lip_bgr, np.float32)
    # Light across the mouth: the lit side brighter; the whole scaled by the face's level.
    lit = (light.level * (1.0 + 0.25 * light.side * s))[..., None]
    # Throat: dark red, darkest at the back centre, darker the wider the mouth.
    depth = np.clip(1.0 - s**2 - ((t - 0.5) / 0.55) ** 2, 0.0, 1.0)
    throat = (0.4 * lip + 0.6 * THROAT_BGR) * (1.0 - (0.5 + 0.35 * min(open_ratio / 0.6, 1.0)) * depth)[..., None]
    layer = throat
    # Tongue: low in the opening, its top lit, its edges shaded.
    tongue_top = 0.62 - 0.12 * min(open_ratio / 0.6, 1.0)
    ty = (t - 1.05) / (1.05 - tongue_top)
    tongue_d = (s / 0.62) ** 2 + ty**2
    tongue = np.clip((1.0 - tongue_d) / 0.12, 0.0, 1.0)[..., None]
    tongue_shade = (0.55 + 0.45 * np.clip(1.0 - tongue_d, 0, 1) ** 0.5 * np.clip(1.2 - t, 0.2, 1.0))[..., None]
    groove = 1.0 - 0.12 * np.exp(-((s / 0.05) ** 2))[..., None] * (t > tongue_top + 0.1)[..., None]
    layer = layer * (1 - tongue) + (0.5 * TONGUE_BGR + 0.5 * lip * 1.1) * tongue_shade * groove * tongue
    # The portrait's own opening (its teeth, if it smiles): painted rows fade out where it shows them.
    sxa, sxb = float(src_upper[:, 0].min()), float(src_upper[:, 0].max())
    sx = sxa + (xs - dxa) * (sxb - sxa) / max(dxb - dxa, 1e-3)
    su = _contour_y(sx, src_upper)[None, :]
    sl = _contour_y(sx, src_lower)[None, :]
    src_gap = np.maximum(sl - su, 0.0) if use_own else np.zeros_like(su)
    painted = np.clip(1.0 - src_gap / np.maximum(0.2 * gap, 1.0), 0.0, 1.0)
    # Teeth rows.
    pattern = _teeth_pattern(s)[..., None]
    arch = np.clip(1.0 - s**2, 0.0, 1.0)
    up_h = np.minimum(0.17 * mouth_w, 0.42 * gap) * (0.55 + 0.45 * arch)
    lo_h = np.minimum(0.1 * mouth_w, 0.25 * gap) * (0.4 + 0.6 * arch)
    soft = np.maximum(0.08 * up_h, 0.7)
    upper = np.clip((up_h - below_upper) / soft, 0.0, 1.0) * np.clip((0.85 - np.abs(s)) / 0.15, 0.0, 1.0)
    lower = np.clip((lo_h - above_lower) / soft, 0.0, 1.0) * np.clip((0.7 - np.abs(s)) / 0.15, 0.0, 1.0)
    teeth_shade = (0.62 + 0.38 * arch**0.5)[..., None]
    lip_shadow_u = (0.7 + 0.3 * np.clip(below_upper / np.maximum(0.35 * up_h, 1.0), 0, 1))[..., None]
    lip_shadow_l = 0.8 + 0.2 * np.clip(above_lower / np.maximum(0.5 * lo_h, 1.0), 0, 1)[..., None]
    up_a = (upper * painted)[..., None]
    lo_a = (lower * painted)[..., None]
    layer = layer * (1 - lo_a) + TEETH_BGR * 0.85 * teeth_shade * pattern * lip_shadow_l * lo_a
    layer = layer * (1 - up_a) + TEETH_BGR * teeth_shade * pattern * lip_shadow_u * up_a
    layer = layer * lit
    # As soft as the face around it (a painted edge sharper than the photo reads as a sticker).
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.012 * mouth_w, 0.5))
    # The portrait's own interior: its upper half rides the upper lip, its lower half the lower lip.
    half = src_gap / 2
    map_y = np.where(below_upper < half, su + below_upper, np.where(above_lower < half, sl - above_lower, -1.0))
    own = map_y >= 0
    if own.any():
        map_x = np.broadcast_to(sx[None, :], map_y.shape).astype(np.float32)
        sampled = cv2.remap(source, map_x, map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        layer = np.where(own[..., None], sampled.astype(np.float32), layer)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.7).astype(np.float32)[..., None] * (strength / 255.0)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + layer * alpha + 0.5, 0, 255).astype(np.uint8)
