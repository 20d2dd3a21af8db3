"""The meshwarp animator on the bundled portrait: still background, 3-D head rotation, blinks, mouth, cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from src.animation import AnimationInput, create_animator, prepare_meshwarp_source
from src.animation.meshwarp.avatar import AvatarCache, file_hash
from src.capture import FaceTracker
from src.core.face_mesh import (
    INNER_MOUTH_RING,
    LEFT_EYE_RING,
    LIPS_LOWER_OUTER,
    LIPS_UPPER_OUTER,
    RIGHT_EYE_RING,
    euler_to_rotation,
    measure,
    similarity_transform,
)
from src.core.frames import MotionState, MouthShape

NOSE, LEFT_CHEEK, RIGHT_CHEEK = 1, 234, 454


def _inp(motion: MotionState, i: int = 0) -> AnimationInput:
    return AnimationInput(motion=motion, capture_ts=float(i), index=i)


def _pose(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0, **kw) -> MotionState:
    return MotionState(rotation=euler_to_rotation(yaw, pitch, roll), **kw)


def _poly_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(points[:, :2]).astype(np.int32)], 1)
    return m.astype(bool)


@pytest.fixture(scope="module")
def tracker():
    with FaceTracker(static_image_mode=True) as t:
        yield t


@pytest.fixture(scope="module")
def anim(portrait_animator):
    return portrait_animator


@pytest.fixture(scope="module")
def source_measures(anim, tracker):
    faces = tracker.process(anim.source.avatar.image)
    assert faces
    return measure(faces[0].landmarks)


def _redetect(tracker: FaceTracker, image: np.ndarray) -> np.ndarray:
    faces = tracker.process(image)
    assert faces, "MediaPipe finds no face in the animated frame"
    return faces[0].landmarks


def _cheek_ratio(lm: np.ndarray) -> float:
    """Nose-to-left-cheek over nose-to-right-cheek distance: 1 for a frontal face, changes with yaw only."""
    return float(np.linalg.norm(lm[NOSE, :2] - lm[LEFT_CHEEK, :2]) / np.linalg.norm(lm[NOSE, :2] - lm[RIGHT_CHEEK, :2]))


MOTIONS = {
    "yaw+25": _pose(25),
    "yaw-25": _pose(-25),
    "pitch+15": _pose(0, 15),
    "roll-20": _pose(0, 0, -20),
    "shift": MotionState(translation=np.array([0.4, -0.3], np.float32)),
    "scale": MotionState(scale=1.2),
    "mouth": MotionState(mouth=MouthShape(open=0.4, width=0.2)),
    "blink": MotionState(eye_open=(0.0, 0.0)),
    "all": _pose(20, -10, 15, translation=np.array([0.3, 0.2], np.float32), scale=0.9, eye_open=(0.2, 0.5),
                 mouth=MouthShape(open=0.3)),
}


def test_neutral_motion_reproduces_the_source(anim) -> None:
    out = anim.animate(_inp(MotionState()))
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert np.array_equal(out, anim.source.avatar.image)


@pytest.fixture(scope="module")
def anim_full_res_maps(make_config, portrait_path: Path):
    """The same animator with warp maps at full resolution (map_scale 1)."""
    a = create_animator("meshwarp", make_config("animation.meshwarp.map_scale=1.0"))
    a.load_model()
    a.preprocess_source_image(str(portrait_path))
    return a


def _still_mask(anim) -> np.ndarray:
    """Pixels outside every triangle that has a vertex able to move, dilated 2 px plus the reach of
    the coarse map's bilinear upscaling (1 / map_scale px: a coarse sample inside a moving triangle
    is blended into its neighbours)."""
    mesh = anim.source.mesh
    movable = np.zeros((256, 256), np.uint8)
    for t in mesh.triangles[(mesh.rigidity[mesh.triangles] > 0).any(axis=1)]:
        cv2.fillConvexPoly(movable, np.round(mesh.points[t, :2]).astype(np.int32), 1)
    reach = 2 + int(np.ceil(1.0 / anim.config.animation.meshwarp.map_scale)) - 1
    still = ~cv2.dilate(movable, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)).astype(bool)
    assert still.mean() > 0.25, "test setup: the still background should be a good part of the frame"
    return still


def _assert_background_still(anim, motion: MotionState) -> None:
    still = _still_mask(anim)
    out = anim.animate(_inp(motion))
    src = anim.source.avatar.image
    assert not np.array_equal(out, src)  # the head did move
    for y, x in ((0, 0), (0, 240), (240, 0), (240, 240)):  # the frame's corners
        assert np.array_equal(out[y : y + 16, x : x + 16], src[y : y + 16, x : x + 16])
    changed = np.any(out != src, axis=2) & still
    assert not changed.any(), f"{changed.sum()} background pixels changed (max {np.abs(out.astype(int) - src)[changed].max()})"


@pytest.mark.parametrize("name", list(MOTIONS))
def test_background_stays_still(anim_full_res_maps, name: str) -> None:
    """Pixels away from the head (outside every triangle that can move) are identical to the source."""
    _assert_background_still(anim_full_res_maps, MOTIONS[name])


@pytest.mark.parametrize("name", ["yaw+25", "all"])
def test_background_stays_still_at_default_map_scale(anim, name: str) -> None:
    _assert_background_still(anim, MOTIONS[name])


@pytest.mark.parametrize("axis", ["yaw", "pitch", "roll"])
def test_head_rotation_moves_the_face_with_the_right_sign(anim, tracker, source_measures, axis: str) -> None:
    angles = {}
    for sign in (1, -1):
        kw = {axis: sign * 15.0}
        out = anim.animate(_inp(_pose(**kw)))
        m = measure(_redetect(tracker, out))
        angles[sign] = getattr(m, axis) - getattr(source_measures, axis)
        face = (slice(30, 160), slice(60, 200))
        assert np.abs(out[face].astype(int) - anim.source.avatar.image[face].astype(int)).mean() > 3.0
    print(f"{axis} +15 -> re-detected {angles[1]:+.1f} deg, -15 -> {angles[-1]:+.1f} deg")
    assert angles[1] > 3.0 and angles[-1] < -3.0
    if axis == "roll":  # in-plane: close to exact
        assert angles[1] == pytest.approx(15.0, abs=3.0) and angles[-1] == pytest.approx(-15.0, abs=3.0)


def test_yaw_is_3d_not_a_2d_rotation(anim, tracker) -> None:
    """Yaw compresses one cheek and widens the other (through depth); a 2-D rotation keeps the ratio."""
    src_lm = _redetect(tracker, anim.source.avatar.image)
    r0 = _cheek_ratio(src_lm)
    r_yaw_p = _cheek_ratio(_redetect(tracker, anim.animate(_inp(_pose(20)))))
    r_yaw_m = _cheek_ratio(_redetect(tracker, anim.animate(_inp(_pose(-20)))))
    r_roll = _cheek_ratio(_redetect(tracker, anim.animate(_inp(_pose(0, 0, 20)))))
    print(f"cheek ratio: source {r0:.2f}, yaw +20 {r_yaw_p:.2f}, yaw -20 {r_yaw_m:.2f}, roll +20 {r_roll:.2f}")
    assert (r_yaw_p - r0) * (r_yaw_m - r0) < 0  # opposite directions
    assert min(abs(r_yaw_p - r0), abs(r_yaw_m - r0)) > 0.15
    assert abs(r_roll - r0) < 0.1
    # Geometry: the best 2-D similarity cannot explain the yawed mesh, but explains the rolled one exactly.
    src = anim.target_points(MotionState())[:468, :2].astype(np.float64)
    iod = anim.source.iod

    def residual(motion: MotionState) -> float:
        dst = anim.target_points(motion)[:468, :2].astype(np.float64)
        s, r, t = similarity_transform(src, dst)
        return float(np.linalg.norm((s * (r @ src.T)).T + t - dst, axis=1).mean() / iod)

    res_yaw, res_roll = residual(_pose(20)), residual(_pose(0, 0, 20))
    print(f"2-D similarity residual: yaw {res_yaw:.3f} IOD, roll {res_roll:.4f} IOD")
    assert res_yaw > 0.03 and res_roll < 0.005


def test_yaw_differs_from_a_2d_warp_of_the_image(anim) -> None:
    """The yawed frame is not the source moved by any 2-D similarity (fitted on the face)."""
    src_img = anim.source.avatar.image
    motion = _pose(20)
    dst = anim.target_points(motion)[:468, :2]
    src_pts = anim.target_points(MotionState())[:468, :2]
    m, _ = cv2.estimateAffinePartial2D(np.ascontiguousarray(src_pts, np.float32), np.ascontiguousarray(dst, np.float32),
                                       method=cv2.LMEDS)
    flat = cv2.warpAffine(src_img, m, (256, 256), borderMode=cv2.BORDER_REPLICATE)
    out = anim.animate(_inp(motion))
    face = _poly_mask(cv2.convexHull(dst.astype(np.float32))[:, 0], (256, 256))
    diff_3d = np.abs(out.astype(int) - flat.astype(int))[face].mean()
    print(f"yaw 20: mean difference from the best 2-D similarity warp inside the face {diff_3d:.1f}")
    assert diff_3d > 4.0


def test_blink_closes_the_eyes_and_leaves_the_mouth(anim, tracker, source_measures) -> None:
    src = anim.source.avatar.image
    out = anim.animate(_inp(MotionState(eye_open=(0.0, 0.0))))
    m = measure(_redetect(tracker, out))
    s_eyes = np.mean(source_measures.eye_open)
    o_eyes = np.mean(m.eye_open)
    print(f"eye openness re-detected: source {source_measures.eye_open} -> blink {m.eye_open}")
    assert o_eyes < 0.8 * s_eyes
    assert m.eye_open[0] < source_measures.eye_open[0] and m.eye_open[1] < source_measures.eye_open[1]
    # The dark iris and lashes are covered by the lid: fewer dark pixels inside each eye.
    lm = anim.source.avatar.landmarks
    g_src, g_out = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY), cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    for ring in (LEFT_EYE_RING, RIGHT_EYE_RING):
        eye = _poly_mask(lm[ring], (256, 256))
        assert (g_out[eye] < 80).sum() < 0.6 * (g_src[eye] < 80).sum()
    # The mouth does not move.
    mouth = cv2.dilate(_poly_mask(lm[[*LIPS_UPPER_OUTER, *reversed(LIPS_LOWER_OUTER)]], (256, 256)).astype(np.uint8),
                       np.ones((7, 7), np.uint8)).astype(bool)
    assert np.array_equal(out[mouth], src[mouth])
    assert m.mouth_open == pytest.approx(source_measures.mouth_open, abs=0.03)


def test_mouth_opens_and_its_interior_is_drawn(anim, tracker, source_measures) -> None:
    src = anim.source.avatar.image
    motion = MotionState(mouth=MouthShape(open=0.3))
    out = anim.animate(_inp(motion))
    m = measure(_redetect(tracker, out))
    print(f"mouth openness re-detected: source {source_measures.mouth_open:.3f} -> {m.mouth_open:.3f}")
    assert m.mouth_open > source_measures.mouth_open + 0.1
    assert np.mean(m.eye_open) == pytest.approx(np.mean(source_measures.eye_open), abs=0.05)
    inner = _poly_mask(anim.target_points(motion)[INNER_MOUTH_RING], (256, 256))
    g_src, g_out = cv2.cvtColor(src, cv2.COLOR_BGR2GRAY), cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    print(f"inside the mouth: mean grey {g_src[inner].mean():.0f} (source) -> {g_out[inner].mean():.0f}")
    assert g_out[inner].mean() < g_src[inner].mean() - 40
    assert (g_out[inner] < 60).mean() > 0.05  # a throat that darkens toward the back (teeth and tongue cover the rest)


def test_without_mouth_interior_the_mouth_is_only_stretched(make_config, portrait_path: Path) -> None:
    cfg = make_config("animation.meshwarp.mouth_interior=false")
    a = create_animator("meshwarp", cfg)
    a.load_model()
    a.preprocess_source_image(str(portrait_path))
    motion = MotionState(mouth=MouthShape(open=0.3))
    out = a.animate(_inp(motion))
    inner = _poly_mask(a.target_points(motion)[INNER_MOUTH_RING], (256, 256))
    g_out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
    assert (g_out[inner] < 60).mean() < 0.15


@pytest.mark.parametrize("size", [256, 512])
def test_output_size_is_configurable(make_config, portrait_path: Path, tracker, size: int) -> None:
    a = create_animator("meshwarp", make_config(size=size))
    a.load_model()
    a.preprocess_source_image(str(portrait_path))
    assert a.output_size == size
    out = a.animate(_inp(_pose(10, 5, -5)))
    assert out.shape == (size, size, 3)
    lm = _redetect(tracker, out)
    assert 0.15 * size < np.ptp(lm[:, 0]) < 0.6 * size  # head and shoulders framing at any size


def test_animate_batch_equals_per_frame(anim) -> None:
    inputs = [_inp(m, i) for i, m in enumerate(MOTIONS.values())]
    batch = anim.animate_batch(inputs)
    single = [anim.animate(inp) for inp in inputs]
    assert len(batch) == len(inputs)
    for b, s in zip(batch, single, strict=True):
        assert np.array_equal(b, s)


def test_animate_before_prepare_is_an_error(make_config) -> None:
    a = create_animator("meshwarp", make_config())
    a.load_model()
    with pytest.raises(RuntimeError, match="preprocess_source_image"):
        a.animate(_inp(MotionState()))


# -- preparation cache -------------------------------------------------------------------------------------


@pytest.fixture
def private_cache(make_config, tmp_path: Path, portrait_path: Path):
    """A fresh cache folder and a copy of the portrait (so the test owns every cache file)."""
    cache = tmp_path / "cache"
    src = tmp_path / "me.png"
    shutil.copy(portrait_path, src)
    return make_config(f"cache.dir={cache}"), cache, src


def test_prepare_caches_by_content_hash(private_cache, tmp_path: Path) -> None:
    cfg, cache, src = private_cache
    first = prepare_meshwarp_source(src, cfg)
    files = sorted(cache.glob("*.npz"))
    assert not first.avatar.from_cache
    assert len(files) == 2 and all(f.name.startswith(file_hash(src)[:20]) for f in files)
    mtimes = {f: f.stat().st_mtime_ns for f in files}
    again = prepare_meshwarp_source(src, cfg)
    assert again.avatar.from_cache
    assert {f: f.stat().st_mtime_ns for f in cache.glob("*.npz")} == mtimes
    np.testing.assert_array_equal(again.mesh.points, first.mesh.points)
    np.testing.assert_array_equal(again.mesh.triangles, first.mesh.triangles)
    # Same content under another name: the same cache entry.
    renamed = tmp_path / "other_name.png"
    shutil.copy(src, renamed)
    assert prepare_meshwarp_source(renamed, cfg).avatar.from_cache
    # Different content: a new entry.
    img = cv2.imread(str(src))
    img[0, 0] = 255 - img[0, 0]
    changed = tmp_path / "changed.png"
    cv2.imwrite(str(changed), img)
    assert not prepare_meshwarp_source(changed, cfg).avatar.from_cache
    assert len(list(cache.glob("*.npz"))) == 4


def test_cache_depends_on_output_size(private_cache, make_config) -> None:
    cfg, cache, src = private_cache
    prepare_meshwarp_source(src, cfg)
    big = make_config(f"cache.dir={cache}", size=320)
    assert not prepare_meshwarp_source(src, big).avatar.from_cache
    assert prepare_meshwarp_source(src, big).avatar.from_cache


def test_corrupt_cache_file_is_rebuilt(private_cache, caplog) -> None:
    cfg, cache, src = private_cache
    reference = prepare_meshwarp_source(src, cfg)
    files = sorted(cache.glob("*.npz"))
    for f in files:
        f.write_bytes(b"garbage, not a zip file" * 10)
    with caplog.at_level("WARNING"):
        rebuilt = prepare_meshwarp_source(src, cfg)
    assert not rebuilt.avatar.from_cache
    assert "rebuilding" in caplog.text
    np.testing.assert_allclose(rebuilt.mesh.points, reference.mesh.points)
    for f in files:  # rewritten, loadable again
        with np.load(f) as data:
            assert data.files
    assert prepare_meshwarp_source(src, cfg).avatar.from_cache


def test_truncated_cache_file_is_rebuilt(private_cache) -> None:
    cfg, cache, src = private_cache
    prepare_meshwarp_source(src, cfg)
    for f in cache.glob("*.npz"):
        data = f.read_bytes()
        f.write_bytes(data[: len(data) // 2])
    assert not prepare_meshwarp_source(src, cfg).avatar.from_cache
    assert prepare_meshwarp_source(src, cfg).avatar.from_cache


def test_cli_prepare_then_render_reuses_the_cache(run_cli, tmp_path: Path, portrait_path: Path) -> None:
    cache = tmp_path / "cli_cache"
    src = tmp_path / "me.png"
    shutil.copy(portrait_path, src)
    r = run_cli("prepare", "--set", f"cache.dir={cache}", "--source", str(src))
    assert r.returncode == 0, r.stderr
    files = {f: f.stat().st_mtime_ns for f in cache.glob("*.npz")}
    assert len(files) == 3  # source, meshwarp, layers
    out = tmp_path / "out.mp4"
    r = run_cli("render", "--set", f"cache.dir={cache}", "--source", str(src), "--duration", "0.3", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    assert {f: f.stat().st_mtime_ns for f in cache.glob("*.npz")} == files  # read, not recomputed
    r = run_cli("prepare", "--set", f"cache.dir={cache}", "--source", str(src), "--force")
    assert r.returncode == 0, r.stderr
    new = {f: f.stat().st_mtime_ns for f in cache.glob("*.npz")}
    assert new.keys() == files.keys() and all(new[f] != files[f] for f in files)  # --force recomputed


def test_cache_never_defaults_into_home_in_tests(make_config, cache_dir: Path) -> None:
    assert Path(make_config().cache.dir) == cache_dir
    assert AvatarCache(make_config().cache.dir).dir == cache_dir
