"""LivePortrait's implicit-keypoint math (ANCHORS.md), in NumPy, batched over axis 0.

x = scale * (kp @ R + exp) + t on 21 points x 3, with R = (Rz(roll) Ry(yaw) Rx(pitch))^T
(row vectors, as LivePortrait's get_rotation_matrix) and only t's x, y added.
Relative motion: R_d = R_di R_d0^T R_s; exp_d = exp_s + (exp_di - exp_d0);
scale_d = scale_s * scale_di / scale_d0; t_d = t_s + (t_di - t_d0), z of t zeroed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_KP = 21
LIP_KP = (6, 12, 14, 17, 19, 20)  # keypoints LivePortrait treats as the lips' (animation_region "lip")
EYE_KP = (11, 13, 15, 16, 18)


def headpose_to_degrees(bins: np.ndarray) -> np.ndarray:
    """(B, 66) angle-bin logits -> (B,) degrees: sum(softmax(bins) * index) * 3 - 97.5."""
    b = np.asarray(bins, np.float64)
    e = np.exp(b - b.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return (p @ np.arange(b.shape[1], dtype=np.float64)) * 3.0 - 97.5


def rotation_matrix(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(B, 3, 3) row-vector rotation from angles in degrees (LivePortrait's convention)."""
    x, y, z = (np.radians(np.atleast_1d(np.asarray(a, np.float64))) for a in (pitch, yaw, roll))
    n = len(x)
    one, zero = np.ones(n), np.zeros(n)
    rx = np.stack([one, zero, zero, zero, np.cos(x), -np.sin(x), zero, np.sin(x), np.cos(x)], 1).reshape(n, 3, 3)
    ry = np.stack([np.cos(y), zero, np.sin(y), zero, one, zero, -np.sin(y), zero, np.cos(y)], 1).reshape(n, 3, 3)
    rz = np.stack([np.cos(z), -np.sin(z), zero, np.sin(z), np.cos(z), zero, zero, zero, one], 1).reshape(n, 3, 3)
    return np.transpose(rz @ ry @ rx, (0, 2, 1))


@dataclass
class KpInfo:
    """One motion-extractor result (batched): angles in degrees, t [B,3], exp/kp [B,21,3], scale [B,1]."""

    pitch: np.ndarray
    yaw: np.ndarray
    roll: np.ndarray
    t: np.ndarray
    exp: np.ndarray
    scale: np.ndarray
    kp: np.ndarray

    @classmethod
    def from_outputs(cls, out: dict[str, np.ndarray]) -> KpInfo:
        b = out["kp"].shape[0]
        return cls(
            pitch=headpose_to_degrees(out["pitch"]),
            yaw=headpose_to_degrees(out["yaw"]),
            roll=headpose_to_degrees(out["roll"]),
            t=np.asarray(out["t"], np.float64).reshape(b, 3),
            exp=np.asarray(out["exp"], np.float64).reshape(b, N_KP, 3),
            scale=np.asarray(out["scale"], np.float64).reshape(b, 1),
            kp=np.asarray(out["kp"], np.float64).reshape(b, N_KP, 3),
        )

    @property
    def rotation(self) -> np.ndarray:
        return rotation_matrix(self.pitch, self.yaw, self.roll)

    def take(self, i: int) -> KpInfo:
        s = slice(i, i + 1)
        return KpInfo(self.pitch[s], self.yaw[s], self.roll[s], self.t[s], self.exp[s], self.scale[s], self.kp[s])

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")}

    @classmethod
    def from_arrays(cls, data: dict[str, np.ndarray] | np.lib.npyio.NpzFile, prefix: str) -> KpInfo:
        return cls(*(np.asarray(data[f"{prefix}{k}"], np.float64) for k in ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")))


def transform_keypoints(kp: np.ndarray, rot: np.ndarray, exp: np.ndarray, scale: np.ndarray, t: np.ndarray) -> np.ndarray:
    """x = scale * (kp @ R + exp) + t (x, y of t only): (B, 21, 3)."""
    x = (kp @ rot + exp) * np.asarray(scale).reshape(-1, 1, 1)
    x[:, :, :2] += np.asarray(t).reshape(-1, 3)[:, None, :2]
    return x


def source_keypoints(src: KpInfo) -> np.ndarray:
    return transform_keypoints(src.kp, src.rotation, src.exp, src.scale, src.t)


@dataclass
class Motion:
    """The composed driving parameters for the source's canonical keypoints."""

    rotation: np.ndarray  # (B, 3, 3)
    exp: np.ndarray  # (B, 21, 3)
    scale: np.ndarray  # (B, 1)
    t: np.ndarray  # (B, 3), z = 0


def relative_motion(src: KpInfo, drv: KpInfo, drv0: KpInfo) -> Motion:
    r_new = drv.rotation @ np.transpose(drv0.rotation, (0, 2, 1)) @ src.rotation
    exp = src.exp + (drv.exp - drv0.exp)
    scale = src.scale * (drv.scale / drv0.scale)
    t = src.t + (drv.t - drv0.t)
    t[:, 2] = 0.0
    return Motion(r_new, exp, scale, t)


def absolute_motion(src: KpInfo, drv: KpInfo) -> Motion:
    t = drv.t.copy()
    t[:, 2] = 0.0
    return Motion(drv.rotation, drv.exp.copy(), np.broadcast_to(src.scale, drv.scale.shape).copy(), t)


def rotated_source_motion(src: KpInfo, delta_rotation: np.ndarray) -> Motion:
    """Idle / audio driving: the source's own parameters with a head rotation applied.

    `delta_rotation` (B, 3, 3) is MotionState.rotation (column vectors, camera axes x right, y down);
    for row vectors that is R_d = delta^T R_s, the same as the relative formula with a frontal neutral.
    """
    d = np.asarray(delta_rotation, np.float64).reshape(-1, 3, 3)
    rot = np.transpose(d, (0, 2, 1)) @ src.rotation
    t = np.repeat(src.t, len(d), axis=0) if len(src.t) != len(d) else src.t.copy()
    t[:, 2] = 0.0
    exp = np.repeat(src.exp, len(d), axis=0) if len(src.exp) != len(d) else src.exp.copy()
    scale = np.repeat(src.scale, len(d), axis=0) if len(src.scale) != len(d) else src.scale.copy()
    return Motion(rot, exp, scale, t)


def compose(src: KpInfo, motion: Motion) -> np.ndarray:
    """Driving keypoints x_d from the source's canonical kp and the composed motion."""
    kp = np.repeat(src.kp, len(motion.rotation), axis=0) if len(src.kp) != len(motion.rotation) else src.kp
    return transform_keypoints(kp, motion.rotation, motion.exp, motion.scale, motion.t)


def apply_stitching(x_d: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """x_d (B, 21, 3) + the stitching output (B, 65): 63 keypoint deltas, then tx, ty for every point."""
    b = x_d.shape[0]
    out = x_d + delta[:, : 3 * N_KP].reshape(b, N_KP, 3)
    out[:, :, :2] += delta[:, None, 3 * N_KP : 3 * N_KP + 2]
    return out
