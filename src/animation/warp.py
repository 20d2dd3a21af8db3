"""Piecewise-affine image warp over a triangle mesh, fast enough for every frame.

The source mesh (points + triangles) is fixed per avatar; each frame moves the
points. The backward map (output pixel -> source pixel) is piecewise affine on
the moved triangles, so it is exact to:

1. solve one 2x3 affine per triangle (dst -> src), batched;
2. rasterise only the triangles that moved into a triangle-index image, at
   `map_scale` of the output resolution (pixels no moved triangle covers keep
   the identity map, which is what still triangles would give);
3. gather each pixel's affine with `cv2.remap` (nearest) from a 1-row table and
   evaluate it; upscale the map (it is piecewise linear, so bilinear upscaling
   errs only along seams) and `cv2.remap` the image once.

scikit-image's PiecewiseAffineTransform + warp computes the same map by a
point-in-triangle search per pixel; see scripts/benchmark.py for the comparison.
"""

from __future__ import annotations

import cv2
import numpy as np

SUBPIXEL_BITS = 4  # fillConvexPoly fixed-point precision
MOVE_EPS_PX = 0.05  # a triangle whose corners all moved less than this keeps the identity map


class PiecewiseAffineWarper:
    def __init__(self, src_points: np.ndarray, triangles: np.ndarray, size: tuple[int, int], map_scale: float = 0.5):
        """`src_points` (N, 2) in output pixels, `triangles` (T, 3) indices, `size` (width, height)."""
        self.src = np.ascontiguousarray(src_points[:, :2], dtype=np.float32)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        self.width, self.height = size
        self.map_scale = float(map_scale)
        self.map_w = max(2, int(round(self.width * self.map_scale)))
        self.map_h = max(2, int(round(self.height * self.map_scale)))
        # Pixel centres of the coarse map, in output coordinates (as cv2.resize samples them).
        sx = self.width / self.map_w
        sy = self.height / self.map_h
        xs = (np.arange(self.map_w, dtype=np.float32) + 0.5) * sx - 0.5
        ys = (np.arange(self.map_h, dtype=np.float32) + 0.5) * sy - 0.5
        self._gx, self._gy = np.meshgrid(xs, ys)
        self._sx, self._sy = sx, sy
        self._idx = np.empty((self.map_h, self.map_w), np.float32)
        self._zeros = np.zeros((self.map_h, self.map_w), np.float32)
        n = len(self.triangles)
        self._identity_row = n  # index of the identity affine in the table
        self._table4 = np.zeros((1, n + 1, 4), np.float32)
        self._table2 = np.zeros((1, n + 1, 2), np.float32)
        self._src_tri = self.src[self.triangles]  # (T, 3, 2)
        self._full_identity = None

    def maps(self, dst_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full-resolution backward maps (map_x, map_y) for `dst_points` (N, 2+)."""
        dst = np.asarray(dst_points[:, :2], dtype=np.float32)
        tri = self.triangles
        moved = np.abs(dst - self.src).max(axis=1) > MOVE_EPS_PX
        active = np.flatnonzero(moved[tri].any(axis=1))
        d = dst[tri[active]]  # (A, 3, 2) output px
        s = self._src_tri[active]
        # Closed-form affine per triangle: src = A @ dst + t (far cheaper than a batched solve).
        e0 = d[:, 1] - d[:, 0]
        e1 = d[:, 2] - d[:, 0]
        det = e0[:, 0] * e1[:, 1] - e1[:, 0] * e0[:, 1]
        ok = np.abs(det) > 1e-6
        active, d, s, e0, e1, det = active[ok], d[ok], s[ok], e0[ok], e1[ok], det[ok]
        f0 = s[:, 1] - s[:, 0]
        f1 = s[:, 2] - s[:, 0]
        inv = 1.0 / det
        # E^-1 = inv * [[e1y, -e1x], [-e0y, e0x]]; A = F @ E^-1 with F = [f0 f1] as columns.
        a00 = (f0[:, 0] * e1[:, 1] - f1[:, 0] * e0[:, 1]) * inv
        a01 = (f1[:, 0] * e0[:, 0] - f0[:, 0] * e1[:, 0]) * inv
        a10 = (f0[:, 1] * e1[:, 1] - f1[:, 1] * e0[:, 1]) * inv
        a11 = (f1[:, 1] * e0[:, 0] - f0[:, 1] * e1[:, 0]) * inv
        tx = s[:, 0, 0] - a00 * d[:, 0, 0] - a01 * d[:, 0, 1]
        ty = s[:, 0, 1] - a10 * d[:, 0, 0] - a11 * d[:, 0, 1]
        t4 = self._table4
        t2 = self._table2
        t4[0, :, :] = 0.0
        t2[0, :, :] = 0.0
        t4[0, self._identity_row] = (1.0, 0.0, 0.0, 1.0)
        t4[0, active, 0] = a00
        t4[0, active, 1] = a10
        t4[0, active, 2] = a01
        t4[0, active, 3] = a11
        t2[0, active, 0] = tx
        t2[0, active, 1] = ty
        # Rasterise the moved triangles (in coarse-map pixels) into the index image.
        idx = self._idx
        idx.fill(float(self._identity_row))
        scale = np.array([1.0 / self._sx, 1.0 / self._sy])
        pts = np.round((d + 0.5) * scale * (1 << SUBPIXEL_BITS) - 0.5 * (1 << SUBPIXEL_BITS)).astype(np.int32)
        fill = cv2.fillConvexPoly
        for k, t in enumerate(active.tolist()):
            fill(idx, pts[k], float(t), cv2.LINE_8, SUBPIXEL_BITS)
        a = cv2.remap(t4, idx, self._zeros, cv2.INTER_NEAREST)
        b = cv2.remap(t2, idx, self._zeros, cv2.INTER_NEAREST)
        gx, gy = self._gx, self._gy
        mx = a[..., 0] * gx
        mx += a[..., 2] * gy
        mx += b[..., 0]
        my = a[..., 1] * gx
        my += a[..., 3] * gy
        my += b[..., 1]
        if self.map_w != self.width or self.map_h != self.height:
            mx = cv2.resize(mx, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
            my = cv2.resize(my, (self.width, self.height), interpolation=cv2.INTER_LINEAR)
        return mx, my

    def warp(self, image: np.ndarray, dst_points: np.ndarray, border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """The image warped so that source point i lands on dst_points[i]."""
        mx, my = self.maps(dst_points)
        return cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=border)
