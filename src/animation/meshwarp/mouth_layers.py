"""Layers drawn over the warp where stretching pixels would look wrong.

Mouth: when the lips part wider than the source's own opening, stretching the
source's lip pixels smears them; instead we paint a mouth cavity (dark, shaded
toward the back) with a hint of upper and lower teeth, and blend it in as the
opening grows.

Eyes: on a blink the warp would squash the iris; instead the eye interior
moves rigidly (a similarity from the source's eye corners to the driven ones)
and is shown only inside the driven eyelid opening, so the lid slides over it.
"""

from __future__ import annotations

import cv2
import numpy as np

CAVITY_BGR = np.array([48, 42, 112], np.float32)  # dark red
CAVITY_BACK_BGR = np.array([20, 16, 46], np.float32)
TEETH_BGR = np.array([205, 212, 222], np.float32)


def _roi(points: np.ndarray, pad: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x0 = max(int(np.floor(points[:, 0].min())) - pad, 0)
    y0 = max(int(np.floor(points[:, 1].min())) - pad, 0)
    x1 = min(int(np.ceil(points[:, 0].max())) + pad + 1, shape[1])
    y1 = min(int(np.ceil(points[:, 1].max())) + pad + 1, shape[0])
    return x0, y0, x1, y1


def _contour_y(xs: np.ndarray, contour: np.ndarray) -> np.ndarray:
    order = np.argsort(contour[:, 0])
    return np.interp(xs, contour[order, 0], contour[order, 1])


def draw_mouth_interior(image: np.ndarray, source: np.ndarray, dst_upper: np.ndarray, dst_lower: np.ndarray,
                        src_upper: np.ndarray, src_lower: np.ndarray, strength: float) -> None:
    """Paint the inside of the driven mouth (in place).

    The contours are the inner lips from corner to corner, in output pixels, for
    the driven face (dst) and the source (src). Whatever the source shows between
    its lips (teeth, if it smiles) stays attached to the lip it belongs to, upper
    teeth to the upper lip and lower teeth to the lower lip, unstretched; the new
    gap between them is a shaded cavity, with painted teeth when the source's
    mouth was closed. `strength` in [0, 1] blends this over the warp.
    """
    if strength <= 0.01:
        return
    ring = np.vstack([dst_upper, dst_lower[::-1]]).astype(np.float32)
    x0, y0, x1, y1 = _roi(ring, 2, image.shape)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    h, w = y1 - y0, x1 - x0
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - (x0, y0)) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
    xs = np.arange(x0, x1, dtype=np.float32)
    yu = _contour_y(xs, dst_upper)[None, :]
    yl = _contour_y(xs, dst_lower)[None, :]
    # Horizontal correspondence: the driven mouth's span maps linearly onto the source's.
    dxa, dxb = dst_upper[:, 0].min(), dst_upper[:, 0].max()
    sxa, sxb = src_upper[:, 0].min(), src_upper[:, 0].max()
    sx = sxa + (xs - dxa) * (sxb - sxa) / max(dxb - dxa, 1e-3)
    su = _contour_y(sx, src_upper)[None, :]
    sl = _contour_y(sx, src_lower)[None, :]
    src_gap = np.maximum(sl - su, 0.0)
    yy = np.arange(y0, y1, dtype=np.float32)[:, None]
    below_upper = yy - yu
    above_lower = yl - yy
    gap = np.maximum(yl - yu, 1.0)
    cx = (dxa + dxb) / 2
    half_w = max((dxb - dxa) / 2, 1.0)
    xx = xs[None, :]
    # The cavity: darker toward the back of the mouth.
    depth = np.clip(1.0 - ((xx - cx) / half_w) ** 2 - ((yy - (yu + yl) / 2) / (gap / 2)) ** 2 * 0.5, 0, 1)[..., None]
    layer = CAVITY_BGR * (1 - depth) + CAVITY_BACK_BGR * depth
    # Painted teeth, faded out where the source shows its own.
    painted = np.clip(1.0 - src_gap / np.maximum(0.25 * gap, 1.0), 0, 1)
    if painted.max() > 0.01:  # (a source that shows its own teeth needs none painted)
        teeth_h = np.minimum(0.3 * gap, 0.22 * half_w)
        lateral = np.clip(1.0 - ((xx - cx) / (half_w * 0.8)) ** 2, 0, 1)
        top = np.clip((teeth_h - below_upper) / np.maximum(0.35 * teeth_h, 0.8), 0, 1)
        bottom = np.clip((0.5 * teeth_h - above_lower) / np.maximum(0.3 * teeth_h, 0.8), 0, 1) * 0.7
        teeth = (np.maximum(top, bottom) * lateral * painted)[..., None]
        shade = 0.8 + 0.2 * (1 - np.abs(xx - cx) / half_w)[..., None]
        layer = layer * (1 - teeth) + TEETH_BGR * np.clip(shade, 0, 1) * teeth
    # The source's own interior: upper half rides the upper lip, lower half the lower lip.
    half = src_gap / 2
    map_y = np.where(below_upper < half, su + below_upper, np.where(above_lower < half, sl - above_lower, -1.0))
    own = map_y >= 0
    if own.any():
        map_x = np.broadcast_to(sx[None, :], map_y.shape).astype(np.float32)
        sampled = cv2.remap(source, map_x, map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        layer = np.where(own[..., None], sampled.astype(np.float32), layer)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.7).astype(np.float32)[..., None] * (strength / 255.0)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (roi * (1 - alpha) + layer * alpha + 0.5).astype(np.uint8)


def close_lips(image: np.ndarray, dst_upper: np.ndarray, dst_lower: np.ndarray, lip_bgr: np.ndarray, amount: float) -> None:
    """Where the lips close over an open source mouth, fill the squeezed gap with lip colour (in place)."""
    if amount <= 0.01:
        return
    ring = np.vstack([dst_upper, dst_lower[::-1]]).astype(np.float32)
    x0, y0, x1, y1 = _roi(ring, 2, image.shape)
    if x1 - x0 < 2 or y1 - y0 < 1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((ring - (x0, y0)) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
    cv2.polylines(mask, [np.round((ring - (x0, y0)) * 4).astype(np.int32)], True, (255,), 1, cv2.LINE_AA, shift=2)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.8).astype(np.float32)[..., None] * (amount / 255.0)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (roi * (1 - alpha) + lip_bgr.astype(np.float32) * alpha + 0.5).astype(np.uint8)


def _monotonic(x: np.ndarray) -> bool:
    d = np.diff(x)
    return bool(np.all(d > 0))


def overlay_eye(image: np.ndarray, source: np.ndarray, src_ring: np.ndarray, dst_ring: np.ndarray,
                src_corners: np.ndarray, dst_corners: np.ndarray, strength: float) -> None:
    """Show the source eye's interior, moved rigidly, inside the driven eye opening (in place)."""
    if strength <= 0.01:
        return
    x0, y0, x1, y1 = _roi(dst_ring, 2, image.shape)
    if x1 - x0 < 3 or y1 - y0 < 2:
        return
    # Similarity taking the driven eye corners back to the source's (dst -> src), for warpAffine's inverse map.
    m = similarity_2pt(dst_corners, src_corners)
    m[:, 2] += m[:, 0] * x0 + m[:, 1] * y0  # the ROI's origin
    patch = cv2.warpAffine(source, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((dst_ring - (x0, y0)) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
    alpha = mask.astype(np.float32)[..., None] * (strength / 255.0)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    image[y0:y1, x0:x1] = (roi * (1 - alpha) + patch.astype(np.float32) * alpha + 0.5).astype(np.uint8)


def similarity_2pt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 similarity (rotation, uniform scale, translation) mapping points a[0], a[1] onto b[0], b[1]."""
    va = complex(*(a[1, :2] - a[0, :2]))
    vb = complex(*(b[1, :2] - b[0, :2]))
    z = vb / va if abs(va) > 1e-6 else 1 + 0j
    c, s = z.real, z.imag
    t = b[0, :2] - np.array([c * a[0, 0] - s * a[0, 1], s * a[0, 0] + c * a[0, 1]])
    return np.array([[c, -s, t[0]], [s, c, t[1]]], np.float32)
