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

import math
from dataclasses import dataclass

import cv2
import numpy as np

from src.animation.meshwarp.raster import njit

TEETH_BGR = np.array([200, 214, 228], np.float32)  # warm ivory
TONGUE_BGR = np.array([105, 110, 190], np.float32)
THROAT_BGR = np.array([45, 40, 120], np.float32)
_NO_OWN = np.zeros((0, 0, 3), np.uint8)
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


@njit(cache=True, nogil=True, fastmath=False)
def _contour_y(xs: np.ndarray, contour: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[:, 0][order], contour[:, 1][order])


@njit(cache=True, nogil=True, fastmath=False)
def _columns(x0: int, x1: int, dst_upper: np.ndarray, dst_lower: np.ndarray, src_upper: np.ndarray, src_lower: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Per column x0 .. x1 - 1: the driven lips (yu, yl) and the same column of the portrait's own opening
    (sx, su, sl), the lips' corners stretched onto each other; and the driven corners (dxa, dxb)."""
    xs = np.arange(x0, x1).astype(np.float64)
    dxa, dxb = float(dst_upper[:, 0].min()), float(dst_upper[:, 0].max())
    sxa, sxb = float(src_upper[:, 0].min()), float(src_upper[:, 0].max())
    sx = sxa + (xs - dxa) * (sxb - sxa) / max(dxb - dxa, 1e-3)
    return (xs, _contour_y(xs, dst_upper), _contour_y(xs, dst_lower), sx, _contour_y(sx, src_upper),
            _contour_y(sx, src_lower), dxa, dxb)


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
    lo, hi = ring.min(axis=0), ring.max(axis=0)
    x0, y0 = max(math.floor(lo[0]) - 2, 0), max(math.floor(lo[1]) - 2, 0)
    x1, y1 = min(math.ceil(hi[0]) + 3, image.shape[1]), min(math.ceil(hi[1]) + 3, image.shape[0])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    h, w = y1 - y0, x1 - x0
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - (x0, y0)) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
    # One array layout for the compiled calls whatever the caller passes (views, float64): each new layout would
    # be compiled on first use, a stall in the middle of a stream.
    contours = (np.ascontiguousarray(c, np.float32) for c in (dst_upper, dst_lower, src_upper, src_lower))
    xs, yu, yl, sx, su, sl, dxa, dxb = _columns(x0, x1, *contours)
    layer: np.ndarray = np.empty((h, w, 3), np.float32)
    map_y = np.empty((h, w), np.float32)
    _paint_layer(layer, map_y, y0, xs, yu, yl, su, sl, use_own, dxa, dxb, light.level, light.side,
                 np.array(light.lip_bgr, np.float64))
    # As soft as the face around it (a painted edge sharper than the photo reads as a sticker).
    mouth_w = 2.0 * max((dxb - dxa) / 2, 1.0)
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.012 * mouth_w, 0.5))
    # The portrait's own interior: its upper half rides the upper lip, its lower half the lower lip.
    sampled = None
    if bool((map_y >= 0).any()):
        map_x = np.broadcast_to(sx.astype(np.float32)[None, :], map_y.shape)
        sampled = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.7)
    # (without a sampled opening, map_y < 0 everywhere and `own` is never read: an empty stand-in of the same type)
    _blend_in(image[y0:y1, x0:x1], layer, sampled if sampled is not None else _NO_OWN, map_y, alpha, strength / 255.0)


@njit(cache=True, nogil=True, fastmath=False)
def _teeth_pattern(s: float, n: int = 9) -> float:
    """1 on a tooth, dipping to ~0.6 in the narrow gaps between teeth; teeth narrow toward the corners
    (equal angles on a curved arch: position = sin(angle))."""
    phase = np.arcsin(min(max(s, -0.999), 0.999)) / np.pi * n
    d = abs(phase - np.floor(phase + 0.5))  # 0 at a gap
    return 0.8 + 0.2 * min(max(d / 0.1, 0.0), 1.0)


@njit(cache=True, nogil=True, fastmath=False)
def _paint_layer(layer: np.ndarray, map_y: np.ndarray, y0: int, xs: np.ndarray, yu: np.ndarray, yl: np.ndarray,
                 su: np.ndarray, sl: np.ndarray, use_own: bool, dxa: float, dxb: float, level: float, side: float,
                 lip: np.ndarray) -> None:
    """The painted interior (BGR float) and, per pixel, the row of the portrait's own opening it shows there
    (-1: none), in one pass. s runs across the mouth (-1 .. 1), t down the opening (0 at the upper lip, 1 at
    the lower one); everything scales with the opening."""
    h, w = map_y.shape
    cx, half_w = (dxa + dxb) / 2, max((dxb - dxa) / 2, 1.0)
    mouth_w = 2 * half_w
    open_ratio = 0.0
    for j in range(w):
        open_ratio = max(open_ratio, yl[j] - yu[j])
    open_ratio = min(max(open_ratio / mouth_w, 0.0), 1.5)
    deep = min(open_ratio / 0.6, 1.0)
    dark = 0.5 + 0.35 * deep  # the wider the mouth, the deeper (darker) the cavity
    tongue_top = 0.62 - 0.12 * deep
    throat = np.empty(3)
    tongue_c = np.empty(3)
    for c in range(3):
        throat[c] = 0.4 * lip[c] + 0.6 * THROAT_BGR[c]
        tongue_c[c] = 0.5 * TONGUE_BGR[c] + 0.5 * lip[c] * 1.1
    for j in range(w):
        s = (xs[j] - cx) / half_w
        gap = max(yl[j] - yu[j], 1.0)
        lit = level * (1.0 + 0.25 * side * s)  # the lit side brighter, the whole scaled by the face's level
        # The portrait's own opening (its teeth, if it smiles): painted rows fade out where it shows them.
        src_gap = max(sl[j] - su[j], 0.0) if use_own else 0.0
        painted = min(max(1.0 - src_gap / max(0.2 * gap, 1.0), 0.0), 1.0)
        half = src_gap / 2
        pattern = _teeth_pattern(s)
        arch = min(max(1.0 - s * s, 0.0), 1.0)
        up_h = min(0.17 * mouth_w, 0.42 * gap) * (0.55 + 0.45 * arch)
        lo_h = min(0.1 * mouth_w, 0.25 * gap) * (0.4 + 0.6 * arch)
        soft = max(0.08 * up_h, 0.7)
        up_side = min(max((0.85 - abs(s)) / 0.15, 0.0), 1.0)
        lo_side = min(max((0.7 - abs(s)) / 0.15, 0.0), 1.0)
        teeth_shade = 0.62 + 0.38 * np.sqrt(arch)
        groove_col = 0.12 * np.exp(-((s / 0.05) ** 2))
        for i in range(h):
            yy = float(y0 + i)
            below_upper = yy - yu[j]
            above_lower = yl[j] - yy
            t = below_upper / gap
            # Throat: dark red, darkest at the back centre.
            depth = min(max(1.0 - s * s - ((t - 0.5) / 0.55) ** 2, 0.0), 1.0)
            k_throat = 1.0 - dark * depth
            # Tongue: low in the opening, its top lit, its edges shaded, a groove down its middle.
            ty = (t - 1.05) / (1.05 - tongue_top)
            tongue_d = (s / 0.62) ** 2 + ty * ty
            tongue = min(max((1.0 - tongue_d) / 0.12, 0.0), 1.0)
            tongue_shade = 0.55 + 0.45 * np.sqrt(min(max(1.0 - tongue_d, 0.0), 1.0)) * min(max(1.2 - t, 0.2), 1.0)
            groove = 1.0 - groove_col if t > tongue_top + 0.1 else 1.0
            # Teeth rows: the upper hangs from the upper lip, the lower (shorter) rises from the lower lip.
            up_a = min(max((up_h - below_upper) / soft, 0.0), 1.0) * up_side * painted
            lo_a = min(max((lo_h - above_lower) / soft, 0.0), 1.0) * lo_side * painted
            shadow_u = 0.7 + 0.3 * min(max(below_upper / max(0.35 * up_h, 1.0), 0.0), 1.0)
            shadow_l = 0.8 + 0.2 * min(max(above_lower / max(0.5 * lo_h, 1.0), 0.0), 1.0)
            for c in range(3):
                v = throat[c] * k_throat * (1 - tongue) + tongue_c[c] * tongue_shade * groove * tongue
                v = v * (1 - lo_a) + TEETH_BGR[c] * 0.85 * teeth_shade * pattern * shadow_l * lo_a
                v = v * (1 - up_a) + TEETH_BGR[c] * teeth_shade * pattern * shadow_u * up_a
                layer[i, j, c] = v * lit
            # Where the portrait's own opening shows (upper half riding the upper lip, lower the lower lip).
            if below_upper < half:
                map_y[i, j] = su[j] + below_upper
            elif above_lower < half:
                map_y[i, j] = sl[j] - above_lower
            else:
                map_y[i, j] = -1.0


@njit(cache=True, nogil=True, fastmath=False)
def _blend_in(roi: np.ndarray, layer: np.ndarray, own: np.ndarray, map_y: np.ndarray, alpha: np.ndarray,
              scale: float) -> None:
    """roi = roi * (1 - a) + interior * a (rounded), the interior being the portrait's own opening where
    map_y >= 0 and the painted layer elsewhere; a = alpha (0..255) * scale."""
    h, w = map_y.shape
    for i in range(h):
        for j in range(w):
            a = alpha[i, j] * scale
            if a <= 0.0:
                continue
            mine = map_y[i, j] >= 0
            for c in range(3):
                v = float(own[i, j, c]) if mine else float(layer[i, j, c])
                roi[i, j, c] = np.uint8(min(max(roi[i, j, c] * (1 - a) + v * a + 0.5, 0.0), 255.0))


def warm_up() -> None:
    """Compile (or load the cached compilation) before the first real frame, for the argument types a stream
    passes (`paint_mouth_interior` makes them the same whatever its caller gives)."""
    img = np.full((40, 60, 3), 100, np.uint8)
    xs = np.linspace(10, 50, 7)
    upper = np.stack([xs, np.full(7, 18.0)], axis=1)
    lower = np.stack([xs, 18 + 10 * np.sin(np.linspace(0, np.pi, 7))], axis=1)
    light = FaceLight(1.0, 0.0, (60, 60, 140))
    paint_mouth_interior(img, img.copy(), upper, lower, upper, upper + (0, 2), 1.0, light)
