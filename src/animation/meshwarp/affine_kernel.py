"""The warp's per-frame triangle affines in one compiled pass (numba), the same numbers as the NumPy code.

`PiecewiseAffineWarper._affines` selects the moved triangles, culls the folded ones, orders them far
to near and solves each one's dst -> src affine: about 30 NumPy calls a frame. Live, between two frames
30 ms apart, such call-heavy code runs ~40 % slower than back to back (cold caches), where compiled code
does not. This is the same arithmetic, operation by operation, in float32 like NumPy's (constants are
float32 too, as NumPy casts Python scalars against float32 arrays), so the affines are bit for bit the
same (tests/animation/test_affine_kernel.py; tests/pipeline/test_render_determinism.py).
"""

from __future__ import annotations

import numpy as np

from src.animation.meshwarp.raster import HAVE_NUMBA, njit

_EPS_MOVE = np.float32(0.05)  # MOVE_EPS_PX
_EPS_DET = np.float32(1e-6)
_ONE = np.float32(1.0)
_THREE = np.float32(3.0)


@njit(cache=True, nogil=True, fastmath=False)
def affines_compiled(dst: np.ndarray, depth: np.ndarray, use_depth: bool, src: np.ndarray, triangles: np.ndarray,
                     src_tri: np.ndarray, src_sign: np.ndarray, cullable: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(active triangle indices in draw order, their dst corners (A, 3, 2), affine rows (A, 6) =
    a00, a01, tx, a10, a11, ty, number culled). float32 in, float32 out."""
    n_pts = dst.shape[0]
    moved = np.zeros(n_pts, np.bool_)
    for i in range(n_pts):
        m = max(abs(dst[i, 0] - src[i, 0]), abs(dst[i, 1] - src[i, 1]))
        moved[i] = m > _EPS_MOVE
    n_tri = triangles.shape[0]
    cand = np.empty(n_tri, np.int64)
    n_cand = 0
    for t in range(n_tri):
        if moved[triangles[t, 0]] or moved[triangles[t, 1]] or moved[triangles[t, 2]]:
            cand[n_cand] = t
            n_cand += 1
    keep = np.empty(n_cand, np.int64)
    dets = np.empty(n_cand, np.float32)
    n_keep = 0
    for k in range(n_cand):
        t = cand[k]
        p0, p1, p2 = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        e0x = dst[p1, 0] - dst[p0, 0]
        e0y = dst[p1, 1] - dst[p0, 1]
        e1x = dst[p2, 0] - dst[p0, 0]
        e1y = dst[p2, 1] - dst[p0, 1]
        det = e0x * e1y - e1x * e0y
        if (det * src_sign[t]) > _EPS_DET or ((not cullable[t]) and abs(det) > _EPS_DET):
            keep[n_keep] = t
            dets[n_keep] = det
            n_keep += 1
    culled = n_cand - n_keep
    active = keep[:n_keep]
    dets = dets[:n_keep]
    if use_depth and n_keep > 0:
        key = np.empty(n_keep, np.float32)
        for k in range(n_keep):
            t = active[k]
            key[k] = -(((depth[triangles[t, 0]] + depth[triangles[t, 1]]) + depth[triangles[t, 2]]) / _THREE)
        order = np.argsort(key, kind="mergesort")  # stable, as NumPy's kind="stable"
        active = active[order]
        dets = dets[order]
    d = np.empty((n_keep, 3, 2), np.float32)
    coefs = np.empty((n_keep, 6), np.float32)
    for k in range(n_keep):
        t = active[k]
        for c in range(3):
            d[k, c, 0] = dst[triangles[t, c], 0]
            d[k, c, 1] = dst[triangles[t, c], 1]
        e0x = d[k, 1, 0] - d[k, 0, 0]
        e0y = d[k, 1, 1] - d[k, 0, 1]
        e1x = d[k, 2, 0] - d[k, 0, 0]
        e1y = d[k, 2, 1] - d[k, 0, 1]
        f0x = src_tri[t, 1, 0] - src_tri[t, 0, 0]
        f0y = src_tri[t, 1, 1] - src_tri[t, 0, 1]
        f1x = src_tri[t, 2, 0] - src_tri[t, 0, 0]
        f1y = src_tri[t, 2, 1] - src_tri[t, 0, 1]
        inv = _ONE / dets[k]
        a00 = (f0x * e1y - f1x * e0y) * inv
        a01 = (f1x * e0x - f0x * e1x) * inv
        a10 = (f0y * e1y - f1y * e0y) * inv
        a11 = (f1y * e0x - f0y * e1x) * inv
        tx = src_tri[t, 0, 0] - a00 * d[k, 0, 0] - a01 * d[k, 0, 1]
        ty = src_tri[t, 0, 1] - a10 * d[k, 0, 0] - a11 * d[k, 0, 1]
        coefs[k, 0] = a00
        coefs[k, 1] = a01
        coefs[k, 2] = tx
        coefs[k, 3] = a10
        coefs[k, 4] = a11
        coefs[k, 5] = ty
    return active, d, coefs, culled


def warm_up() -> None:
    """Compile (or load the cached compilation) before the first real frame."""
    if not HAVE_NUMBA:
        return
    pts = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]], np.float32)
    tri = np.array([[0, 1, 2]], np.int32)
    affines_compiled(pts + np.float32(1.0), np.zeros(3, np.float32), True, pts, tri, pts[tri], np.ones(1, np.float32),
                     np.ones(1, np.bool_))
