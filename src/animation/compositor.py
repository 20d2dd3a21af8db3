"""Per-frame compositing of the layered portrait: one warp of the head layer over a still base.

base  = background (the filled plate, blurred, an image, a colour or the key colour) under the still body
frame = base * (1 - a) + head * a, with head and a = the head layer and its alpha through the warp's maps
then the hands (still, in front). Only the region the warp moved is recomposited; the rest is a
precomputed still frame. With `transparent`, the frame also has an alpha channel (the person).
"""

from __future__ import annotations

import cv2
import numpy as np

from src.animation.background import Background
from src.animation.layers import PortraitLayers


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
        self._front = layers.front if layers.front.max() > 0.02 else None
        self.transparent = background.transparent
        # The static alpha (the body) for outputs that carry alpha.
        self.still_alpha = np.clip(layers.still + u[..., 0], 0, 1).astype(np.float32)
        self.still_frame = self._compose_full(image, self.head_alpha)
        if background.kind == "keep":
            # At rest the composite is the portrait itself: keep it exact.
            self.still_frame = image.copy()
        self.last_alpha: np.ndarray | None = None

    def _compose_full(self, head_img: np.ndarray, a: np.ndarray) -> np.ndarray:
        out = self._blend(self.base, head_img, a)
        if self._front is not None:
            out = self._blend(out, self.image, self._front)
        return out

    @staticmethod
    def _blend(under: np.ndarray, over: np.ndarray, a: np.ndarray) -> np.ndarray:
        a3 = a[..., None] if a.ndim == 2 else a
        return (under.astype(np.float32) * (1 - a3) + over.astype(np.float32) * a3 + 0.5).astype(np.uint8)

    def compose(self, mx: np.ndarray, my: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
        """The frame for a warp whose backward maps (over `roi` = x0, y0, x1, y1) are mx, my."""
        out = self.still_frame.copy()
        x0, y0, x1, y1 = roi
        alpha_full = None
        if self.transparent:
            alpha_full = np.maximum(self.still_alpha, self.head_alpha)
        if x1 > x0 and y1 > y0:
            head = cv2.remap(self.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a = cv2.remap(self.head_alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a3 = a[..., None]
            base = self.base[y0:y1, x0:x1].astype(np.float32)
            roi_img = base + (head.astype(np.float32) - base) * a3
            if self._front is not None:
                f = self._front[y0:y1, x0:x1, None]
                roi_img += (self.image[y0:y1, x0:x1].astype(np.float32) - roi_img) * f
            out[y0:y1, x0:x1] = (roi_img + 0.5).astype(np.uint8)
            if alpha_full is not None:
                s = self.still_alpha[y0:y1, x0:x1]
                alpha_full[y0:y1, x0:x1] = s + (1.0 - s) * a
        self.last_alpha = alpha_full
        return out

    def with_alpha(self, bgr: np.ndarray) -> np.ndarray:
        """BGRA (uint8, straight alpha: the colour is the person's even where alpha is partial) from a frame
        composed over the plate and the last alpha (transparent mode)."""
        alpha = self.last_alpha if self.last_alpha is not None else np.ones(bgr.shape[:2], np.float32)
        return np.dstack([bgr, np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)])
