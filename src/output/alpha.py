"""Files that carry the alpha channel of `animation.background: transparent`.

.webm: VP9 (libvpx-vp9, yuva420p; read it back with the libvpx-vp9 decoder, ffmpeg's own VP9 decoder drops alpha)
.mov:  ProRes 4444 (prores_ks, yuva444p10le)
Any other file, the virtual camera, the window and WebRTC get the frame over the key colour
(src.animation.meshwarp.background.KEY_BGR, #00B140).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from src.core.frames import KEY_BGR, RenderedFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlphaCodec:
    codec: str
    pix_fmt: str
    options: dict[str, str]


ALPHA_CODECS = {
    ".webm": AlphaCodec("libvpx-vp9", "yuva420p", {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8"}),
    ".mov": AlphaCodec("prores_ks", "yuva444p10le", {"profile": "4444"}),
}


def alpha_codec_for(path: Path, background: str) -> AlphaCodec | None:
    """The alpha codec for this file when the background is transparent and the container carries alpha."""
    if background != "transparent":
        if path.suffix.lower() == ".webm":  # WebM takes VP9 whatever the background (H.264 is not allowed in it)
            vp9 = ALPHA_CODECS[".webm"]
            return AlphaCodec(vp9.codec, "yuv420p", vp9.options)
        return None
    codec = ALPHA_CODECS.get(path.suffix.lower())
    if codec is None:
        log.warning("output file %s: %s files carry no alpha; the background is the key colour #00B140 (use .webm or .mov "
                    "for alpha)", path, path.suffix or "these")
    return codec


def bgra(frame: RenderedFrame) -> np.ndarray:
    """The frame's BGRA (straight alpha), opaque when it has none."""
    if frame.bgra is not None:
        return frame.bgra
    return np.dstack([frame.image, np.full(frame.image.shape[:2], 255, np.uint8)])


def key_over(bgra_image: np.ndarray, key_bgr: tuple[int, int, int] = KEY_BGR) -> np.ndarray:
    """A BGRA frame composited over the key colour (virtual camera, window, WebRTC, .mp4)."""
    a = bgra_image[..., 3].astype(np.float32) * np.float32(1.0 / 255.0)
    key = np.empty(bgra_image.shape[:2] + (3,), np.uint8)
    key[:] = key_bgr
    return cv2.blendLinear(cv2.cvtColor(bgra_image, cv2.COLOR_BGRA2BGR), key, a, 1.0 - a)
