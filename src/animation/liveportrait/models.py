"""The LivePortrait ONNX file set (FasterLivePortrait's exports), checked on load, with typed calls.

All float32 with batch 1 in the standard exports; the specs mark axis 0 as the
batch axis, so a dynamic-batch export is accepted and used batched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from src.animation.liveportrait.keypoints import N_KP, KpInfo
from src.animation.onnx_session import BATCH, ModelSpec, OnnxModel
from src.core.config import OnnxConfig
from src.core.errors import ModelError

K3 = 3 * N_KP

SPECS: dict[str, ModelSpec] = {
    "appearance_feature_extractor": ModelSpec({"img": (BATCH, 3, 256, 256)}, {"output": (BATCH, 32, 16, 64, 64)}),
    "motion_extractor": ModelSpec(
        {"img": (BATCH, 3, 256, 256)},
        {
            "pitch": (BATCH, 66),
            "yaw": (BATCH, 66),
            "roll": (BATCH, 66),
            "t": (BATCH, 3),
            "exp": (BATCH, K3),
            "scale": (BATCH, 1),
            "kp": (BATCH, K3),
        },
    ),
    "warping_spade": ModelSpec(
        {"feature_3d": (BATCH, 32, 16, 64, 64), "kp_driving": (BATCH, N_KP, 3), "kp_source": (BATCH, N_KP, 3)},
        {"out": (BATCH, 3, 512, 512)},
    ),
    "stitching": ModelSpec({"input": (BATCH, 2 * K3)}, {"output": (BATCH, K3 + 2)}),
    "stitching_eye": ModelSpec({"input": (BATCH, K3 + 3)}, {"output": (BATCH, K3)}),
    "stitching_lip": ModelSpec({"input": (BATCH, K3 + 2)}, {"output": (BATCH, K3)}),
}
# landmark.onnx is part of the standard set but not needed: our MediaPipe tracker gives the landmarks.
REQUIRED = tuple(SPECS)


def model_files(model_dir: str | Path) -> dict[str, Path]:
    """The required files of a model folder; one ModelError listing every missing one."""
    d = Path(model_dir).expanduser()
    if not d.is_dir():
        raise ModelError(f"animation.liveportrait.model_dir {d}: not a folder; point it at the LivePortrait ONNX exports")
    files = {name: d / f"{name}.onnx" for name in REQUIRED}
    missing = [p.name for p in files.values() if not p.is_file()]
    if missing:
        raise ModelError(
            f"animation.liveportrait.model_dir {d}: missing {', '.join(missing)}; copy the full LivePortrait ONNX export set there"
        )
    return files


def model_fingerprint(files: dict[str, Path]) -> str:
    """Identifies the weights (name, size, mtime) for the source cache key without hashing gigabytes."""
    h = hashlib.sha256()
    for name in sorted(files):
        st = files[name].stat()
        h.update(f"{name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


class LivePortraitModels:
    """Sessions for the six models and the calls the animator needs (batched on axis 0)."""

    def __init__(self, model_dir: str | Path, cfg: OnnxConfig, on_timing: Callable[[str, float], None] | None = None) -> None:
        self.files = model_files(model_dir)
        self.fingerprint = model_fingerprint(self.files)
        self.m = {name: OnnxModel(path, SPECS[name], cfg, name=name, on_timing=on_timing) for name, path in self.files.items()}

    @property
    def dynamic_batch(self) -> bool:
        """True when the per-frame models take a real batch (the standard exports are static batch 1)."""
        return all(self.m[n].static_batch is None for n in ("motion_extractor", "warping_spade", "stitching"))

    def warmup(self) -> None:
        for model in self.m.values():
            model.warmup()

    def appearance(self, img: np.ndarray) -> np.ndarray:
        return self.m["appearance_feature_extractor"].run({"img": img})["output"]

    def motion(self, img: np.ndarray) -> KpInfo:
        return KpInfo.from_outputs(self.m["motion_extractor"].run({"img": img}))

    def warp(self, feature_3d: np.ndarray, kp_driving: np.ndarray, kp_source: np.ndarray) -> np.ndarray:
        b = kp_driving.shape[0]
        feats = np.broadcast_to(feature_3d, (b, *feature_3d.shape[1:])) if feature_3d.shape[0] != b else feature_3d
        ks = np.broadcast_to(kp_source, kp_driving.shape) if kp_source.shape[0] != b else kp_source
        return self.m["warping_spade"].run({"feature_3d": feats, "kp_driving": kp_driving, "kp_source": ks})["out"]

    def stitching(self, x_s: np.ndarray, x_d: np.ndarray) -> np.ndarray:
        b = x_d.shape[0]
        xs = np.broadcast_to(x_s.reshape(-1, K3), (b, K3))
        return self.m["stitching"].run({"input": np.concatenate([xs, x_d.reshape(b, K3)], axis=1)})["output"]

    def retarget_eye(self, x_s: np.ndarray, ratios: np.ndarray) -> np.ndarray:
        """ratios (B, 3) = source left/right eye-open ratios ++ the driving one -> (B, 21, 3) deltas."""
        b = ratios.shape[0]
        xs = np.broadcast_to(x_s.reshape(-1, K3), (b, K3))
        return self.m["stitching_eye"].run({"input": np.concatenate([xs, ratios], axis=1)})["output"].reshape(b, N_KP, 3)

    def retarget_lip(self, x_s: np.ndarray, ratios: np.ndarray) -> np.ndarray:
        """ratios (B, 2) = source lip-open ratio ++ the driving one -> (B, 21, 3) deltas."""
        b = ratios.shape[0]
        xs = np.broadcast_to(x_s.reshape(-1, K3), (b, K3))
        return self.m["stitching_lip"].run({"input": np.concatenate([xs, ratios], axis=1)})["output"].reshape(b, N_KP, 3)

    def timings(self) -> dict[str, float]:
        return {name: m.mean_ms() for name, m in self.m.items()}
