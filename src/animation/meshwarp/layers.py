"""The portrait split into layers, once per avatar: a moving head, a still body, a filled background plate.

From the person mask (MediaPipe selfie segmentation) and the face landmarks:

- the head layer: the person inside a head region drawn in the face's own frame
  (wide above the eyes for the hair, the face outline plus a little below the
  eyes, a neck column down to a cut a little below the chin), feathered, minus
  any hand. It moves whole with the head; the neck part bends toward the cut;
- the still layer: the rest of the person (shoulders, collar, torso, hands
  and what they hold: held.py), which never moves;
- the plate: the portrait with the part hidden behind the head filled once.
  Fill: `cv2.inpaint` (Telea) at half resolution, then blurred inside the hole.
  What the plate shows is only the thin band a moving head uncovers next to its
  silhouette; Telea continues the colours met at the hole's edge into that band
  (the backdrop beside the hair, the collar under the chin), the blur hides its
  radial streaks, and it costs ~0.1 s once. A mirrored extension breaks on
  asymmetric backdrops (a flag on one side), and a patch-based fill would copy
  texture (the flag's stripes) into the place of a head, which reads worse than
  a soft continuation for an uncovered rim a few pixels wide;
- the warp mesh: the face landmarks, a ring around the whole head layer (every
  hair pixel inside it: the hair moves rigidly), a still outer ring and the
  frame's border. Only the transparent part of the layer stretches.

Cached with the avatar by content hash (`AvatarCache`, namespace "layers").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from src.animation.meshwarp.avatar import AvatarCache, PreparedAvatar
from src.animation.meshwarp.held import below_shoulders, held_objects
from src.animation.meshwarp.mesh import BORDER_STEPS, SourceMesh, _dedupe, select_face_points
from src.animation.meshwarp.segmentation import hand_masks, keep_component_at, segment_person, shoulder_points
from src.core.face_mesh import CHIN, FACE_OVAL, N_MESH, face_frame, interocular

log = logging.getLogger(__name__)

LAYERS_VERSION = 14
HAIR_HALF_WIDTH = 2.6  # IOD: how far the hair may reach sideways above the eyes
NECK_HALF_WIDTH = 0.6  # IOD, at least
NECK_CUT_BELOW_CHIN = 0.45  # IOD: below this the person is body (still)
# The garment under the hole is carried up behind the neck from this far above the chin (IOD; full strength as far
# below it), no wider than the neck: a head that turns uncovers the backdrop beside the jaw, not a dark block
# reaching up to the mouth (0.8 and 1.0 before: the collar's black showed as a block with a straight edge).
UNDER_ABOVE_CHIN = 0.2
UNDER_HALF_WIDTH = 0.8
FEATHER_PX = 1.5
RING_STEP_DEG = 10.0


@dataclass
class PortraitLayers:
    person: np.ndarray  # (S, S) float32 [0, 1]: the chosen person
    head: np.ndarray  # (S, S) float32: head layer alpha (moves)
    still: np.ndarray  # (S, S) float32: body alpha (stays)
    front: np.ndarray  # (S, S) float32: hands, drawn over the moving head
    plate: np.ndarray  # (S, S, 3) uint8: the portrait with the hole behind the head filled
    hole: np.ndarray  # (S, S) bool: where the plate was filled
    under: np.ndarray  # (S, S) float32: the neck zone of the hole (plate shown under any background: neck, collar)
    note: str | None = None  # said once: no person, several regions

    def to_arrays(self) -> dict[str, np.ndarray]:
        q = lambda a: np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)  # noqa: E731
        return {"person": q(self.person), "head": q(self.head), "still": q(self.still), "front": q(self.front),
                "plate": self.plate, "hole": self.hole.astype(np.uint8), "under": q(self.under), "note": np.array(self.note or "")}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> PortraitLayers:
        f = lambda k: a[k].astype(np.float32) / 255.0  # noqa: E731
        return cls(f("person"), f("head"), f("still"), f("front"), a["plate"], a["hole"].astype(bool), f("under"), str(a["note"]) or None)


def face_coords(lm: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float]:
    """(u, v) of every pixel in the face's frame, IOD units (u to the image-right eye, v down the face), and the IOD."""
    origin, axes = face_frame(lm.astype(np.float64))
    iod = interocular(lm)
    ex = axes[:2, 0] / (np.linalg.norm(axes[:2, 0]) + 1e-9)
    ey = axes[:2, 1] / (np.linalg.norm(axes[:2, 1]) + 1e-9)
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    dx, dy = xs - origin[0], ys - origin[1]
    return ((dx * ex[0] + dy * ex[1]) / iod).astype(np.float32), ((dx * ey[0] + dy * ey[1]) / iod).astype(np.float32), iod


def _oval_sides(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The face outline's half widths left and right as functions of v (IOD units): (v grid, left, right)."""
    origin, axes = face_frame(lm.astype(np.float64))
    loc = (lm[FACE_OVAL] - origin) @ axes / interocular(lm)
    grid = np.linspace(-1.0, 2.5, 141)
    out = []
    for side in (loc[:, 0] < 0, loc[:, 0] >= 0):
        pts = loc[side]
        order = np.argsort(pts[:, 1])
        out.append(np.interp(grid, pts[order, 1], np.abs(pts[order, 0])))
    return grid, out[0], out[1]


def head_region(lm: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Where the head layer may be (bool image), and the cut's v (IOD units below the eyes)."""
    u, v, _ = face_coords(lm, shape)
    origin, axes = face_frame(lm.astype(np.float64))
    chin_v = float(((lm[CHIN] - origin) @ axes)[1] / interocular(lm))
    cut_v = chin_v + NECK_CUT_BELOW_CHIN
    grid, left, right = _oval_sides(lm)
    hw = []
    for side in (left, right):
        face = np.interp(v, grid, side) + 0.18
        # The neck is about as wide as the jaw a little above the chin (the jaw narrows to the chin, the neck does not).
        neck = float(np.clip(np.interp(chin_v - 0.45, grid, side) + 0.1, NECK_HALF_WIDTH, 1.0))
        upper = np.interp(v, [0.25, 0.75], [HAIR_HALF_WIDTH, 0.0]) + np.interp(v, [0.25, 0.75], [0.0, 1.0]) * face
        w = np.where(v <= 0.25, HAIR_HALF_WIDTH, np.where(v <= 0.75, upper, np.maximum(face, neck)))
        w = np.where(v > chin_v - 0.45, np.maximum(np.minimum(w, face), neck), w)
        hw.append(w)
    region = (v <= cut_v) & (u >= -hw[0]) & (u <= hw[1])
    return region, cut_v


def _upward_extension(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the colour just below the hole carried up through it (the neck, a collar continuing
    upward), smoothed across columns; and where that exists (columns whose hole ends above the frame's bottom)."""
    h, w = hole.shape
    rows = np.arange(h)[:, None]
    bottom = np.where(hole.any(axis=0), (hole * rows).max(axis=0), -1)
    ok = (bottom >= 0) & (bottom + 4 < h)
    ys = np.clip(bottom + 4, 0, h - 1)
    colour = image[ys, np.arange(w)].astype(np.float32)
    colour[~ok] = 0
    k = max(w // 64, 2)
    weight = cv2.blur(ok.astype(np.float32)[None, :], (2 * k + 1, 1))[0]
    colour = cv2.blur(colour[None, :, :], (2 * k + 1, 1))[0] / np.maximum(weight[:, None], 1e-6)
    return np.broadcast_to(colour[None, :, :], (h, w, 3)).copy(), ok & (weight > 0.5)


def _side_distance(hole: np.ndarray) -> np.ndarray:
    """Per hole pixel, the distance (px) to the nearest non-hole pixel in its row."""
    h, w = hole.shape
    idx = np.broadcast_to(np.arange(w), (h, w))
    big = 10 * w
    left = np.maximum.accumulate(np.where(hole, -big, idx), axis=1)
    right = np.minimum.accumulate(np.where(hole, big, idx)[:, ::-1], axis=1)[:, ::-1]
    return np.minimum(idx - left, right - idx).astype(np.float32)


def fill_plate(image: np.ndarray, hole: np.ndarray, v: np.ndarray | None = None, below_v: float = 1.0,
               lateral: np.ndarray | None = None, side_fade_px: float = 12.0) -> np.ndarray:
    """The image with `hole` filled: Telea inpainting at half resolution, blurred inside the hole. With `v`
    (the face frame's vertical coordinate per pixel), below `below_v` the fill is what lies under the hole
    carried upward instead (under a moving chin one expects neck or collar, not the backdrop beside the head)."""
    if not hole.any():
        return image.copy()
    h, w = hole.shape
    small = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.uint8) * 255, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST)
    small_hole = cv2.dilate(small_hole, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, small_hole, 6, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), max(w / 128.0, 1.0))
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    if v is not None:
        ext, ok = _upward_extension(image, hole)
        ramp = np.clip((v - below_v) / 0.4, 0.0, 1.0) * ok[None, :]
        if lateral is not None:  # only as wide as the neck: beside it, what is beside the head (Telea)
            ramp = ramp * lateral
        # ... and handing over to the Telea fill toward the hole's sides (no hard edge against the portrait)
        ramp = ramp * np.clip(_side_distance(hole) / side_fade_px, 0.0, 1.0)
        ramp = cv2.GaussianBlur(ramp.astype(np.float32), (0, 0), 3.0)[..., None]
        up = up * (1 - ramp) + cv2.GaussianBlur(ext, (0, 0), 2.0) * ramp
    # Feathered inside the hole only: outside it the plate is the portrait, exactly.
    a = (np.minimum(cv2.GaussianBlur(hole.astype(np.float32), (0, 0), 1.0) * 2.0, 1.0) * hole)[..., None]
    return (image.astype(np.float32) * (1 - a) + up.astype(np.float32) * a + 0.5).astype(np.uint8)


def build_layers(image: np.ndarray, lm: np.ndarray, person: np.ndarray | None = None, hands: np.ndarray | None = None,
                 source: str = "portrait", shoulders: np.ndarray | None = None) -> PortraitLayers:
    """Layers of a prepared avatar image (S x S BGR) with its 478 landmarks in the same pixels.

    `person`, `hands` (soft masks) and `shoulders` (2 x 2 px; an empty array: none) are computed with MediaPipe
    when not given."""
    shape = (image.shape[0], image.shape[1])
    lm = np.asarray(lm, np.float32)
    note = None
    center = lm[FACE_OVAL, :2].mean(axis=0)
    if person is None:
        person, note = keep_component_at(segment_person(image), (float(center[0]), float(center[1])), source)
    if hands is None:
        hands = hand_masks(image)
    region, cut_v = head_region(lm, shape)
    person = np.where(person < 0.03, 0.0, person).astype(np.float32)  # the segmentation's faint tail is backdrop
    u, v, iod = face_coords(lm, shape)
    origin, axes = face_frame(lm.astype(np.float64))
    chin_v = float(((lm[CHIN] - origin) @ axes)[1] / iod)
    # A raised shoulder is torso (held.py).
    shoulder = below_shoulders(shoulder_points(image) if shoulders is None else shoulders, lm, u, v, chin_v, iod)
    region &= ~shoulder
    # Bits of the person outside the head region that do not reach the body (a tuft of hair beyond the
    # region's sides): they belong to the head, else they would stay behind as flecks when it moves.
    n, labels = cv2.connectedComponents(((person > 0.5) & ~region).astype(np.uint8), connectivity=8)
    body: np.ndarray = np.ones(shape, np.float32)
    if n > 1:
        body_labels = np.unique(labels[((v > cut_v) | shoulder) & (labels > 0)])
        body_labels = body_labels[body_labels > 0]
        # The still layer is the body: what connects to the person below the cut (and its soft edge).
        grown = cv2.dilate(np.isin(labels, body_labels).astype(np.uint8), np.ones((15, 15), np.uint8))  # under the seam too
        body = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), 1.0)
        floating = (labels > 0) & ~np.isin(labels, body_labels)
        near = cv2.dilate(region.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (15, 15))) > 0
        attached = np.unique(labels[floating & near])
        region = region | np.isin(labels, attached[attached > 0])
    # What a hand holds stays with the hand, in front (held.py).
    hands = np.maximum(hands, held_objects(image, lm, person, region, hands, u, v, chin_v, iod))
    if not (person > 0.5).any():  # nothing segmented: the face and its immediate surroundings
        person = np.clip(1.5 - np.hypot(u / 1.6, (v - 0.4) / 1.7), 0, 1).astype(np.float32) * region
    reg = region.astype(np.float32)
    soft = cv2.GaussianBlur(cv2.dilate(reg, np.ones((3, 3), np.uint8)), (0, 0), FEATHER_PX)
    core = cv2.GaussianBlur(cv2.erode(reg, np.ones((9, 9), np.uint8)), (0, 0), FEATHER_PX)
    head = person * soft * (1.0 - hands)
    # The body reaches a few pixels under the head layer's feather: no backdrop shows through the seam.
    still = np.clip(person * (1.0 - core) * np.maximum(body, core), 0, 1)
    front = person * hands
    hole = cv2.dilate(((head > 0.1) & (core > 0.01)).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
    hole &= region | cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & (person < 0.5)
    lateral = np.clip((UNDER_HALF_WIDTH - np.abs(u)) / 0.25, 0.0, 1.0)  # the neck's width, not the whole hole beside the jaw
    plate = fill_plate(image, hole, v, chin_v - UNDER_ABOVE_CHIN, lateral, 0.3 * iod)
    under = (hole * np.clip((v - (chin_v - UNDER_ABOVE_CHIN)) / 0.4, 0.0, 1.0) * lateral).astype(np.float32)
    under = cv2.GaussianBlur(under, (0, 0), 0.12 * iod) * hole  # soft edges, inside the hole
    head, still, front = (np.where(x < 0.004, 0.0, x) for x in (head, still, front))  # blur tails: exactly none
    return PortraitLayers(person.astype(np.float32), head.astype(np.float32), still.astype(np.float32),
                          front.astype(np.float32), plate, hole, under, note)


def prepare_layers(avatar: PreparedAvatar, cache_dir: str, *, use_cache: bool = True) -> PortraitLayers:
    """The avatar's layers, from the cache when present (keyed by the portrait's content hash)."""
    cache = AvatarCache(cache_dir)
    size = avatar.image.shape[0]
    params = {"size": size, "crop": [round(c, 3) for c in avatar.crop], "layers": LAYERS_VERSION,
              "region": [HAIR_HALF_WIDTH, NECK_HALF_WIDTH, NECK_CUT_BELOW_CHIN]}
    cpath = cache.path(avatar.content_hash, "layers", params)
    required = ("person", "head", "still", "front", "plate", "hole", "under", "note")
    arrays = cache.load(cpath, required) if use_cache else None
    if arrays is not None:
        layers = PortraitLayers.from_arrays(arrays)
    else:
        arrays = build_layers(avatar.image, avatar.landmarks, source=f"source image {avatar.source_path}").to_arrays()
        if use_cache:
            cache.save(cpath, arrays)
        # The first run uses what later runs load (8-bit alphas): the same portrait always animates the same.
        layers = PortraitLayers.from_arrays(arrays)
    if layers.note:
        log.warning("%s", layers.note)
    return layers


def build_layered_mesh(lm: np.ndarray, head_alpha: np.ndarray, neck_follow: float, background_margin: float) -> SourceMesh:
    """Warp mesh for the layered head: face landmarks, a rigid ring around every pixel of the head
    layer (the neck part of the ring bends toward the cut, where it stays still), a still outer ring, the border."""
    h, w = head_alpha.shape
    lm = np.asarray(lm, np.float32)
    face = lm[:N_MESH]
    iod = interocular(lm)
    origin, axes = face_frame(lm.astype(np.float64))
    oval = lm[FACE_OVAL]
    center = oval[:, :2].mean(axis=0)
    chin_v = float(((lm[CHIN] - origin) @ axes)[1] / iod)
    cut_v = chin_v + NECK_CUT_BELOW_CHIN
    ey = axes[:2, 1] / (np.linalg.norm(axes[:2, 1]) + 1e-9)
    occupied = cv2.dilate((head_alpha > 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    margin = max(0.12 * iod, 4.0)
    ring = []
    oval_r = np.linalg.norm(oval[:, :2] - center, axis=1)
    oval_ang = np.arctan2(oval[:, 1] - center[1], oval[:, 0] - center[0])
    steps = np.arange(0.0, 4.0 * iod, 1.0)
    for deg in np.arange(0.0, 360.0, RING_STEP_DEG):
        a = np.radians(deg)
        d = np.array([np.cos(a), np.sin(a)])
        r_oval = float(np.interp(a, np.sort(oval_ang), oval_r[np.argsort(oval_ang)], period=2 * np.pi))
        px = center[0] + steps * d[0]
        py = center[1] + steps * d[1]
        inside = (px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)
        hit = np.zeros_like(inside)
        hit[inside] = occupied[py[inside].astype(int), px[inside].astype(int)]
        r = max(float(steps[hit].max()) + margin if hit.any() else 0.0, 1.12 * r_oval + 2.0)
        last_inside = float(steps[inside].max()) if inside.any() else 0.0
        r = min(r, last_inside)
        ring.append(center + r * d)
    ring_pts = np.zeros((len(ring), 3), np.float32)
    ring_pts[:, :2] = np.array(ring, np.float32)
    ring_pts[:, 2] = float(np.median(oval[:, 2]))
    v = ((ring_pts[:, :2] - origin[:2]) @ ey) / iod
    bend = np.clip((v - (chin_v - 0.2)) / (cut_v + margin / iod - (chin_v - 0.2)), 0.0, 1.0)
    rig = (1.0 - bend * (1.0 - neck_follow)) * (1.0 - np.clip((v - cut_v) / (margin / iod + 1e-6), 0.0, 1.0))
    rig = np.clip(rig, 0.0, 1.0).astype(np.float32)
    d = ring_pts[:, :2] - center
    outer = np.zeros((len(ring_pts), 3), np.float32)
    outer[:, :2] = center + d * (background_margin / 1.45)
    edge_x = np.linspace(0, w - 1, BORDER_STEPS + 1)
    edge_y = np.linspace(0, h - 1, BORDER_STEPS + 1)
    border = [(x, 0) for x in edge_x] + [(x, h - 1) for x in edge_x] + [(0, y) for y in edge_y[1:-1]] + [(w - 1, y) for y in edge_y[1:-1]]
    border_pts = np.zeros((len(border), 3), np.float32)
    border_pts[:, :2] = np.array(border, np.float32)
    min_dist = max(2.0, 0.08 * iod)
    keep = np.array([all(np.hypot(*(p[:2] - q[:2])) >= min_dist for q in ring_pts[:i]) for i, p in enumerate(ring_pts)])
    ring_pts, rig = ring_pts[keep], rig[keep]
    ring_ok_idx = [i for i, p in enumerate(ring_pts) if np.min(np.linalg.norm(face[:, :2] - p[:2], axis=1)) >= min_dist]
    ring_pts, rig = ring_pts[ring_ok_idx], rig[ring_ok_idx]
    inside = (outer[:, 0] > 1) & (outer[:, 0] < w - 2) & (outer[:, 1] > 1) & (outer[:, 1] < h - 2)
    outer_ok = _dedupe(outer[inside], np.vstack([face, ring_pts]), min_dist * 2)
    fixed = np.vstack([outer_ok, border_pts]) if len(outer_ok) else border_pts
    fixed_ok = _dedupe(fixed, np.vstack([face, ring_pts]), min_dist)
    points = np.vstack([face, ring_pts, fixed_ok]).astype(np.float32)
    rigidity = np.concatenate([np.ones(len(face)), rig, np.zeros(len(fixed_ok))]).astype(np.float32)
    local = (face - face.mean(axis=0)) @ axes.astype(np.float32) / max(iod, 1e-6)
    used = np.concatenate([select_face_points(local), np.arange(len(face), len(points))])
    tri = used[Delaunay(points[used, :2].astype(np.float64)).simplices].astype(np.int32)
    p = points[tri][:, :, :2]
    area = 0.5 * np.abs((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1]) - (p[:, 2, 0] - p[:, 0, 0]) * (p[:, 1, 1] - p[:, 0, 1]))
    return SourceMesh(points=points, triangles=tri[area > 1e-3], rigidity=rigidity, n_face=len(face))
