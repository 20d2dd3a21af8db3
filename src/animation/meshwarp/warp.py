"""Piecewise-affine image warp over a triangle mesh, fast enough for every frame.

The source mesh (points + triangles) is fixed per avatar; each frame moves the
points. The backward map (output pixel -> source pixel) is piecewise affine on
the moved triangles, so it is exact to:

1. solve one 2x3 affine per triangle (dst -> src), batched;
2. rasterise only the triangles that moved, at `map_scale` of the output
   resolution, evaluating each pixel's affine (a compiled loop, src/animation/
   raster.py; without numba: a triangle-index image and a `cv2.remap` gather);
   pixels no moved triangle covers keep the identity map, which is what still
   triangles would give;
3. upscale the map (it is piecewise linear, so bilinear upscaling errs only
   along seams) and `cv2.remap` the image once.

scikit-image's PiecewiseAffineTransform + warp computes the same map by a
point-in-triangle search per pixel; see scripts/benchmark.py for the comparison.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.animation.meshwarp import affine_kernel
from src.animation.meshwarp.raster import HAVE_NUMBA, raster_affine_maps, warm_up
from src.core.runtime.threads import configure as configure_threads

SUBPIXEL_BITS = 4  # fillConvexPoly fixed-point precision
MOVE_EPS_PX = 0.05  # a triangle whose corners all moved less than this keeps the identity map


class PiecewiseAffineWarper:
    def __init__(self, src_points: np.ndarray, triangles: np.ndarray, size: tuple[int, int], map_scale: float = 0.5,
                 cullable: np.ndarray | None = None, compiled: bool | None = None):
        """`src_points` (N, 2+) in output pixels, `triangles` (T, 3) indices, `size` (width, height).
        `cullable` (T,) marks triangles that may be dropped when they turn away from the camera
        (surface triangles); the others (elastic bands) are always drawn, folded or not."""
        configure_threads()  # BLAS, OpenCV and numba pools sized before the first frame (src/core/runtime/threads.py)
        self.src = np.ascontiguousarray(src_points[:, :2], dtype=np.float32)
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        self.width, self.height = size
        self.map_scale = float(map_scale)
        n = len(self.triangles)
        self._identity_row = n  # index of the identity affine in the table
        self._table4 = np.zeros((1, n + 1, 4), np.float32)
        self._table2 = np.zeros((1, n + 1, 2), np.float32)
        self._src_tri = self.src[self.triangles]
        e0 = self._src_tri[:, 1] - self._src_tri[:, 0]
        e1 = self._src_tri[:, 2] - self._src_tri[:, 0]
        self._src_sign = np.sign(e0[:, 0] * e1[:, 1] - e1[:, 0] * e0[:, 1]).astype(np.float32)
        self._cullable = np.ones(n, bool) if cullable is None else np.asarray(cullable, bool)
        self.culled = 0
        self.use_compiled = HAVE_NUMBA if compiled is None else (compiled and HAVE_NUMBA)
        if self.use_compiled:
            warm_up()
            affine_kernel.warm_up()
        self.last_roi: tuple[int, int, int, int] = (0, 0, 0, 0)

    def _affines(self, dst: np.ndarray, depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Active triangles (moved, facing the camera) and their dst corners, far to near when
        `depth` (per point, larger = farther) is given; fills the affine tables."""
        if self.use_compiled:  # the same numbers in one compiled pass (the tables are the OpenCV path's)
            active, d, self._coefs, self.culled = affine_kernel.affines_compiled(
                dst, np.ascontiguousarray(depth if depth is not None else dst[:, 0]), depth is not None, self.src,
                self.triangles, self._src_tri, self._src_sign, self._cullable)
            return active, d
        tri = self.triangles
        moved = np.abs(dst - self.src).max(axis=1) > MOVE_EPS_PX
        active = np.flatnonzero(moved[tri].any(axis=1))
        d = dst[tri[active]]  # (A, 3, 2) output px
        s = self._src_tri[active]
        # Closed-form affine per triangle: src = A @ dst + t (far cheaper than a batched solve).
        e0 = d[:, 1] - d[:, 0]
        e1 = d[:, 2] - d[:, 0]
        det = e0[:, 0] * e1[:, 1] - e1[:, 0] * e0[:, 1]
        # A triangle whose orientation flipped has turned away from the camera (a fold): cull it.
        ok = ((det * self._src_sign[active]) > 1e-6) | (~self._cullable[active] & (np.abs(det) > 1e-6))
        self.culled = int(len(active) - ok.sum())
        active, d, s, e0, e1, det = active[ok], d[ok], s[ok], e0[ok], e1[ok], det[ok]
        if depth is not None and len(active):
            # Painter's order: far triangles first, so nearer ones (the nose over a cheek) win.
            order = np.argsort(-depth[tri[active]].mean(axis=1), kind="stable")
            active, d, s, e0, e1, det = active[order], d[order], s[order], e0[order], e1[order], det[order]
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
        t4[0, self._identity_row] = (1.0, 0.0, 0.0, 1.0)
        t4[0, active, 0] = a00
        t4[0, active, 1] = a10
        t4[0, active, 2] = a01
        t4[0, active, 3] = a11
        t2[0, active, 0] = tx
        t2[0, active, 1] = ty
        self._coefs = np.stack([a00, a01, tx, a10, a11, ty], axis=1)  # rows in draw order (for the compiled path)
        return active, d

    def maps(self, dst_points: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """Backward maps (map_x, map_y) at full resolution over the region that moves, and that
        region (x0, y0, x1, y1); outside it the map is the identity. `dst_points` (N, 2) or (N, 3)
        with depth (larger = farther) for occlusion order."""
        pts = np.asarray(dst_points, dtype=np.float32)
        dst = np.ascontiguousarray(pts[:, :2])
        active, d = self._affines(dst, pts[:, 2] if pts.shape[1] > 2 else None)
        if len(active) == 0:
            self.last_roi = (0, 0, 0, 0)
            return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), (0, 0, 0, 0)
        x0 = max(int(np.floor(d[:, :, 0].min())) - 1, 0)
        y0 = max(int(np.floor(d[:, :, 1].min())) - 1, 0)
        x1 = min(int(np.ceil(d[:, :, 0].max())) + 2, self.width)
        y1 = min(int(np.ceil(d[:, :, 1].max())) + 2, self.height)
        inner = (x0, y0, x1, y1)
        # Upscaling a coarse map is exact only away from its edge: compute a margin wider (beyond the
        # frame if need be: the map needs no pixels), keep the inside.
        pad = int(np.ceil(0.5 / self.map_scale)) + 1 if self.map_scale < 1 else 0
        x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
        roi_w, roi_h = x1 - x0, y1 - y0
        mw = max(2, int(round(roi_w * self.map_scale)))
        mh = max(2, int(round(roi_h * self.map_scale)))
        sx, sy = roi_w / mw, roi_h / mh
        # Coarse pixel j samples output coordinate (j + 0.5) * s - 0.5 (as cv2.resize reads it back).
        gx = (np.arange(mw, dtype=np.float32) + 0.5) * sx - 0.5 + x0
        gy = (np.arange(mh, dtype=np.float32) + 0.5) * sy - 0.5 + y0
        gxr = gx[None, :]
        gyr = gy[:, None]
        if self.use_compiled:
            # One compiled pass: each coarse pixel inside a moved triangle gets that triangle's affine.
            mx: np.ndarray = np.empty((mh, mw), np.float32)
            my: np.ndarray = np.empty((mh, mw), np.float32)
            mx[:] = gxr
            my[:] = gyr
            tri_c = np.empty(d.shape, np.float64)
            tri_c[..., 0] = (d[..., 0] - x0 + 0.5) / sx - 0.5
            tri_c[..., 1] = (d[..., 1] - y0 + 0.5) / sy - 0.5
            raster_affine_maps(tri_c, self._coefs.astype(np.float64), gx, gy, mx, my)
        else:
            # Rasterise the moved triangles (in coarse-map pixels) into an index image, then gather.
            idx = np.full((mh, mw), float(self._identity_row), np.float32)
            one = 1 << SUBPIXEL_BITS
            pts = np.empty(d.shape, np.int32)
            pts[..., 0] = np.round(((d[..., 0] - x0 + 0.5) / sx - 0.5) * one)
            pts[..., 1] = np.round(((d[..., 1] - y0 + 0.5) / sy - 0.5) * one)
            fill = cv2.fillConvexPoly
            for k, t in enumerate(active.tolist()):
                fill(idx, pts[k], (float(t),), cv2.LINE_8, SUBPIXEL_BITS)
            zeros = np.zeros_like(idx)
            a = cv2.remap(self._table4, idx, zeros, cv2.INTER_NEAREST)
            b = cv2.remap(self._table2, idx, zeros, cv2.INTER_NEAREST)
            mx = a[..., 0] * gxr
            mx += a[..., 2] * gyr
            mx += b[..., 0]
            my = a[..., 1] * gxr
            my += a[..., 3] * gyr
            my += b[..., 1]
        if (mw, mh) != (roi_w, roi_h):
            mx = cv2.resize(mx, (roi_w, roi_h), interpolation=cv2.INTER_LINEAR)
            my = cv2.resize(my, (roi_w, roi_h), interpolation=cv2.INTER_LINEAR)
        ix0, iy0, ix1, iy1 = inner
        mx = mx[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        my = my[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
        self.last_roi = inner
        return mx, my, inner

    def warp(self, image: np.ndarray, dst_points: np.ndarray, out: np.ndarray | None = None,
             border: int = cv2.BORDER_REPLICATE) -> np.ndarray:
        """The image warped so that source point i lands on dst_points[i].

        Only the region that moves is resampled; the rest is copied from `image`
        (into `out` when given, which must not be `image`).
        """
        mx, my, (x0, y0, x1, y1) = self.maps(dst_points)
        if out is None:
            out = image.copy()
        else:
            np.copyto(out, image)
        if x1 > x0 and y1 > y0:
            cv2.remap(image, mx, my, cv2.INTER_LINEAR, dst=out[y0:y1, x0:x1], borderMode=border)
        return out
