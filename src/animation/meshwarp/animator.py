"""The default animator: a piecewise-affine warp of the source over a landmark mesh.

No weights to download, real time on a CPU. The driver's motion (relative to
its neutral face) is retargeted onto the source in the source's own
face-aligned frame, scaled to the source's face: head rotation through the
landmarks' depth (yaw and pitch are 3-D, not a 2-D tilt), translation, scale,
and per-landmark expression (blinks, brows, mouth). Synthetic motion (idle)
and audio drive the same face through a parametric rig.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel
from src.animation.meshwarp.avatar import AvatarCache, PreparedAvatar, prepare_avatar
from src.animation.meshwarp.background import Background
from src.animation.meshwarp.compositor import LayerCompositor
from src.animation.meshwarp.expressions import ExpressionController, build_expressions
from src.animation.meshwarp.gaze import GazeLayer
from src.animation.meshwarp.layers import build_layered_mesh, prepare_layers
from src.animation.meshwarp.lids import close_eyelids
from src.animation.meshwarp.mesh import SourceMesh, build_source_mesh
from src.animation.meshwarp.mouth_interior import face_light, own_teeth, paint_mouth_interior
from src.animation.meshwarp.mouth_interior import warm_up as warm_up_mouth_interior
from src.animation.meshwarp.mouth_layers import close_lips, overlay_eye
from src.animation.meshwarp.rig import BASES, FaceRig, build_face_rig
from src.animation.meshwarp.scalar import clamp
from src.animation.meshwarp.warp import PiecewiseAffineWarper
from src.core.background_spec import validate_spec
from src.core.config import AppConfig
from src.core.errors import SourceImageError
from src.core.face_mesh import (
    FACE_OVAL,
    INNER_LIP_MID,
    LEFT_EYE_CORNERS,
    LEFT_EYE_LOWER,
    LEFT_EYE_RING,
    LEFT_EYE_UPPER,
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    LIPS_UPPER_INNER,
    N_MESH,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_RING,
    RIGHT_EYE_UPPER,
    euler_to_rotation,
    face_frame,
    interocular,
    rotation_to_euler,
)
from src.core.frames import MotionState
from src.core.run_state import RunState

log = logging.getLogger(__name__)

_JAW, _WIDTH, _ROUND, _BLINK_L, _BLINK_R, _BROW_L, _BROW_R = range(len(BASES))
# Inner-lip contours from corner to corner, both running left to right in the source.
_UPPER_INNER = LIPS_UPPER_INNER
_LOWER_INNER = [LIPS_UPPER_INNER[0], *LIPS_LOWER_INNER, LIPS_UPPER_INNER[-1]]


@dataclass
class MeshWarpSource:
    """Everything meshwarp needs about one source, cached by `prepare`."""

    avatar: PreparedAvatar
    mesh: SourceMesh
    rig: FaceRig
    origin: np.ndarray  # face-frame origin (3,)
    axes: np.ndarray  # face-frame axes as columns (3, 3)
    iod: float


def _mesh_params(config: AppConfig) -> dict[str, float]:
    mw = config.animation.meshwarp
    return {"head_margin": mw.head_margin, "background_margin": mw.background_margin, "neck_follow": mw.neck_follow}


def prepare_meshwarp_source(path: str | Path, config: AppConfig, *, use_cache: bool = True) -> MeshWarpSource:
    """Landmarks, mesh and rig of a source portrait: computed once, then read from the avatar cache."""
    avatar = prepare_avatar(path, config, use_cache=use_cache)
    size = config.animation.output_size_px
    cache = AvatarCache(config.cache.dir)
    cpath = cache.path(avatar.content_hash, "meshwarp", {"size": size, "face_index": config.source.face_index, **_mesh_params(config)})
    required = ("mesh_points", "mesh_triangles", "mesh_rigidity", "mesh_n_face", "rig_bases", "rig_mouth_mask", "rig_rest")
    arrays = cache.load(cpath, required) if use_cache else None
    if arrays is not None:
        mesh = SourceMesh.from_arrays(arrays)
        rest = arrays["rig_rest"]
        rig = FaceRig(arrays["rig_bases"], arrays["rig_mouth_mask"], float(rest[0]), (float(rest[1]), float(rest[2])))
    else:
        lm = avatar.landmarks
        mw = config.animation.meshwarp
        mesh = build_source_mesh(lm, (size, size), mw.head_margin, mw.background_margin, mw.neck_follow)
        origin, axes = face_frame(lm.astype(np.float64))
        local = (lm - origin) @ axes / interocular(lm)
        rig = build_face_rig(local)
        if use_cache:
            cache.save(cpath, {**mesh.to_arrays(), "rig_bases": rig.bases, "rig_mouth_mask": rig.mouth_mask,
                               "rig_rest": np.array([rig.rest_gap, *rig.rest_eye_gap], np.float32)})
    origin, axes = face_frame(avatar.landmarks.astype(np.float64))
    iod = interocular(avatar.landmarks)
    if iod < 4:
        raise SourceImageError(f"source image {avatar.source_path}: the face is too small to animate; use a larger face")
    return MeshWarpSource(avatar, mesh, rig, origin.astype(np.float32), axes.astype(np.float32), float(iod))


def _smooth_depth(points: np.ndarray, triangles: np.ndarray, n_face: int, iterations: int = 3) -> np.ndarray:
    """The mesh with its depth smoothed for rotation: MediaPipe's z is noisy near the silhouette,
    and under yaw a noisy z turns into a jagged face outline. x and y are untouched."""
    pts = points.astype(np.float32).copy()
    z = pts[:, 2].copy()
    oval = np.array(FACE_OVAL)
    for _ in range(iterations):  # along the outline first: the noisiest part
        z[oval] = 0.25 * np.roll(z[oval], 1) + 0.5 * z[oval] + 0.25 * np.roll(z[oval], -1)
    face_tris = triangles[(triangles < n_face).all(axis=1)]
    edges = np.concatenate([face_tris[:, [0, 1]], face_tris[:, [1, 2]], face_tris[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    deg = np.bincount(edges[:, 0], minlength=n_face).astype(np.float32)
    for _ in range(iterations):  # then a gentle Laplacian over the whole face
        nb = np.bincount(edges[:, 0], weights=z[edges[:, 1]], minlength=n_face) / np.maximum(deg, 1)
        z[:n_face] = np.where(deg[:n_face] > 0, 0.5 * z[:n_face] + 0.5 * nb[:n_face], z[:n_face])
    pts[:n_face, 2] = z[:n_face]
    # Ring points take the depth of the outline they surround (set when the mesh was built).
    pts[n_face:, 2] = points[n_face:, 2]
    return pts


def _clamp_rotation(rot: np.ndarray, gain: float, limit_deg: float) -> np.ndarray:
    yaw, pitch, roll = rotation_to_euler(rot)
    return euler_to_rotation(clamp(yaw * gain, -limit_deg, limit_deg), clamp(pitch * gain, -limit_deg, limit_deg),
                             clamp(roll * gain, -limit_deg, limit_deg))


class MeshWarpAnimator(BaseAnimationModel):
    name = "meshwarp"

    def __init__(self, config: AppConfig) -> None:
        super().__init__(config)
        self.source: MeshWarpSource | None = None
        self._warper: PiecewiseAffineWarper | None = None
        self._out: np.ndarray | None = None
        self._controls = RunState.from_config(config)  # gains and motion mode when a frame brings none
        self.compositor: LayerCompositor | None = None
        self._background_spec = config.animation.background
        self.expressions: ExpressionController | None = None

    def load_model(self) -> None:
        self.loaded = True  # nothing to load: no weights

    def preprocess_source_image(self, image_path: str | Path) -> None:
        background = Background.from_spec(self.config.animation.background)  # a bad image fails before the work
        self.source = prepare_meshwarp_source(image_path, self.config)
        size = self.output_size
        mw_cfg = self.config.animation.meshwarp
        self.compositor = None
        if mw_cfg.layers:
            layers = prepare_layers(self.source.avatar, self.config.cache.dir)
            self.source.mesh = build_layered_mesh(self.source.avatar.landmarks, layers.head, mw_cfg.neck_follow,
                                                  mw_cfg.background_margin)
            self.compositor = LayerCompositor(self.source.avatar.image, layers, background)
        elif background.kind != "keep":
            log.warning("animation.background %s needs animation.meshwarp.layers=true; keeping the portrait's own",
                        self.config.animation.background)
        mesh = self.source.mesh
        self._warper = PiecewiseAffineWarper(mesh.points, mesh.triangles, (size, size), self.config.animation.meshwarp.map_scale,
                                             cullable=(mesh.triangles < mesh.n_face).all(axis=1))
        lm = self.source.avatar.landmarks
        self._src_eye_gap = (
            float(lm[LEFT_EYE_LOWER[2:-2], 1].mean() - lm[LEFT_EYE_UPPER[2:-2], 1].mean()),
            float(lm[RIGHT_EYE_LOWER[2:-2], 1].mean() - lm[RIGHT_EYE_UPPER[2:-2], 1].mean()),
        )
        self._src_mouth_gap = float(np.linalg.norm(lm[INNER_LIP_MID[1], :2] - lm[INNER_LIP_MID[0], :2]))
        lower_lip = np.vstack([lm[LIPS_LOWER_INNER, :2], lm[LIPS_LOWER_OUTER, :2]]).mean(axis=0)
        img = self.source.avatar.image
        ly, lx = int(np.clip(lower_lip[1], 0, img.shape[0] - 1)), int(np.clip(lower_lip[0], 0, img.shape[1] - 1))
        self._lip_bgr = img[max(ly - 1, 0) : ly + 2, max(lx - 2, 0) : lx + 3].reshape(-1, 3).mean(axis=0) * 0.8
        self._rot_points = _smooth_depth(mesh.points, mesh.triangles, mesh.n_face)
        self._light = face_light(img, lm, self._lip_bgr / 0.8)
        self._own_teeth = own_teeth(img, lm[_UPPER_INNER, :2], lm[_LOWER_INNER, :2])
        if self.config.animation.meshwarp.mouth_interior:
            warm_up_mouth_interior()  # compiled (or loaded from numba's cache) before the first frame
        self._gaze = GazeLayer(img, lm) if self.config.animation.gaze != "off" else None
        local = (lm - self.source.origin) @ self.source.axes / self.source.iod
        self.expressions = ExpressionController(build_expressions(local, self.source.rig))

    def set_expression(self, name: str, intensity: float = 0.8, hold_s: float | None = None, instant: bool = False) -> None:
        """Show an expression (smile, surprise, anger, sadness; none) over the driving motion; thread-safe.
        Raises UnknownExpressionError (listing the known names) for any other name."""
        if self.expressions is None:
            raise RuntimeError("preprocess_source_image() must run before set_expression()")
        self.expressions.set(name, intensity, hold_s, instant)

    def source_preview(self) -> np.ndarray | None:
        return None if self.source is None else self.source.avatar.image

    # -- retargeting -------------------------------------------------------------------------

    def local_offsets(self, motion: MotionState, controls: RunState | None = None) -> np.ndarray:
        """Expression offsets (468 x 3) in the source's face frame, inter-ocular units."""
        assert self.source is not None
        rig = self.source.rig
        controls = controls or self._controls
        if motion.expression is not None:
            expr = motion.expression[:N_MESH] * controls.expression_gain
            if motion.mouth_weight > 0:
                expr = expr * (1.0 - motion.mouth_weight * rig.mouth_mask)[:, None]
        else:
            expr = np.zeros((N_MESH, 3), np.float32)
        coefs = np.zeros(len(BASES), np.float32)
        pw, mwgt = motion.param_weight, motion.mouth_weight
        coefs[_BLINK_L] = pw * clamp(1.0 - motion.eye_open[0], -0.3, 1.0)
        coefs[_BLINK_R] = pw * clamp(1.0 - motion.eye_open[1], -0.3, 1.0)
        coefs[_BROW_L] = pw * motion.brow_raise[0]
        coefs[_BROW_R] = pw * motion.brow_raise[1]
        m = motion.mouth
        coefs[_JAW] = mwgt * (m.open - m.closed * max(rig.rest_gap, 0.0))
        coefs[_WIDTH] = mwgt * m.width
        coefs[_ROUND] = mwgt * m.round
        if np.any(coefs):
            expr = expr + rig.offsets(coefs)
        return expr.astype(np.float32)

    def target_points(self, motion: MotionState, controls: RunState | None = None) -> np.ndarray:
        """Where every mesh vertex goes for this motion: (N, 3) output px."""
        src = self.source
        assert src is not None
        mw = self.config.animation.meshwarp
        pts = self._rot_points.copy()
        a = src.iod
        controls = controls or self._controls
        pts[:N_MESH] += a * (self.local_offsets(motion, controls) @ src.axes.T)
        if self.expressions is not None and (extra := self.expressions.offsets()) is not None:
            pts[:N_MESH] += a * (extra @ src.axes.T)
        rot = motion.rotation
        if controls.motion_mode == "absolute" and motion.absolute_rotation is not None:
            rot = motion.absolute_rotation @ src.axes.T
        rot = _clamp_rotation(rot, controls.pose_gain, mw.max_rotation_deg)
        scale = clamp(motion.scale, 0.6, 1.6) ** controls.pose_gain
        shift = np.zeros(3, np.float32)
        shift[:2] = motion.translation * a * controls.pose_gain
        # Rotate about a pivot inside the head: between the eyes, lower, about one IOD deep.
        pivot = src.origin + src.axes @ np.array([0.0, 0.45, 1.0], np.float32) * a
        rigid = pivot + scale * (pts - pivot) @ rot.T + shift
        w = src.mesh.rigidity[:, None]
        return pts + w * (rigid - pts)

    # -- rendering ---------------------------------------------------------------------------

    def animate(self, inp: AnimationInput) -> np.ndarray:
        if self.source is None or self._warper is None:
            raise RuntimeError("preprocess_source_image() must run before animate()")
        dst = self.target_points(inp.motion, inp.controls)
        image = self.source.avatar.image
        # Draw order: the elastic band around the head first, then the face far to near.
        order = dst.copy()
        order[self.source.mesh.n_face :, 2] += 1e4
        comp = self.compositor  # one compositor for the whole frame, even if set_background() swaps it meanwhile
        if comp is not None:
            mesh = self.source.mesh
            out = comp.compose(*self._warper.maps(order), comp.head_box(mesh.points, dst, mesh.rigidity))
        else:
            out = self._warper.warp(image, order)
        mw = self.config.animation.meshwarp
        if mw.mouth_interior:
            self._draw_mouth(out, dst)
        if mw.eye_layer:
            self._draw_eyes(out, image, dst)
        if self._gaze is not None:
            self._gaze.draw(out, dst, self.gaze_shift(inp.motion))
        if mw.eye_layer:  # a blink: lid skin over the iris (see lids.py)
            up = -self.source.axes[:2, 1] / max(float(np.linalg.norm(self.source.axes[:2, 1])), 1e-6)
            close_eyelids(out, image, self.source.mesh.points, dst, self._src_eye_gap, inp.motion.eye_open, up, self.source.iod)
        if comp is not None and comp.transparent:
            return comp.with_alpha(out)  # BGRA: the pipeline passes the alpha to outputs that carry it
        return out

    @property
    def background(self) -> str:
        """The background spec shown now (`animation.background` until `set_background` changes it)."""
        return self._background_spec

    def set_background(self, spec: str) -> None:
        """Show another background from the next frame on (keep | blur | image:PATH | color:#RRGGBB | transparent).
        A ConfigError names a bad spec or picture; a RuntimeError when the portrait has no layers to put it behind."""
        background = Background.from_spec(spec)
        comp = self.compositor
        if comp is None:
            raise RuntimeError("this avatar has no background layer: it needs animation.meshwarp.layers=true")
        self.compositor = LayerCompositor(comp.image, comp.layers, background)  # built aside, then swapped in one step
        self._background_spec = validate_spec(spec)

    def gaze_shift(self, motion: MotionState) -> np.ndarray:
        """Where the irises move (output px) for `animation.gaze`."""
        assert self.source is not None
        rot = _clamp_rotation(motion.rotation, self.config.animation.meshwarp.pose_gain, self.config.animation.meshwarp.max_rotation_deg)
        if self.config.animation.gaze == "camera":
            return GazeLayer.shift_camera(rot, self.source.iod)
        assert self._gaze is not None
        shift = self._gaze.shift_follow(motion.expression, self.source.axes, self.source.iod)
        return (rot[:2, :2] @ shift).astype(np.float32)

    def _draw_mouth(self, out: np.ndarray, dst: np.ndarray) -> None:
        assert self.source is not None
        gap = float(np.linalg.norm(dst[INNER_LIP_MID[1], :2] - dst[INNER_LIP_MID[0], :2]))
        extra = gap - self._src_mouth_gap
        iod = self.source.iod
        src = self.source.mesh.points
        if extra > 0:
            strength = clamp(extra / (0.05 * iod), 0.0, 1.0)
            paint_mouth_interior(out, self.source.avatar.image, dst[_UPPER_INNER, :2], dst[_LOWER_INNER, :2],
                                 src[_UPPER_INNER, :2], src[_LOWER_INNER, :2], strength, self._light,
                                 self._own_teeth)
        elif self._src_mouth_gap > 0.04 * iod:
            amount = clamp(-extra / self._src_mouth_gap, 0.0, 1.0) ** 0.7
            close_lips(out, dst[_UPPER_INNER, :2], dst[_LOWER_INNER, :2], self._lip_bgr, amount)

    def _draw_eyes(self, out: np.ndarray, image: np.ndarray, dst: np.ndarray) -> None:
        assert self.source is not None
        src = self.source.mesh.points
        eyes = ((LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_RING, LEFT_EYE_CORNERS, 0),
                (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_RING, RIGHT_EYE_CORNERS, 1))
        for upper, lower, ring, corners, k in eyes:
            gap = float(dst[lower[2:-2], 1].mean() - dst[upper[2:-2], 1].mean())
            ratio = gap / max(self._src_eye_gap[k], 1e-3)
            strength = clamp((1.0 - ratio) * 5.0, 0.0, 1.0)
            if strength > 0 and ratio > 0.08:
                overlay_eye(out, image, src[ring, :2], dst[ring, :2], src[list(corners), :2], dst[list(corners), :2], strength)


ANIMATORS.register("meshwarp", MeshWarpAnimator)
