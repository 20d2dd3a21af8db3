"""Who is in the portrait: a person mask (MediaPipe selfie segmentation), hand masks (MediaPipe hands) and the
shoulders (MediaPipe Pose).

The models ship inside mediapipe 0.10.21 (Pose: its full model, `model_complexity=1`); nothing is downloaded. Run once per
portrait by `src.animation.meshwarp.layers`, whose results are cached with the avatar.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from src.capture.quiet import quiet_stderr

log = logging.getLogger(__name__)


def segment_person(image: np.ndarray) -> np.ndarray:
    """Soft person mask (H x W float32 in [0, 1]) of a BGR image, every person in it."""
    import mediapipe as mp

    with quiet_stderr(), mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        res = seg.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    mask = res.segmentation_mask
    if mask is None:
        return np.zeros(image.shape[:2], np.float32)
    return np.clip(np.asarray(mask, np.float32), 0.0, 1.0)


def keep_component_at(mask: np.ndarray, point: tuple[float, float], source: str = "portrait") -> tuple[np.ndarray, str | None]:
    """The soft mask restricted to the connected person region around `point` (the chosen face's centre).

    Returns (mask, note): the note says, once, when the segmentation found no person there or several
    separate regions (the one around the face is kept)."""
    hard = (mask > 0.5).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(hard, connectivity=8)
    h, w = mask.shape
    x = int(np.clip(point[0], 0, w - 1))
    y = int(np.clip(point[1], 0, h - 1))
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 0.002 * h * w]
    if not big:
        return np.zeros_like(mask), f"{source}: the segmentation finds no person; the head layer is the face region only"
    label = int(labels[y, x])
    if label == 0 or label not in big:  # the face centre fell in a gap: take the nearest region
        ys, xs = np.nonzero(np.isin(labels, big))
        k = int(np.argmin((xs - x) ** 2 + (ys - y) ** 2))
        label = int(labels[ys[k], xs[k]])
    note = None
    if len(big) > 1:
        note = f"{source}: the segmentation finds {len(big)} separate regions (people or objects); using the one around the chosen face"
    keep = (labels == label).astype(np.uint8)
    # Keep the soft edge: the region grown by a few pixels, times the soft mask.
    grown = cv2.dilate(keep, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
    return mask * grown.astype(np.float32), note


def hand_masks(image: np.ndarray, max_hands: int = 2) -> np.ndarray:
    """Soft mask (H x W float32) of the hands MediaPipe finds: each hand's landmark hull, grown by a
    fifth of the hand's size (fingers' flesh beyond the joints) and feathered."""
    import mediapipe as mp

    h, w = image.shape[:2]
    out: np.ndarray = np.zeros((h, w), np.uint8)
    with quiet_stderr(), mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=max_hands,
                                                  min_detection_confidence=0.5) as hands:
        res = hands.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    for hand in res.multi_hand_landmarks or []:
        pts = np.array([(p.x * w, p.y * h) for p in hand.landmark], np.float32)
        hull = cv2.convexHull(pts.astype(np.int32))
        cv2.fillConvexPoly(out, hull, (255,))
        size = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))
        r = max(int(0.2 * size), 2)
        out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    if not out.any():
        return np.zeros((h, w), np.float32)
    return cv2.GaussianBlur(out, (0, 0), 2.0).astype(np.float32) / 255.0


def shoulder_points(image: np.ndarray) -> np.ndarray | None:
    """Both shoulders (2 x 2 px, image-left first) from MediaPipe Pose's bundled full model, or None when
    either is not seen (visibility under a half)."""
    import mediapipe as mp

    h, w = image.shape[:2]
    with quiet_stderr(), mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False) as pose:
        res = pose.process(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if res.pose_landmarks is None:
        return None
    marks = [res.pose_landmarks.landmark[i] for i in (11, 12)]  # left and right shoulder
    if min(m.visibility for m in marks) < 0.5:
        return None
    pts = np.array([(m.x * w, m.y * h) for m in marks], np.float32)
    return pts[np.argsort(pts[:, 0])]
