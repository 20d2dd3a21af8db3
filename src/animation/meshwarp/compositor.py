"""Per-frame compositing of the layered portrait: one warp of the head layer over a still base.

base  = background (the filled plate, blurred, an image, a colour or the key colour) under the still body
frame = base * (1 - a) + head * a, with head and a = the head layer and its alpha through the warp's maps
then the hands (still, in front). Only the region the warp moved is recomposited; the rest is a
precomputed still frame. With `transparent`, the frame also has an alpha channel (the person).
"""

from __future__ import annotations

import cv2
import numpy as np

from src.animation.meshwarp.background import Background
from src.animation.meshwarp.layers import PortraitLayers


class LayerCompositor:
    def __init__(self, image: np.ndarray, layers: PortraitLayers, background: Background) -> None:
        self.image = image
        self.layers = layers
        self.background = background
        bg = background.render(layers.plate)
        s = layers.still[..., None]
        u = (layers.under * (1.0 - layers.still))[..., None]  # the neck zone behind the head: the plate, whatever the background
        base = (bg.astype(np.float32) * (1 - s - u) + layers.plate.astype(np.float32) * u + image.astype(np.float32) * s
                + 0.5).astype(np.uint8)
        # Exact where the body is opaque or absent (no rounding drift on the still parts).
        base = np.where(s >= 0.999, image, np.where((s <= 0.001) & (u <= 0.001), bg, base))
        self.base = np.ascontiguousarray(base)
        self.head_alpha = layers.head.astype(np.float32)
        self._layer = np.dstack([image, np.clip(self.head_alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
        self._front = layers.front if layers.front.max() > 0.02 else None
        self.transparent = background.transparent
        # The static alpha (the body) for outputs that carry alpha.
        self.still_alpha = np.clip(layers.still + u[..., 0], 0, 1).astype(np.float32)
        self.still_frame = self._compose_full(image, self.head_alpha)
        if background.kind == "keep":
            # At rest the composite is the portrait itself: keep it exact.
            self.still_frame = image.copy()
        self.last_alpha: np.ndarray | None = None
        self._moving_of: tuple[np.ndarray, np.ndarray] | None = None
        self._moving = np.zeros(0, np.intp)
        self._src_lo = self._src_hi = np.zeros(2, np.float32)

    def _compose_full(self, head_img: np.ndarray, a: np.ndarray) -> np.ndarray:
        out = self._blend(self.base, head_img, a)
        if self._front is not None:
            out = self._blend(out, self.image, self._front)
        return out

    @staticmethod
    def _blend(under: np.ndarray, over: np.ndarray, a: np.ndarray) -> np.ndarray:
        a3 = a[..., None] if a.ndim == 2 else a
        return (under.astype(np.float32) * (1 - a3) + over.astype(np.float32) * a3 + 0.5).astype(np.uint8)

    def compose(self, mx: np.ndarray, my: np.ndarray, roi: tuple[int, int, int, int],
                box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """The frame for a warp whose backward maps (over `roi` = x0, y0, x1, y1) are mx, my. `box`: where the
        head layer is, before and after the move (`head_box`); outside it the frame is the still frame, so only
        the part of the maps inside it is used (the warp's band around the head moves nothing but transparency)."""
        out = self.still_frame.copy()
        x0, y0, x1, y1 = roi
        if box is not None and x1 > x0 and y1 > y0:
            bx0, by0, bx1, by1 = max(box[0], x0), max(box[1], y0), min(box[2], x1), min(box[3], y1)
            if bx1 > bx0 and by1 > by0:
                mx = mx[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
                my = my[by0 - y0 : by1 - y0, bx0 - x0 : bx1 - x0]
                x0, y0, x1, y1 = bx0, by0, bx1, by1
        alpha_full = None
        if self.transparent:
            alpha_full = np.maximum(self.still_alpha, self.head_alpha)
        if x1 > x0 and y1 > y0:
            # One remap of the BGRA layer (colour and alpha together), straight from the float maps: OpenCV
            # converts them to fixed point block by block, the same numbers as convertMaps without the copies.
            warped = cv2.remap(self._layer, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            head = cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR)
            a = warped[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
            # One SIMD pass: head * a + base * (1 - a) (exact where a is 0 or 1).
            roi_img = cv2.blendLinear(head, self.base[y0:y1, x0:x1], a, 1.0 - a)
            if self._front is not None:
                f = self._front[y0:y1, x0:x1]
                roi_img = cv2.blendLinear(self.image[y0:y1, x0:x1], roi_img, f, 1.0 - f)
            out[y0:y1, x0:x1] = roi_img
            if alpha_full is not None:
                s = self.still_alpha[y0:y1, x0:x1]
                alpha_full[y0:y1, x0:x1] = s + (1.0 - s) * a
        self.last_alpha = alpha_full
        return out

    def head_box(self, src: np.ndarray, dst: np.ndarray, rigidity: np.ndarray) -> tuple[int, int, int, int]:
        """Bounding box (x0, y0, x1, y1) of the moving vertices (rigidity > 0) before and after the move."""
        if self._moving_of is None or self._moving_of[0] is not src or self._moving_of[1] is not rigidity:
            # the source side is the same every frame: computed once (the arrays are held, so never confused)
            self._moving = np.flatnonzero(rigidity > 0)
            ps = src[self._moving, :2]
            self._src_lo, self._src_hi = ps.min(axis=0), ps.max(axis=0)
            self._moving_of = (src, rigidity)
        pd = dst[self._moving, :2]
        lo = np.minimum(self._src_lo, pd.min(axis=0))
        hi = np.maximum(self._src_hi, pd.max(axis=0))
        h, w = self.image.shape[:2]
        x0, y0 = np.floor(lo).astype(int) - 2
        x1, y1 = np.ceil(hi).astype(int) + 3
        return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)

    def with_alpha(self, bgr: np.ndarray) -> np.ndarray:
        """BGRA (uint8, straight alpha: the colour is the person's even where alpha is partial) from a frame
        composed over the plate and the last alpha (transparent mode)."""
        alpha = self.last_alpha if self.last_alpha is not None else np.ones(bgr.shape[:2], np.float32)
        return np.dstack([bgr, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
