"""Per-source preparation for LivePortrait, cached per content hash (npz under config.cache.dir).

Once per portrait: fit to the output canvas, track the face (our FaceTracker),
crop 512 -> 256, motion extractor (kp, angles, exp, scale, t -> x_s),
appearance feature volume, paste-back mask, and the source's eye/lip ratios
for retargeting. A cache file that cannot be read is rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.animation.liveportrait.crop import crop_image, crop_matrix, fit_square, paste_mask
from src.animation.liveportrait.keypoints import KpInfo, source_keypoints
from src.animation.liveportrait.models import LivePortraitModels
from src.animation.liveportrait.retarget import eye_ratios, lip_ratio, mouth_width_iod
from src.core.config import AppConfig, resolve_path
from src.core.errors import SourceImageError

log = logging.getLogger(__name__)

CACHE_VERSION = 1
CROP_SIZE = 512
NET_SIZE = 256


@dataclass
class SourceState:
    canvas: np.ndarray  # output_size x output_size x 3 BGR: the portrait as it appears in the output
    crop_m: np.ndarray  # 2x3 canvas -> 512 crop
    mask: np.ndarray  # 512 x 512 float32 paste-back mask (crop space)
    feature_3d: np.ndarray  # [1, 32, 16, 64, 64]
    info: KpInfo
    x_s: np.ndarray  # [1, 21, 3]
    eye: np.ndarray  # [2] source eye-open ratios (left, right)
    lip: float  # source lip-open ratio
    mouth_width_iod: float  # mouth width / inter-ocular distance (converts MouthShape.open to a lip ratio)


def to_net(img_bgr: np.ndarray) -> np.ndarray:
    """BGR uint8 (any size) -> [1, 3, 256, 256] RGB float32 in [0, 1]."""
    if img_bgr.shape[0] != NET_SIZE:
        img_bgr = cv2.resize(img_bgr, (NET_SIZE, NET_SIZE), interpolation=cv2.INTER_AREA)
    return (cv2.cvtColor(img_bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0).transpose(2, 0, 1)[None]


def _cache_path(config: AppConfig, image_path: Path, fingerprint: str) -> Path:
    lp = config.animation.liveportrait
    h = hashlib.sha256(image_path.read_bytes())
    h.update(f"{fingerprint}|{config.animation.output_size_px}|{config.source.face_index}|{lp.crop_scale}|{lp.crop_vy_ratio}|v{CACHE_VERSION}".encode())
    return resolve_path(config.cache.dir) / "liveportrait" / f"{h.hexdigest()[:24]}.npz"


def _load(path: Path) -> SourceState | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return SourceState(
                canvas=z["canvas"], crop_m=z["crop_m"], mask=z["mask"], feature_3d=z["feature_3d"], info=KpInfo.from_arrays(z, "s_"),
                x_s=z["x_s"], eye=z["eye"], lip=float(z["lip"]), mouth_width_iod=float(z["mouth_width_iod"]),
            )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - any unreadable cache (truncated, wrong keys, zip error) is rebuilt
        log.warning("source cache %s unreadable (%s); rebuilding it", path, type(exc).__name__)
        return None


def _save(path: Path, s: SourceState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp, canvas=s.canvas, crop_m=s.crop_m, mask=s.mask, feature_3d=s.feature_3d, x_s=s.x_s, eye=s.eye,
        lip=np.float64(s.lip), mouth_width_iod=np.float64(s.mouth_width_iod), **s.info.to_arrays("s_"),
    )  # fmt: skip
    tmp.replace(path)


def prepare_source(image_path: str | Path, config: AppConfig, models: LivePortraitModels) -> tuple[SourceState, bool]:
    """(state, from_cache). Raises SourceImageError when the portrait is unreadable or has no face."""
    path = Path(image_path).expanduser()
    if not path.is_file():
        raise SourceImageError(f"source image {path}: not found; pass a portrait with --source")
    cache = _cache_path(config, path, models.fingerprint)
    if cache.is_file():
        state = _load(cache)
        if state is not None:
            return state, True
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceImageError(f"source image {path}: cannot be read; use a PNG or JPEG portrait")
    canvas = fit_square(img, config.animation.output_size_px)
    from src.capture.face_tracker import FaceTracker

    with FaceTracker(config.tracking, static_image_mode=True) as tracker:
        faces = tracker.process(canvas)
    if not faces:
        raise SourceImageError(f"source image {path}: no face found; use a portrait with one clearly visible face")
    face = faces[min(config.source.face_index, len(faces) - 1)]
    lp = config.animation.liveportrait
    m = crop_matrix(face.landmarks, CROP_SIZE, lp.crop_scale, lp.crop_vy_ratio)
    crop = crop_image(canvas, m, CROP_SIZE)
    net_in = to_net(crop)
    info = models.motion(net_in)
    state = SourceState(
        canvas=canvas, crop_m=m, mask=paste_mask(CROP_SIZE), feature_3d=models.appearance(net_in), info=info,
        x_s=source_keypoints(info), eye=np.asarray(eye_ratios(face.landmarks), np.float64), lip=lip_ratio(face.landmarks),
        mouth_width_iod=mouth_width_iod(face.landmarks),
    )  # fmt: skip
    _save(cache, state)
    return state, False
