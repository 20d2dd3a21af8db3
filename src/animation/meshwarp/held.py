"""What touches the head but is neither head nor hair: an object a hand holds, a raised shoulder.

Both stay off the moving head layer (computed once per portrait, with the layers):

- **Held objects** (a cup, a microphone). No object model ships with mediapipe 0.10.21, so an object is
  told by where it is and what it looks like: person pixels inside the head region, joined to a hand
  (MediaPipe hands), within `REACH_IOD` of it, below the eyes, outside the face's core (its outline
  shrunk by `FACE_CORE_IOD`: a cup overlapping the cheek's edge is still a cup) and the neck column, and
  coloured neither like the hair (sampled above the brows) nor like the skin (sampled inside the face).
  They join the hand in the still front layer. What this cannot tell: an object coloured like the hair
  or the skin (a dark microphone against dark hair), and an object held in front of the face itself
  (the face's own pixels always move with the head).
- **Shoulders** (MediaPipe Pose): head-region pixels below the line through both shoulders, outside the
  neck column and the face, are body: a shoulder raised toward a tilted head stays with the torso.
"""

from __future__ import annotations

import cv2
import numpy as np

from src.core.face_mesh import FACE_OVAL, face_frame

REACH_IOD = 1.2  # how far from the hand a held object may reach into the head region
BELOW_EYES_V = 0.3  # held objects lie lower than this many IOD below the eyes: above it lies hair
HAIR_ABOVE_V = -0.4  # hair colours are sampled above this (IOD above the eyes), outside the face
FACE_GROW_IOD = 0.12  # the face outline grown by this: never shoulder; hair is sampled outside it
FACE_CORE_IOD = 0.25  # the face outline, shrunk by this, always moves with the head (eyes, nose, mouth, cheeks)
COLOUR_SIGMAS = 3.0  # a pixel within this many standard deviations (Lab) of the hair or the skin is one of them
MIN_SIGMA = (6.0, 4.0, 4.0)  # Lab floors: a flat-coloured sample still claims its near shades
MIN_SAMPLES = 50
NECK_COLUMN_IOD = 0.9  # |u| within this below the chin is neck: never shoulder
SHOULDER_BELOW_EYES_V = 0.0  # Pose's shoulders count only below the eye line (v, IOD) ...
SHOULDER_SPAN_IOD = 2.0  # ... and this far apart, one each side of the face


def face_zone(lm: np.ndarray, shape: tuple[int, int], grow_px: float) -> np.ndarray:
    """The face outline (bool image) grown by `grow_px` (0: the outline itself)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(lm[FACE_OVAL, :2] * 4).astype(np.int32)], (255,), cv2.LINE_8, shift=2)
    return _grown(mask > 0, grow_px)


def _grown(mask: np.ndarray, grow_px: float) -> np.ndarray:
    if grow_px <= 0:
        return mask
    r = max(int(round(grow_px)), 1)
    return cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0


def _like(lab: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Pixels whose Lab colour lies within COLOUR_SIGMAS of the sample's (per channel, floored); none for a
    sample too small to trust."""
    if sample.sum() < MIN_SAMPLES:
        return np.zeros(lab.shape[:2], bool)
    px = lab[sample]
    mean = px.mean(axis=0)
    sd = np.maximum(px.std(axis=0), MIN_SIGMA)
    return np.all(np.abs(lab - mean) <= COLOUR_SIGMAS * sd, axis=2)


def held_objects(image: np.ndarray, lm: np.ndarray, person: np.ndarray, region: np.ndarray, hands: np.ndarray,
                 u: np.ndarray, v: np.ndarray, chin_v: float, iod: float) -> np.ndarray:
    """Soft mask (float32) of what the hands hold inside the head region (see the module text). The neck
    column under the chin is never taken: it bends with the head."""
    shape = (person.shape[0], person.shape[1])
    hand = hands > 0.5
    if not hand.any():
        return np.zeros(shape, np.float32)
    solid = person > 0.5
    outline = face_zone(lm, shape, 0.0)
    face = _grown(outline, FACE_GROW_IOD * iod)
    k = max(int(round(2 * FACE_CORE_IOD * iod)) | 1, 3)
    core = cv2.erode(outline.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    reach = cv2.distanceTransform((~hand).astype(np.uint8), cv2.DIST_L2, 5) <= REACH_IOD * iod
    cand = solid & region & ~core & ~hand & reach & (v > BELOW_EYES_V) & ~neck_column(u, v, chin_v)
    if not cand.any():
        return np.zeros(shape, np.float32)
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    hair = solid & region & ~face & (v < HAIR_ABOVE_V)
    k = max(int(0.3 * iod), 3)
    inner = cv2.erode(face.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    skin = inner & (v > 0.2) & (v < 1.0)  # cheeks and nose: under the eyes, above the mouth's corners
    cand &= ~_like(lab, hair) & ~_like(lab, skin)
    # Specks of chance colour are not an object: open, then keep what touches the hand.
    cand = cv2.morphologyEx(cand.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    _, labels = cv2.connectedComponents((cand | hand).astype(np.uint8), connectivity=8)
    joined = np.unique(labels[hand])
    held = cand & np.isin(labels, joined[joined > 0])
    if not held.any():
        return np.zeros(shape, np.float32)
    return cv2.GaussianBlur(held.astype(np.float32), (0, 0), 1.0)


def below_shoulders(shoulders: np.ndarray | None, lm: np.ndarray, u: np.ndarray, v: np.ndarray, chin_v: float,
                    iod: float) -> np.ndarray:
    """Pixels (bool) on the body's side of the line through both shoulders, outside the neck column and the
    face: they belong to the torso, whatever the head region says."""
    shape = (u.shape[0], u.shape[1])
    if shoulders is None or len(shoulders) < 2 or not plausible_shoulders(shoulders, lm, iod):
        return np.zeros(shape, bool)
    (x0, y0), (x1, y1) = shoulders[0], shoulders[1]
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    # The line's normal that points down the image: the body's side.
    nx, ny = -(y1 - y0), x1 - x0
    if ny < 0:
        nx, ny = -nx, -ny
    below = (xs - x0) * nx + (ys - y0) * ny > 0
    return below & ~neck_column(u, v, chin_v) & ~face_zone(lm, shape, FACE_GROW_IOD * iod)


def plausible_shoulders(shoulders: np.ndarray, lm: np.ndarray, iod: float) -> bool:
    """Whether Pose's shoulders can be this face's: below the eyes, one each side of the face, at least
    SHOULDER_SPAN_IOD apart. A misdetection (shoulders at eye level, both on one side) changes nothing."""
    origin, axes = face_frame(lm.astype(np.float64))
    ex = axes[:2, 0] / (np.linalg.norm(axes[:2, 0]) + 1e-9)
    ey = axes[:2, 1] / (np.linalg.norm(axes[:2, 1]) + 1e-9)
    d = np.asarray(shoulders, np.float64)[:, :2] - origin[:2]
    su, sv = d @ ex / iod, d @ ey / iod
    return bool((sv > SHOULDER_BELOW_EYES_V).all() and su.min() < 0 < su.max() and su.max() - su.min() >= SHOULDER_SPAN_IOD)


def neck_column(u: np.ndarray, v: np.ndarray, chin_v: float) -> np.ndarray:
    """The neck column: under the jaw, as wide as NECK_COLUMN_IOD each side."""
    return (np.abs(u) <= NECK_COLUMN_IOD) & (v > chin_v - 0.5)
