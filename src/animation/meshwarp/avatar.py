"""Per-avatar preparation, computed once and cached by the source file's content hash.

`prepare_avatar(path, config)` reads the portrait, finds its faces (the largest,
or `source.face_index`), crops a square around the face, scales it to the
output size and finds the landmarks again at that size. Animators add their own
arrays (mesh, masks, feature volumes) to the same cache through `AvatarCache`.
A cache file that cannot be read is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.capture.face_tracker import FaceTracker
from src.capture.sources import read_image
from src.core.config import AppConfig, resolve_path
from src.core.errors import SourceImageError

log = logging.getLogger(__name__)

PREP_VERSION = 5  # bump when the cached arrays change meaning


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class AvatarCache:
    """npz files under `cache.dir`, one per (content hash, namespace, parameters)."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory).expanduser()

    def path(self, content_hash: str, namespace: str, params: dict[str, Any]) -> Path:
        tag = hashlib.sha256(json.dumps({"v": PREP_VERSION, **params}, sort_keys=True).encode()).hexdigest()[:12]
        return self.dir / f"{content_hash[:20]}_{namespace}_{tag}.npz"

    def load(self, path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray] | None:
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("avatar cache %s is unreadable (%s); rebuilding it", path, exc)
            return None
        missing = [k for k in required if k not in arrays]
        if missing:
            log.warning("avatar cache %s lacks %s; rebuilding it", path, ", ".join(missing))
            return None
        return arrays

    def save(self, path: Path, arrays: dict[str, np.ndarray]) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp.npz")
            os.close(fd)
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # atomic: a crash never leaves a half-written cache
        except OSError as exc:
            log.warning("cannot write avatar cache %s (%s); continuing without it", path, exc)


@dataclass
class PreparedAvatar:
    image: np.ndarray  # S x S x 3 BGR, the cropped and scaled source
    landmarks: np.ndarray  # (478, 3) in output pixels
    crop: tuple[float, float, float]  # x0, y0, side in the original image
    faces_found: int
    content_hash: str
    source_path: str
    from_cache: bool = False


def _square_crop(bbox: tuple[float, float, float, float], img_w: int, img_h: int) -> tuple[float, float, float]:
    """A square around the face: 2.2 to 3.4 face sizes (head and shoulders), inside the image when it fits."""
    x0, y0, x1, y1 = bbox
    face = max(x1 - x0, y1 - y0)
    side = float(np.clip(min(img_w, img_h), 2.2 * face, 3.4 * face))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.1 * face  # a little below the face centre: room for the neck
    left = cx - side / 2
    top = cy - side / 2
    if side <= img_w:
        left = float(np.clip(left, 0, img_w - side))
    if side <= img_h:
        top = float(np.clip(top, 0, img_h - side))
    return left, top, side


def _crop_to_output(image: np.ndarray, crop: tuple[float, float, float], size: int) -> np.ndarray:
    left, top, side = crop
    s = size / side
    m = np.array([[s, 0, -left * s], [0, s, -top * s]], np.float32)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, m, (size, size), flags=interp, borderMode=cv2.BORDER_REPLICATE)


def prepare_avatar(path: str | Path, config: AppConfig, *, use_cache: bool = True, face_index: int | None = None) -> PreparedAvatar:
    """Load (or compute and cache) the cropped source and its landmarks."""
    src = resolve_path(path)
    image = read_image(src, "source image")
    content_hash = file_hash(src)
    size = config.animation.output_size_px
    index = config.source.face_index if face_index is None else face_index
    cache = AvatarCache(config.cache.dir)
    cpath = cache.path(content_hash, "source", {"size": size, "face_index": index})
    if use_cache:
        arrays = cache.load(cpath, ("image", "landmarks", "crop", "faces_found"))
        if arrays is not None:
            return PreparedAvatar(arrays["image"], arrays["landmarks"], tuple(arrays["crop"].tolist()), int(arrays["faces_found"]),
                                  content_hash, str(src), from_cache=True)
    with FaceTracker(config.tracking, static_image_mode=True) as tracker:
        faces = tracker.process(image)
        if not faces:
            raise SourceImageError(f"source image {src}: no face found; use a photo with a clear, frontal, well-lit face")
        if index >= len(faces):
            raise SourceImageError(f"source image {src}: --face-index {index} but only {len(faces)} face(s) found; use 0..{len(faces) - 1}")
        if len(faces) > 1:
            which = "the largest" if index == 0 else f"face {index} by size"
            log.warning("source image %s: %d faces found; using %s (--face-index picks another)", src, len(faces), which)
        crop = _square_crop(faces[index].bbox, image.shape[1], image.shape[0])
        out = _crop_to_output(image, crop, size)
        found = tracker.process(out)
    if not found:
        raise SourceImageError(f"source image {src}: the face is too small or cut off after cropping; use a larger, frontal face")
    # The face we chose is the one nearest the crop's centre of the chosen face.
    left, top, side = crop
    fx0, fy0, fx1, fy1 = faces[index].bbox
    target = np.array([((fx0 + fx1) / 2 - left) * size / side, ((fy0 + fy1) / 2 - top) * size / side])
    best = min(found, key=lambda f: np.hypot(*(np.array([(f.bbox[0] + f.bbox[2]) / 2, (f.bbox[1] + f.bbox[3]) / 2]) - target)))
    avatar = PreparedAvatar(out, best.landmarks.astype(np.float32), crop, len(faces), content_hash, str(src))
    if use_cache:
        cache.save(cpath, {"image": out, "landmarks": avatar.landmarks, "crop": np.array(crop), "faces_found": np.array(len(faces))})
    return avatar
