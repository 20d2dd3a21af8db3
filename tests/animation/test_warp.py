"""PiecewiseAffineWarper against scikit-image's PiecewiseAffineTransform + warp on the same image and mesh."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from scipy.spatial import Delaunay

from src.animation.meshwarp.warp import PiecewiseAffineWarper

SIZE = 256


def _lattice(rows: int = 9, cols: int = 9, spacing: float = 28.0, margin: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """A triangular lattice (no four points near a common circle, so its Delaunay triangulation is
    stable under moderate motion) and a mask of its interior points (border rows/columns stay fixed)."""
    pts, inner = [], []
    for r in range(rows):
        for c in range(cols):
            pts.append((margin + c * spacing + (spacing / 2 if r % 2 else 0), margin + r * spacing * np.sqrt(3) / 2))
            inner.append(0 < r < rows - 1 and 0 < c < cols - 1)
    return np.array(pts, np.float64), np.array(inner)


def _same_topology(a: np.ndarray, b: np.ndarray) -> bool:
    return set(map(tuple, np.sort(a, axis=1))) == set(map(tuple, np.sort(b, axis=1)))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def texture(portrait_bgr: np.ndarray) -> np.ndarray:
    return cv2.resize(portrait_bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def deformed_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src, inner = _lattice()
    assert src[:, 0].max() < SIZE and src[:, 1].max() < SIZE
    tri = Delaunay(src).simplices.astype(np.int32)
    dst = src.copy()
    # A moderate, smooth deformation: up to 7 px, about a quarter of the mesh spacing.
    dst[inner] += 7.0 * np.stack([np.sin(src[inner, 1] / 30.0), np.cos(src[inner, 0] / 35.0)], axis=1)
    assert _same_topology(tri, Delaunay(dst).simplices), "test setup: the deformation must keep the triangulation"
    return src, dst, tri


@pytest.fixture(scope="module")
def skimage_reference(texture: np.ndarray, deformed_mesh) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's warp of the texture and the mask of pixels inside the deformed mesh (eroded 2 px)."""
    from skimage.transform import PiecewiseAffineTransform, warp

    src, dst, _ = deformed_mesh
    tform = PiecewiseAffineTransform()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # estimate() is deprecated in newer scikit-image
        assert tform.estimate(dst, src)  # output coordinates -> input coordinates
    ref = warp(texture.astype(np.float64) / 255.0, tform, output_shape=texture.shape[:2], order=1, mode="edge", cval=0.0)
    ref = np.clip(ref * 255.0, 0, 255)
    inside = np.zeros(texture.shape[:2], np.uint8)
    hull = cv2.convexHull(dst.astype(np.float32))
    cv2.fillConvexPoly(inside, np.round(hull).astype(np.int32), 1)
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
    return ref, inside


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "opencv"])
@pytest.mark.parametrize("map_scale", [1.0, 0.5])
def test_matches_scikit_image_psnr_35db(texture, deformed_mesh, skimage_reference, map_scale: float, compiled: bool) -> None:
    src, dst, tri = deformed_mesh
    ref, inside = skimage_reference
    warper = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE), map_scale=map_scale, compiled=compiled)
    assert warper.use_compiled == compiled
    out = warper.warp(texture, dst.astype(np.float32))
    assert out.shape == texture.shape and out.dtype == np.uint8
    psnr = _psnr(out[inside], ref[inside])
    moved = np.abs(out.astype(int) - texture.astype(int))[inside].mean()
    print(f"map_scale {map_scale}: PSNR vs scikit-image {psnr:.1f} dB (mean change from the source {moved:.1f})")
    assert moved > 3.0  # the warp really moved things (the comparison is not trivially equal)
    assert psnr >= 35.0


def test_compiled_and_opencv_rasterisers_agree(texture, deformed_mesh) -> None:
    """The compiled rasteriser and the OpenCV fallback give the same maps away from triangle edges."""
    src, dst, tri = deformed_mesh
    a = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE), map_scale=1.0, compiled=True)
    b = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE), map_scale=1.0, compiled=False)
    ax, ay, roi_a = a.maps(dst.astype(np.float32))
    bx, by, roi_b = b.maps(dst.astype(np.float32))
    assert roi_a == roi_b
    diff = np.hypot(ax - bx, ay - by)
    assert np.median(diff) < 1e-3  # identical inside triangles
    assert np.mean(diff > 0.5) < 0.02  # they may differ only on pixels along edges (coverage rules differ)


def test_identity_mesh_copies_the_image(texture, deformed_mesh) -> None:
    src, _, tri = deformed_mesh
    warper = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE))
    out = warper.warp(texture, src.astype(np.float32))
    assert np.array_equal(out, texture)
    assert out is not texture


def test_only_the_moving_region_changes(texture, deformed_mesh) -> None:
    """Moving one interior point changes pixels only inside the triangles around it."""
    src, _, tri = deformed_mesh
    k = 40  # an interior lattice point
    dst = src.copy()
    dst[k] += (5.0, -4.0)
    warper = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE), map_scale=1.0)
    out = warper.warp(texture, dst.astype(np.float32))
    around = np.zeros(texture.shape[:2], np.uint8)
    for t in tri[(tri == k).any(axis=1)]:
        cv2.fillConvexPoly(around, np.round(np.vstack([src[t], dst[t]])).astype(np.int32)[[0, 1, 2]], 1)
        cv2.fillConvexPoly(around, np.round(dst[t]).astype(np.int32), 1)
    around = cv2.dilate(around, np.ones((5, 5), np.uint8)).astype(bool)
    changed = np.any(out != texture, axis=2)
    assert changed.any()
    assert not changed[~around].any()
    x0, y0, x1, y1 = warper.last_roi
    assert x1 - x0 < SIZE / 2 and y1 - y0 < SIZE / 2


def test_a_flipped_triangle_is_culled(texture, deformed_mesh) -> None:
    src, _, tri = deformed_mesh
    k = 40
    ring = np.unique(tri[(tri == k).any(axis=1)])
    dst = src.copy()
    # Push the point across its neighbours: some of its triangles turn over.
    far = ring[ring != k][0]
    dst[k] = src[far] + 1.5 * (src[far] - src[k])
    warper = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE))
    warper.warp(texture, dst.astype(np.float32))
    assert warper.culled > 0
    not_cullable = PiecewiseAffineWarper(src.astype(np.float32), tri, (SIZE, SIZE), cullable=np.zeros(len(tri), bool))
    not_cullable.warp(texture, dst.astype(np.float32))
    assert not_cullable.culled == 0
