"""The source's warp mesh: face landmarks, a head ring (hair, neck), a still background ring, the frame border.

Vertices carry a rigidity weight: 1 moves fully with the head, 0 stays still.
The band between the head ring and the background ring stretches, so the whole
head moves as one and the background stays put, with no hard edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay

from src.core.face_mesh import (
    CHIN,
    FACE_OVAL,
    INNER_MOUTH_RING,
    LEFT_BROW,
    LEFT_EYE_RING,
    LIPS_LOWER_OUTER,
    LIPS_UPPER_OUTER,
    N_MESH,
    RIGHT_BROW,
    RIGHT_EYE_RING,
    face_frame,
    interocular,
)

# Landmarks the warp mesh always keeps: every contour that moves on its own.
NOSE_POINTS = [1, 2, 4, 5, 6, 19, 94, 168, 197, 195, 98, 327, 129, 358, 48, 278, 64, 294, 115, 344, 220, 440]
CHEEK_JAW_POINTS = [152, 175, 199, 200, 18, 83, 313, 57, 287, 202, 422, 204, 424, 210, 430, 212, 432, 205, 425, 50, 280]
FORCED_POINTS = sorted(set(INNER_MOUTH_RING + LIPS_UPPER_OUTER + LIPS_LOWER_OUTER + LEFT_EYE_RING + RIGHT_EYE_RING + LEFT_BROW
                           + RIGHT_BROW + FACE_OVAL + NOSE_POINTS + CHEEK_JAW_POINTS))
FACE_SPACING_IOD = 0.16  # other landmarks are added only where the mesh is sparser than this


def select_face_points(local: np.ndarray, spacing: float = FACE_SPACING_IOD) -> np.ndarray:
    """Indices of the face landmarks the warp triangulates: the contours plus a farthest-point
    sample of the rest. Fewer triangles, same motion: cheeks and forehead are smooth."""
    chosen = list(FORCED_POINTS)
    xy = local[:N_MESH, :2]
    dist = np.min(np.linalg.norm(xy[:, None, :] - xy[None, chosen, :], axis=2), axis=1)
    while True:
        i = int(np.argmax(dist))
        if dist[i] < spacing:
            break
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(xy - xy[i], axis=1))
    return np.array(sorted(chosen), np.int32)

BORDER_STEPS = 8  # points per image edge


@dataclass
class SourceMesh:
    points: np.ndarray  # (N, 3) float32 output px; z in the same scale
    triangles: np.ndarray  # (T, 3) int32
    rigidity: np.ndarray  # (N,) float32: 1 follows the head fully, 0 still
    n_face: int  # the first n_face points are face landmarks 0..467

    def to_arrays(self, prefix: str = "mesh_") -> dict[str, np.ndarray]:
        return {
            prefix + "points": self.points,
            prefix + "triangles": self.triangles,
            prefix + "rigidity": self.rigidity,
            prefix + "n_face": np.array(self.n_face),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str = "mesh_") -> SourceMesh:
        return cls(
            points=np.asarray(arrays[prefix + "points"], np.float32),
            triangles=np.asarray(arrays[prefix + "triangles"], np.int32),
            rigidity=np.asarray(arrays[prefix + "rigidity"], np.float32),
            n_face=int(arrays[prefix + "n_face"]),
        )


def _dedupe(points: np.ndarray, existing: np.ndarray, min_dist: float) -> np.ndarray:
    keep = []
    pool = list(existing[:, :2])
    for p in points:
        if all(np.hypot(*(p[:2] - q)) >= min_dist for q in pool):
            keep.append(p)
            pool.append(p[:2])
    return np.array(keep, np.float32).reshape(-1, points.shape[1])


def build_source_mesh(landmarks: np.ndarray, size: tuple[int, int], head_margin: float, background_margin: float,
                      neck_follow: float) -> SourceMesh:
    """Mesh for a source whose 478 landmarks are in output pixels (`size` = width, height)."""
    w, h = size
    lm = np.asarray(landmarks, np.float32)
    face = lm[:N_MESH]
    iod = interocular(lm)
    oval = lm[FACE_OVAL]
    center = oval[:, :2].mean(axis=0)
    _, axes = face_frame(lm)
    up = -axes[:2, 1] / (np.linalg.norm(axes[:2, 1]) + 1e-9)  # image direction of the top of the head
    d = oval[:, :2] - center
    dn = d / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-9)
    upness = dn @ up  # +1 at the top of the head, -1 at the chin
    # Hair needs more room above the forehead than at the sides; the neck less below the chin.
    head_scale = head_margin + 0.25 * np.clip(upness, 0, 1) - 0.1 * np.clip(-upness, 0, 1)
    head_ring = np.empty((len(oval), 3), np.float32)
    head_ring[:, :2] = center + d * head_scale[:, None]
    head_ring[:, 2] = oval[:, 2]
    chin_y = float((lm[CHIN, :2] - center) @ -up)  # distance of the chin below the centre (positive)
    below = (head_ring[:, :2] - center) @ -up
    # Ring points below the chin are neck: they follow the head only partly.
    neck = np.clip((below - 0.6 * chin_y) / (0.5 * chin_y + 1e-6), 0, 1)
    head_rigidity = 1.0 - neck * (1.0 - neck_follow)

    bg_ring = np.zeros((len(oval), 3), np.float32)
    bg_ring[:, :2] = center + d * background_margin * (1.0 + 0.15 * np.clip(upness, 0, 1))[:, None]
    edge_x = np.linspace(0, w - 1, BORDER_STEPS + 1)
    edge_y = np.linspace(0, h - 1, BORDER_STEPS + 1)
    border = [(x, 0) for x in edge_x] + [(x, h - 1) for x in edge_x] + [(0, y) for y in edge_y[1:-1]] + [(w - 1, y) for y in edge_y[1:-1]]
    border_pts = np.zeros((len(border), 3), np.float32)
    border_pts[:, :2] = np.array(border, np.float32)

    inside = lambda p: (p[:, 0] > 1) & (p[:, 0] < w - 2) & (p[:, 1] > 1) & (p[:, 1] < h - 2)  # noqa: E731
    min_dist = max(2.0, 0.08 * iod)
    keep_head = inside(head_ring)
    head_ring, head_rigidity = head_ring[keep_head], head_rigidity[keep_head]
    head_ok = _dedupe(head_ring, face, min_dist)
    # keep rigidity aligned with the points that survived de-duplication
    head_rig = np.array([head_rigidity[np.argmin(np.linalg.norm(head_ring[:, :2] - p[:2], axis=1))] for p in head_ok], np.float32)
    bg_ring = bg_ring[inside(bg_ring)]
    bg_ok = _dedupe(bg_ring, np.vstack([face, head_ok]) if len(head_ok) else face, min_dist * 2)
    fixed_pts = np.vstack([bg_ok, border_pts]) if len(bg_ok) else border_pts
    fixed_ok = _dedupe(fixed_pts, np.vstack([face, head_ok]) if len(head_ok) else face, min_dist)

    points = np.vstack([face, head_ok, fixed_ok]).astype(np.float32)
    rigidity = np.concatenate([np.ones(len(face)), head_rig, np.zeros(len(fixed_ok))]).astype(np.float32)
    # Triangulate a subset of the face landmarks (all of them still move; unused ones just carry no triangle).
    _, axes = face_frame(lm)
    local = (lm[:N_MESH] - lm[:N_MESH].mean(axis=0)) @ axes / max(iod, 1e-6)
    used = np.concatenate([select_face_points(local), np.arange(len(face), len(points))])
    tri = used[Delaunay(points[used, :2].astype(np.float64)).simplices].astype(np.int32)
    # Drop slivers that Delaunay adds along the straight border.
    p = points[tri][:, :, :2]
    area = 0.5 * np.abs((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
    tri = tri[area > 1e-3]
    return SourceMesh(points=points, triangles=tri, rigidity=rigidity, n_face=len(face))
