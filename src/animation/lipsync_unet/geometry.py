"""Crop boxes, the mouth mask and the paste-back for the lip-sync U-Net (ANCHORS: SyncTalk_2D / Ultralight).

Box: x from the left jaw-line point to the right jaw-line point, top at the
nose bridge, height = width; resized to S + 8 (168 or 328). Templates measure
that width on the eyes (see `box_from_landmarks`) so it does not breathe with
the jaw. The network sees
the inner S x S (crop[4:S+4, 4:S+4]) with the mouth area blacked out, plus an
unmasked reference; its output goes back into crop[4:S+4] and the crop is
pasted into the frame through a feathered mask around the mouth area only, so
pixels outside it are the template's own.
"""

from __future__ import annotations

import cv2
import numpy as np

JAW_LEFT, JAW_RIGHT = 234, 454  # MediaPipe face-oval points at the jaw line (image left / right)
NOSE_BRIDGE = 197
EYE_OUTER = (33, 263)  # outer eye corners (image left, image right)
BORDER = 4  # the crop is S + 2 * BORDER; the network sees the inner S x S

# The blacked-out area of the network's input, in inner-crop units (x0, y0, x1, y1): everything below
# the nostrils, edge to edge. Any visible jaw line, chin or cheek outline tells the mouth opening, and a
# briefly trained network reads that instead of the audio (SyncTalk_2D masks almost the whole crop for
# the same reason). Measured on the training figure's template: a ridge regression from the 8-pixel side
# strips that (0.04, 0.21, 0.96, 1.0) left visible predicts the mouth opening at r = 0.97, and the
# network's output followed the template's own mouth at r = 0.71.
MOUTH_RECT = (0.0, 0.21, 1.0, 1.0)
# The pasted-back area (then feathered): the side strips stay the template's own, so the seam falls
# inside the crop, not on its edge.
PASTE_RECT = (0.04, 0.21, 0.96, 1.0)


def jaw_width(lm: np.ndarray) -> float:
    return float(abs(lm[JAW_RIGHT, 0] - lm[JAW_LEFT, 0]))


def eye_width(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[EYE_OUTER[1], :2] - lm[EYE_OUTER[0], :2]))


def box_from_landmarks(lm: np.ndarray, jaw_per_eye: float | None = None) -> np.ndarray:
    """(x0, y0, x1, y1) float square box in frame pixels.

    Without `jaw_per_eye`: x from the left to the right jaw-line point (ANCHORS). With it (a per-video
    constant, see `jaw_per_eye_ratio`): the same width measured on the outer eye corners, centred between
    them. MediaPipe's jaw points follow the mouth opening (here jaw width vs opening r = 0.53), which would
    make the crop's scale, and so the visible nose, tell the network the mouth state; the eyes do not.
    (A box 1.3 x as wide, to put the jaw line well inside the paste mask, trained worse: held-out
    correlation 0.10 against 0.32 after 20 minutes.)
    """
    y0 = float(lm[NOSE_BRIDGE, 1])
    if jaw_per_eye is None:
        x0 = float(min(lm[JAW_LEFT, 0], lm[JAW_RIGHT, 0]))
        x1 = float(max(lm[JAW_LEFT, 0], lm[JAW_RIGHT, 0]))
    else:
        w = jaw_per_eye * eye_width(lm)
        cx = float(lm[list(EYE_OUTER), 0].mean())
        x0, x1 = cx - w / 2.0, cx + w / 2.0
    return np.array([x0, y0, x1, y0 + (x1 - x0)], np.float32)


def jaw_per_eye_ratio(landmarks: np.ndarray) -> float:
    """Median jaw width / outer-eye-corner distance over a video's frames (a constant of the face)."""
    return float(np.median([jaw_width(lm) / max(eye_width(lm), 1e-6) for lm in landmarks]))


def smooth_boxes(boxes: np.ndarray, radius: int = 2) -> np.ndarray:
    """Centred moving average over time: steadier crops, less flicker at the paste-back seam."""
    if len(boxes) <= 1 or radius <= 0:
        return boxes.copy()
    k = 2 * radius + 1
    padded = np.concatenate([np.repeat(boxes[:1], radius, 0), boxes, np.repeat(boxes[-1:], radius, 0)])
    kernel = np.ones(k, np.float32) / k
    return np.stack([np.convolve(padded[:, j], kernel, mode="valid") for j in range(4)], axis=1).astype(np.float32)


def crop_box(frame: np.ndarray, box: np.ndarray, crop_size: int) -> np.ndarray:
    """The box resized to crop_size x crop_size (edges replicated where the box leaves the frame)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    k = crop_size / max(x1 - x0, 1e-6)
    m = np.array([[k, 0, -k * x0], [0, k, -k * y0]], np.float32)
    return cv2.warpAffine(frame, m, (crop_size, crop_size), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def _rect_mask(size: int, rect: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = (int(round(v * size)) for v in rect)
    m = np.zeros((size, size), np.float32)
    m[y0:y1, x0:x1] = 1.0
    return m


def mouth_mask(size: int) -> np.ndarray:
    """Binary (size x size) mask of the blacked-out mouth area of the inner crop (1 = masked)."""
    return _rect_mask(size, MOUTH_RECT)


def masked_input(inner: np.ndarray) -> np.ndarray:
    out = inner.copy()
    out[mouth_mask(inner.shape[0]) > 0] = 0
    return out


def network_input(reference: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """[6, S, S] float32 = concat(reference, masked) / 255, RGB, from BGR uint8 inner crops."""
    ref = cv2.cvtColor(reference, cv2.COLOR_BGR2RGB)
    msk = cv2.cvtColor(masked_input(inner), cv2.COLOR_BGR2RGB)
    return np.concatenate([ref, msk], axis=2).transpose(2, 0, 1).astype(np.float32) / 255.0


def network_output_to_bgr(out: np.ndarray) -> np.ndarray:
    """[3, S, S] in [0, 1] RGB -> S x S x 3 uint8 BGR."""
    img = np.clip(np.rint(out.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)


def paste_mask(crop_size: int, feather_px: int) -> np.ndarray:
    """Feathered mask over the full crop: the paste rectangle, blurred; exactly 0 beyond the feather."""
    inner = crop_size - 2 * BORDER
    m: np.ndarray = np.zeros((crop_size, crop_size), np.float32)
    m[BORDER : BORDER + inner, BORDER : BORDER + inner] = _rect_mask(inner, PASTE_RECT)
    if feather_px > 0:
        k = 2 * feather_px + 1
        m = cv2.blur(m, (k, k))  # box blur: a linear ramp of width k, exactly 0 past it
        m = cv2.blur(m, (k, k))
    return np.clip(m, 0.0, 1.0)


def paste_crop(frame: np.ndarray, box: np.ndarray, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Blend `crop` (crop space) into the box of `frame` through `mask` (crop space)."""
    h, w = frame.shape[:2]
    cs = crop.shape[0]
    x0, y0, x1, y1 = (float(v) for v in box)
    k = (x1 - x0) / cs
    # Only the box's pixels can change: warp into that region of interest, not the whole frame.
    xa, ya = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    xb, yb = min(w, int(np.ceil(x1)) + 1), min(h, int(np.ceil(y1)) + 1)
    out = frame.copy()
    if xb <= xa or yb <= ya:
        return out
    m = np.array([[k, 0, x0 - xa], [0, k, y0 - ya]], np.float32)  # crop -> region of interest
    size = (xb - xa, yb - ya)
    back = cv2.warpAffine(crop, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0.0,))[..., None]
    region = frame[ya:yb, xa:xb].astype(np.float32)
    out[ya:yb, xa:xb] = np.clip(np.rint(region + alpha * (back.astype(np.float32) - region)), 0, 255).astype(np.uint8)
    return out
