"""Rasterising the warp's moved triangles straight into backward maps (compiled with numba).

For every coarse-map pixel whose centre lies inside a triangle (drawn in order,
so later, nearer triangles win), the triangle's dst -> src affine is evaluated
at that pixel's output coordinate. One pass, no per-triangle Python call: the
OpenCV fallback (a fillConvexPoly per triangle, then a gather) spends most of a
frame's time in Python call overhead.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a pinned dependency; the OpenCV path stays as a fallback
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        def wrap(fn):
            return fn

        return wrap


@njit(cache=True, nogil=True, fastmath=False)
def raster_affine_maps(tri: np.ndarray, coefs: np.ndarray, gx: np.ndarray, gy: np.ndarray, mx: np.ndarray, my: np.ndarray) -> None:
    """tri (A, 3, 2) corners in coarse-pixel coordinates (pixel centres at integers); coefs (A, 6) =
    (a00, a01, tx, a10, a11, ty) mapping output (x, y) to source; gx (W,), gy (H,) the output
    coordinates of the coarse pixels; mx, my (H, W) hold the identity and are overwritten in place."""
    h, w = mx.shape
    for k in range(tri.shape[0]):
        x0, y0 = tri[k, 0, 0], tri[k, 0, 1]
        x1, y1 = tri[k, 1, 0], tri[k, 1, 1]
        x2, y2 = tri[k, 2, 0], tri[k, 2, 1]
        area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)
        if abs(area) < 1e-12:
            continue
        sign = 1.0 if area > 0 else -1.0
        eps = -1e-7 * abs(area)
        xmin = max(int(np.ceil(min(x0, min(x1, x2)) - 1e-6)), 0)
        xmax = min(int(np.floor(max(x0, max(x1, x2)) + 1e-6)), w - 1)
        ymin = max(int(np.ceil(min(y0, min(y1, y2)) - 1e-6)), 0)
        ymax = min(int(np.floor(max(y0, max(y1, y2)) + 1e-6)), h - 1)
        c0, c1, c2, c3, c4, c5 = coefs[k, 0], coefs[k, 1], coefs[k, 2], coefs[k, 3], coefs[k, 4], coefs[k, 5]
        for y in range(ymin, ymax + 1):
            fy = float(y)
            oy = gy[y]
            for x in range(xmin, xmax + 1):
                fx = float(x)
                e0 = sign * ((x2 - x1) * (fy - y1) - (y2 - y1) * (fx - x1))
                if e0 < eps:
                    continue
                e1 = sign * ((x0 - x2) * (fy - y2) - (y0 - y2) * (fx - x2))
                if e1 < eps:
                    continue
                e2 = sign * ((x1 - x0) * (fy - y0) - (y1 - y0) * (fx - x0))
                if e2 < eps:
                    continue
                ox = gx[x]
                mx[y, x] = c0 * ox + c1 * oy + c2
                my[y, x] = c3 * ox + c4 * oy + c5


def warm_up() -> None:
    """Compile (or load the cached compilation) before the first real frame."""
    tri = np.array([[[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]]])
    coefs = np.array([[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]])
    g = np.arange(4, dtype=np.float32)
    m = np.zeros((4, 4), np.float32)
    raster_affine_maps(tri, coefs, g, g, m, m.copy())
