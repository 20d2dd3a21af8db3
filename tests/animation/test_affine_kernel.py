"""The warp's compiled per-frame affines (src/animation/meshwarp/affine_kernel.py) give the NumPy
path's triangles, order, corners and coefficients bit for bit: moved or still, folded, with depth."""

from __future__ import annotations

import numpy as np
import pytest

from src.animation.meshwarp.raster import HAVE_NUMBA
from src.animation.meshwarp.warp import PiecewiseAffineWarper

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba is not installed: only the NumPy path runs")


def _grid(n: int = 24, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    xs = np.linspace(20, size - 20, n, dtype=np.float32)
    pts = np.stack(np.meshgrid(xs, xs), axis=-1).reshape(-1, 2)
    tris = []
    for r in range(n - 1):
        for c in range(n - 1):
            i = r * n + c
            tris += [(i, i + 1, i + n), (i + 1, i + n + 1, i + n)]
    return pts, np.array(tris, np.int32)


@pytest.mark.parametrize("seed", range(6))
def test_compiled_affines_equal_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    src, tris = _grid()
    cullable = rng.random(len(tris)) < 0.8
    compiled = PiecewiseAffineWarper(src, tris, (512, 512), cullable=cullable, compiled=True)
    plain = PiecewiseAffineWarper(src, tris, (512, 512), cullable=cullable, compiled=False)
    assert compiled.use_compiled and not plain.use_compiled
    seen_culled = seen_still = 0
    for k in range(40):
        dst = src.copy()
        moving = rng.random(len(src)) < (0.3 + 0.02 * k)
        dst[moving] += rng.normal(0, 1.5 + k * 0.5, (int(moving.sum()), 2)).astype(np.float32)  # large ones fold triangles
        dst[rng.random(len(src)) < 0.05] += np.float32(0.05)  # right at the "moved" threshold
        depth = rng.normal(0, 5, len(src)).astype(np.float32)
        depth[: len(src) // 3] = 1.0  # ties in the painter's order
        for dep in (depth, None):
            a1, d1 = compiled._affines(dst, dep)
            a2, d2 = plain._affines(dst, dep)
            assert np.array_equal(a1, a2)
            assert d1.dtype == d2.dtype == np.float32 and np.array_equal(d1, d2)
            assert compiled._coefs.dtype == plain._coefs.dtype and np.array_equal(compiled._coefs, plain._coefs)
            assert compiled.culled == plain.culled
            seen_culled += compiled.culled > 0
            seen_still += len(a1) < len(tris)
    assert seen_culled > 10 and seen_still > 10  # folds and still triangles were both exercised
    assert not compiled._table4.any()  # the compiled path ran: it leaves the OpenCV path's tables alone


def test_compiled_maps_equal_numpy_maps_for_no_motion() -> None:
    src, tris = _grid()
    for compiled in (True, False):
        w = PiecewiseAffineWarper(src, tris, (512, 512), compiled=compiled)
        mx, my, roi = w.maps(src)
        assert roi == (0, 0, 0, 0) and mx.size == 0
