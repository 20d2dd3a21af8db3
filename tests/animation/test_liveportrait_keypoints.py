"""LivePortrait keypoint math against an independent reference written from the formulas (scipy)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from scipy.special import softmax

from src.animation.liveportrait import keypoints as kpm
from src.animation.liveportrait.animator import LivePortraitAnimator
from src.core.config import AppConfig


def random_info(rng: np.random.Generator, b: int = 1) -> kpm.KpInfo:
    return kpm.KpInfo(
        pitch=rng.uniform(-20, 20, b), yaw=rng.uniform(-30, 30, b), roll=rng.uniform(-15, 15, b),
        t=rng.normal(0, 0.05, (b, 3)), exp=rng.normal(0, 0.02, (b, 21, 3)), scale=rng.uniform(0.8, 1.2, (b, 1)),
        kp=rng.normal(0, 0.3, (b, 21, 3)),
    )  # fmt: skip


def ref_rot(info: kpm.KpInfo, i: int = 0) -> np.ndarray:
    # LivePortrait: rot = Rz(roll) Ry(yaw) Rx(pitch), used transposed with row vectors.
    return Rotation.from_euler("xyz", [info.pitch[i], info.yaw[i], info.roll[i]], degrees=True).as_matrix().T


def ref_x(kp: np.ndarray, rot: np.ndarray, exp: np.ndarray, scale: float, t: np.ndarray) -> np.ndarray:
    x = scale * (kp @ rot + exp)
    return x + np.array([t[0], t[1], 0.0])


def test_headpose_bins_to_degrees() -> None:
    rng = np.random.default_rng(0)
    bins = rng.normal(0, 3, (4, 66))
    ref = [(softmax(b) * np.arange(66)).sum() * 3 - 97.5 for b in bins]
    np.testing.assert_allclose(kpm.headpose_to_degrees(bins), ref, atol=1e-9)
    peaked = np.full((1, 66), -50.0)
    peaked[0, 40] = 50.0
    assert kpm.headpose_to_degrees(peaked)[0] == 40 * 3 - 97.5


def test_rotation_and_keypoint_transform_match_reference() -> None:
    rng = np.random.default_rng(1)
    info = random_info(rng, 3)
    rot = info.rotation
    for i in range(3):
        np.testing.assert_allclose(rot[i], ref_rot(info, i), atol=1e-12)
        ref = ref_x(info.kp[i], ref_rot(info, i), info.exp[i], info.scale[i, 0], info.t[i])
        np.testing.assert_allclose(kpm.source_keypoints(info)[i], ref, atol=1e-12)


def test_relative_motion_matches_reference() -> None:
    rng = np.random.default_rng(2)
    s, d, d0 = random_info(rng), random_info(rng), random_info(rng)
    x = kpm.compose(s, kpm.relative_motion(s, d, d0))[0]
    r_new = ref_rot(d) @ ref_rot(d0).T @ ref_rot(s)
    exp = s.exp[0] + d.exp[0] - d0.exp[0]
    scale = s.scale[0, 0] * d.scale[0, 0] / d0.scale[0, 0]
    t = s.t[0] + d.t[0] - d0.t[0]
    np.testing.assert_allclose(x, ref_x(s.kp[0], r_new, exp, scale, t), atol=1e-12)
    # The reference frame itself reproduces the source exactly.
    np.testing.assert_allclose(kpm.compose(s, kpm.relative_motion(s, d0, d0))[0], kpm.source_keypoints(s)[0], atol=1e-12)


def test_absolute_motion_matches_reference() -> None:
    rng = np.random.default_rng(3)
    s, d = random_info(rng), random_info(rng)
    x = kpm.compose(s, kpm.absolute_motion(s, d))[0]
    np.testing.assert_allclose(x, ref_x(s.kp[0], ref_rot(d), d.exp[0], s.scale[0, 0], d.t[0]), atol=1e-12)


def test_stitching_delta_application() -> None:
    rng = np.random.default_rng(4)
    x_d = rng.normal(size=(2, 21, 3))
    delta = rng.normal(size=(2, 65))
    out = kpm.apply_stitching(x_d, delta)
    for b in range(2):
        ref = x_d[b] + delta[b, :63].reshape(21, 3)
        ref[:, 0] += delta[b, 63]
        ref[:, 1] += delta[b, 64]
        np.testing.assert_allclose(out[b], ref, atol=1e-12)


def test_idle_rotation_composes_with_source_pose() -> None:
    rng = np.random.default_rng(5)
    s = random_info(rng)
    delta = Rotation.from_euler("y", 15, degrees=True).as_matrix()
    x = kpm.compose(s, kpm.rotated_source_motion(s, delta[None]))[0]
    np.testing.assert_allclose(x, ref_x(s.kp[0], delta.T @ ref_rot(s), s.exp[0], s.scale[0, 0], s.t[0]), atol=1e-12)


def test_one_euro_smoothing_of_driver_motion_reduces_jitter() -> None:
    cfg = AppConfig()
    cfg.animation.liveportrait.smoothing = True
    anim = LivePortraitAnimator(cfg)
    rng = np.random.default_rng(6)
    base = random_info(rng)
    raw, smooth = [], []
    for i in range(60):
        exp = base.exp + rng.normal(0, 0.01, base.exp.shape)
        noisy = kpm.KpInfo(base.pitch + rng.normal(0, 2), base.yaw + rng.normal(0, 2), base.roll, base.t, exp, base.scale, base.kp)
        raw.append(noisy.yaw[0])
        smooth.append(anim._smooth(noisy, i / 30.0).yaw[0])
    assert np.std(np.diff(smooth[10:])) < 0.5 * np.std(np.diff(raw[10:]))
    assert abs(np.mean(smooth[10:]) - base.yaw[0]) < 1.5  # no drift away from the true pose
