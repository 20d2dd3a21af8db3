"""Gaze: the portrait's irises moved inside their eye openings (`animation.gaze: follow | camera | off`).

follow  the driver's irises relative to its eye corners (MediaPipe's 478-point mesh has the irises),
        compared with its neutral face: where the driver looks, the portrait looks
camera  eye contact: as the head turns, the eyes turn back toward the viewer (eyeball radius ~0.19 IOD)
off     the portrait's own irises, riding the eye as before

Prepared once: per eye, the iris (a disc patch of the source, soft edged) and the
eye with the iris removed (the disc inpainted from the white around it). Per
frame: the clean eye moved rigidly with its corners, the iris drawn at its
driven place plus the gaze shift, both shown only inside the driven lid opening.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from src.animation.meshwarp.mouth_layers import similarity_2pt
from src.core.face_mesh import (
    LEFT_EYE_CORNERS,
    LEFT_EYE_RING,
    LEFT_IRIS,
    RIGHT_EYE_CORNERS,
    RIGHT_EYE_RING,
    RIGHT_IRIS,
)

EYEBALL_RADIUS_IOD = 0.19
MIN_SHIFT_PX = 0.25  # smaller shifts draw nothing (the portrait's own eye, exactly)
EYES = ((LEFT_EYE_RING, LEFT_EYE_CORNERS, LEFT_IRIS), (RIGHT_EYE_RING, RIGHT_EYE_CORNERS, RIGHT_IRIS))


@dataclass
class _Eye:
    ring: list[int]
    corners: tuple[int, int]
    center: np.ndarray  # source iris centre (2,)
    radius: float
    width: float  # eye width, px
    src_corners: np.ndarray  # (2, 2) source eye corners


class GazeLayer:
    def __init__(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        lm = np.asarray(landmarks, np.float32)
        self.eyes: list[_Eye] = []
        clean = image.copy()
        for ring, corners, iris in EYES:
            c = lm[iris[0], :2]
            r = float(np.linalg.norm(lm[iris[1:], :2] - c, axis=1).mean())
            width = float(np.linalg.norm(lm[corners[0], :2] - lm[corners[1], :2]))
            self.eyes.append(_Eye(ring, corners, c, max(r, 1.0), width, lm[list(corners), :2].copy()))
            hole = np.zeros(image.shape[:2], np.uint8)
            cv2.circle(hole, (int(round(c[0] * 4)), int(round(c[1] * 4))), int(round((r + 1.0) * 4)), (255,), -1, cv2.LINE_AA, shift=2)
            filled = cv2.inpaint(clean, hole, 3, cv2.INPAINT_TELEA).astype(np.float32)
            # Half the white of this eye (its brighter half): the inpainting alone drags lashes into the white.
            opening = np.zeros(image.shape[:2], np.uint8)
            cv2.fillPoly(opening, [np.round(lm[ring, :2]).astype(np.int32)], (255,))
            px = image[(opening > 0) & (hole == 0)].astype(np.float32)
            if len(px) >= 4:
                grey = px.mean(axis=1)
                white = px[grey >= np.median(grey)].mean(axis=0)
                filled = 0.5 * filled + 0.5 * white
            a = hole.astype(np.float32)[..., None] / 255.0
            clean = (clean.astype(np.float32) * (1 - a) + filled * a + 0.5).astype(np.uint8)
        self.source = image
        self.clean = clean
        # The iris with a soft round edge (alpha), in source pixels.
        yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
        alpha = np.zeros(image.shape[:2], np.float32)
        for e in self.eyes:
            d = np.hypot(xx - e.center[0], yy - e.center[1])
            alpha = np.maximum(alpha, np.clip(e.radius + 0.5 - d, 0.0, 1.0))
        self.iris_alpha = alpha

    def shift_follow(self, expression: np.ndarray | None, axes: np.ndarray, iod: float) -> np.ndarray:
        """The driver's iris shift (both eyes together), in source pixels (2,)."""
        if expression is None or len(expression) < 478:
            return np.zeros(2, np.float32)
        shifts = [expression[iris[0], :2] - expression[list(corners), :2].mean(axis=0) for _, corners, iris in EYES]
        local = np.mean(shifts, axis=0)
        return (iod * (axes[:2, :2] @ local)).astype(np.float32)

    @staticmethod
    def shift_camera(rotation: np.ndarray, iod: float) -> np.ndarray:
        """The shift that keeps the eyes on the viewer as the head turns by `rotation`, in output pixels (2,)."""
        to_camera = rotation.T @ np.array([0.0, 0.0, -1.0], np.float32)  # the viewer's direction, head frame
        head_shift = np.array([-to_camera[0], -to_camera[1], 0.0], np.float32) * EYEBALL_RADIUS_IOD * iod
        return (rotation @ head_shift)[:2].astype(np.float32)

    def draw(self, out: np.ndarray, dst: np.ndarray, shift: np.ndarray) -> None:
        """Redraw both eyes' interiors with the irises shifted by `shift` (output px), in place."""
        if float(np.hypot(*shift)) < MIN_SHIFT_PX:
            return
        h, w = out.shape[:2]
        for e in self.eyes:
            ring = dst[e.ring, :2]
            x0 = max(int(np.floor(ring[:, 0].min())) - 2, 0)
            y0 = max(int(np.floor(ring[:, 1].min())) - 2, 0)
            x1 = min(int(np.ceil(ring[:, 0].max())) + 3, w)
            y1 = min(int(np.ceil(ring[:, 1].max())) + 3, h)
            if x1 - x0 < 3 or y1 - y0 < 2:
                continue
            m = similarity_2pt(dst[list(e.corners), :2], e.src_corners)
            scale = float(np.hypot(m[0, 0], m[1, 0]))
            # Keep the iris inside the opening: at most a quarter eye width sideways, an eighth up or down.
            lim = np.array([0.25, 0.12], np.float32) * e.width / max(scale, 1e-3)
            s = np.clip(shift, -lim, lim)
            m_roi = m.copy()
            m_roi[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
            size = (x1 - x0, y1 - y0)
            flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            eye = cv2.warpAffine(self.clean, m_roi, size, flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            # The iris: sampled from its source place, drawn `s` further along.
            m_iris = m_roi.copy()
            m_iris[:, 2] -= m[:, :2] @ s
            iris = cv2.warpAffine(self.source, m_iris, size, flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            ia: np.ndarray = cv2.warpAffine(self.iris_alpha, m_iris, size, flags=flags, borderMode=cv2.BORDER_CONSTANT)[..., None]
            eye = eye * (1 - ia) + iris * ia
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.round((ring - (x0, y0)) * 4).astype(np.int32)], (255,), cv2.LINE_AA, shift=2)
            a = mask.astype(np.float32)[..., None] / 255.0
            roi = out[y0:y1, x0:x1].astype(np.float32)
            out[y0:y1, x0:x1] = (roi * (1 - a) + eye * a + 0.5).astype(np.uint8)
