"""What shows behind the person: `animation.background: keep | blur | image:PATH | color:#RRGGBB | transparent`.

keep         the portrait's own backdrop (the filled plate: the part hidden behind the head filled once)
blur         the plate, blurred (a shallow depth of field)
image:PATH   a picture, scaled to cover the frame and centre-cropped
color:#RRGGBB  a flat colour
transparent  alpha where the output can carry it (a .webm file: VP9 with alpha; a .mov file: ProRes 4444);
             elsewhere (virtual camera, window, WebRTC, .mp4) the key colour KEY_BGR (#00B140, chroma green)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from src.core.background_spec import parse_color, validate_spec
from src.core.errors import ConfigError
from src.core.frames import KEY_BGR


@dataclass
class Background:
    kind: str  # keep | blur | image | color | transparent
    color: tuple[int, int, int] = (0, 0, 0)
    picture: np.ndarray | None = None

    @property
    def transparent(self) -> bool:
        return self.kind == "transparent"

    @classmethod
    def from_spec(cls, spec: str) -> Background:
        s = validate_spec(spec)
        low = s.lower()
        if low.startswith("color:"):
            return cls("color", parse_color(s[6:]))
        if low.startswith("image:"):
            from src.capture.sources import read_image
            from src.core.config import resolve_path
            from src.core.errors import CaptureError

            path = s[6:].strip()
            try:
                pic = read_image(resolve_path(path), "background image")
            except CaptureError as exc:
                raise ConfigError(f"animation.background image:{path}: {str(exc).split(': ', 1)[-1]}") from None
            return cls("image", picture=pic)
        if low == "transparent":
            return cls("transparent", KEY_BGR)  # colour over the plate (straight alpha); keyed downstream
        return cls(low)

    def render(self, plate: np.ndarray) -> np.ndarray:
        """The background at the plate's size."""
        h, w = plate.shape[:2]
        if self.kind in ("keep", "transparent"):
            return plate
        if self.kind == "blur":
            return cv2.GaussianBlur(plate, (0, 0), max(w / 40.0, 2.0))
        if self.kind == "image" and self.picture is not None:
            ph, pw = self.picture.shape[:2]
            s = max(w / pw, h / ph)
            interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
            resized = cv2.resize(self.picture, (max(w, round(pw * s)), max(h, round(ph * s))), interpolation=interp)
            y0 = (resized.shape[0] - h) // 2
            x0 = (resized.shape[1] - w) // 2
            return np.ascontiguousarray(resized[y0 : y0 + h, x0 : x0 + w])
        out = np.empty_like(plate)
        out[:] = self.color
        return out
