"""What touches the head but is neither head nor hair stays off the head layer: a held object, a raised shoulder
(src/animation/meshwarp/held.py). MediaPipe finds hands and shoulders in real photos; no photo here holds a cup
or raises a shoulder to the head, so the hand and the shoulder line are given as those models would mark them,
and everything else (segmentation, layers, warp) runs for real."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from src.animation import AnimationInput, create_animator
from src.animation.meshwarp import held
from src.animation.meshwarp.layers import build_layers, face_coords, head_region
from src.animation.meshwarp.segmentation import segment_person, shoulder_points
from src.core.face_mesh import CHIN, FACE_OVAL, euler_to_rotation, face_frame, interocular
from src.core.frames import MotionState
from tests.support.synthetic_person import wide_hair_person

NO_SHOULDERS = np.zeros((0, 2), np.float32)


@pytest.fixture(scope="module")
def anim512(make_config, portrait_path: Path):
    """The bundled portrait at 512 px: the mug and the hair are a few thousand pixels there."""
    a = create_animator("meshwarp", make_config(size=512))
    a.load_model()
    a.preprocess_source_image(str(portrait_path))
    return a


def _cup_scene(anim, colour: tuple[int, int, int] = (235, 235, 240)):
    """The bundled portrait with a hand beside the jaw holding a mug that reaches up beside the cheek."""
    img = anim.source.avatar.image.copy()
    lm = anim.source.avatar.landmarks
    c = lm[FACE_OVAL, :2].mean(axis=0)
    iod = interocular(lm)
    hc, hr = (int(c[0] + 1.0 * iod), int(c[1] + 1.25 * iod)), int(0.4 * iod)
    cv2.circle(img, hc, hr, (120, 150, 200), -1)
    x0, x1 = hc[0] - int(0.25 * iod), hc[0] + int(0.45 * iod)
    y0, y1 = hc[1] - int(1.0 * iod), hc[1] - int(0.1 * iod)
    cv2.rectangle(img, (x0, y0), (x1, y1), colour, -1)
    for x in range(x0, x1, 8):  # stripes: a moved mug shows it, a flat colour would not
        cv2.rectangle(img, (x, y0), (min(x + 3, x1), y1), tuple(int(0.55 * k) for k in colour), -1)
    hand = np.zeros(img.shape[:2], np.float32)
    cv2.circle(hand, hc, hr, 1.0, -1)
    cup = np.zeros(img.shape[:2], bool)
    cup[y0:y1, x0:x1] = True
    # as a segmentation that takes the mug for part of the person would mark it
    person = np.maximum(segment_person(img), cup.astype(np.float32))
    region, _ = head_region(lm, img.shape[:2])
    # the mug's part in the head region, off the face's core (which always moves with the head)
    k = max(int(round(2 * held.FACE_CORE_IOD * iod)) | 1, 3)
    core = cv2.erode(held.face_zone(lm, img.shape[:2], 0.0).astype(np.uint8),
                     cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    # not in the neck column (never an object) ...
    u, v, _ = face_coords(lm, img.shape[:2])
    origin, axes = face_frame(lm.astype(np.float64))
    neck = held.neck_column(u, v, float(((lm[CHIN] - origin) @ axes)[1] / iod))
    # ... and away from every edge (the mug's, the head region's, the core's), where the layers are feathered
    inside = cv2.erode((cup & region & ~core & ~neck).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return img, lm, hand, person, cup, inside, iod


def test_a_held_mug_stays_with_the_hand_in_front(anim512) -> None:
    img, lm, hand, person, cup, in_head, iod = _cup_scene(anim512)
    assert in_head.sum() > 0.05 * iod**2  # the mug really reaches into the head region
    layers = build_layers(img, lm, person=person, hands=hand, shoulders=NO_SHOULDERS)
    assert (layers.front[in_head] > 0.99).mean() > 0.97 and (layers.head[in_head] < 0.01).mean() > 0.97
    # negative control: without the hand holding it, the same pixels ride with the head
    alone = build_layers(img, lm, person=person, hands=np.zeros_like(hand), shoulders=NO_SHOULDERS)
    assert alone.head[in_head].mean() > 0.9
    # the neck under the chin is never taken for an object, however close to the hand
    u, v, _ = face_coords(lm, img.shape[:2])
    neck = (np.abs(u) < 0.5) & (v > 2.0) & (layers.person > 0.99) & (alone.head > 0.99)
    assert neck.sum() > 0.02 * iod**2 and layers.front[neck].max() < 0.01


def test_a_held_thing_coloured_like_the_hair_stays_with_the_head(anim512) -> None:
    """Colour is what tells an object from hair: painted in the hair's own colour, the 'mug' is hair."""
    lm = anim512.source.avatar.landmarks
    img0 = anim512.source.avatar.image
    u, v, _ = face_coords(lm, img0.shape[:2])
    region, _ = head_region(lm, img0.shape[:2])
    hair = (segment_person(img0) > 0.5) & region & (v < -0.6) & (np.abs(u) > 1.2)
    colour = tuple(int(x) for x in np.median(img0[hair], axis=0))
    img, lm, hand, person, _, in_head, _ = _cup_scene(anim512, colour)
    layers = build_layers(img, lm, person=person, hands=hand, shoulders=NO_SHOULDERS)
    assert layers.head[in_head].mean() > 0.9


def test_the_held_mug_does_not_move_when_the_head_rolls(make_config, anim512, tmp_path: Path, monkeypatch) -> None:
    import src.animation.meshwarp.layers as layers_mod

    img, _, hand, person, _, in_head, _ = _cup_scene(anim512)
    src = tmp_path / "mug.png"
    cv2.imwrite(str(src), img)
    monkeypatch.setattr(layers_mod, "segment_person", lambda image: person)
    roll = AnimationInput(motion=MotionState(rotation=euler_to_rotation(0, 0, 15)), capture_ts=0.0, index=0)
    outs = {}
    for name, hands in (("held", hand), ("no hand", np.zeros_like(hand))):
        monkeypatch.setattr(layers_mod, "hand_masks", lambda image, h=hands: h)
        a = create_animator("meshwarp", make_config(f"cache.dir={tmp_path / name}", size=512))
        a.load_model()
        a.preprocess_source_image(str(src))
        assert a.source.avatar.image.shape == img.shape  # the same crop: pixel masks still apply
        outs[name] = a.animate(roll).astype(int)
    still = np.abs(outs["held"][in_head] - img[in_head].astype(int)).max(axis=1)
    moved = np.abs(outs["no hand"][in_head] - img[in_head].astype(int)).max(axis=1)
    assert np.percentile(still, 95) <= 3  # (the layer's 8-bit alpha rounds by a level or two)
    assert np.percentile(moved, 50) > 30


def _wide_hair_person(anim):
    """A made-up person whose hair falls to the jaw, apart from the body below (its face painted skin-coloured)."""
    lm = anim.source.avatar.landmarks
    img, person, c, iod = wide_hair_person(anim.source.avatar.image, lm, -0.3, (0, 360))
    cv2.fillPoly(img, [np.round(lm[FACE_OVAL, :2]).astype(np.int32)], (150, 170, 210))
    return img, lm, cv2.GaussianBlur(person, (0, 0), 1.0), c, iod


def test_a_raised_shoulder_is_body_not_head(portrait_animator) -> None:
    img, lm, person, c, iod = _wide_hair_person(portrait_animator)
    # the image-left shoulder raised to the cheek: the line through both shoulders cuts the lower hair
    raised = np.array([[c[0] - 2.6 * iod, c[1] - 0.5 * iod], [c[0] + 2.6 * iod, c[1] + 2.6 * iod]], np.float32)
    flat = np.zeros_like(person)
    up = build_layers(img, lm, person=person, hands=flat, shoulders=raised)
    level = build_layers(img, lm, person=person, hands=flat, shoulders=NO_SHOULDERS)
    u, v, _ = face_coords(lm, img.shape[:2])
    below = held.below_shoulders(raised, lm, u, v, 0.0, iod) & (person > 0.99)
    below = cv2.erode(below.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    # the hair under the raised shoulder's line: head with the shoulders level (a negative control) ...
    hair = below & (level.head > 0.99)
    assert hair.sum() > 0.1 * iod**2
    # ... and body, still, with the shoulder raised
    assert up.head[hair].max() < 0.01 and up.still[hair].min() > 0.99
    # the face and the hair above the line stay head
    assert up.head[int(c[1]), int(c[0])] > 0.99
    top = (person > 0.99) & (v < -1.0)
    assert up.head[top].mean() > 0.95


def test_pose_finds_the_bundled_portraits_shoulders_below_the_head(portrait_animator) -> None:
    """The real Pose model on the bundled portrait: both shoulders, below the chin, one each side of the face."""
    img = portrait_animator.source.avatar.image
    lm = portrait_animator.source.avatar.landmarks
    pts = shoulder_points(img)
    assert pts is not None and pts.shape == (2, 2)
    c = lm[FACE_OVAL, :2].mean(axis=0)
    assert pts[0, 0] < c[0] < pts[1, 0]
    assert (pts[:, 1] > lm[FACE_OVAL, 1].max()).all()


def test_implausible_shoulders_change_nothing(portrait_animator) -> None:
    """A misdetection (shoulders above the eyes, or both on one side of the face) leaves the head region alone."""
    img, lm, person, c, iod = _wide_hair_person(portrait_animator)
    flat = np.zeros_like(person)
    level = build_layers(img, lm, person=person, hands=flat, shoulders=NO_SHOULDERS)
    above_eyes = np.array([[c[0] - 2.6 * iod, c[1] - 1.5 * iod], [c[0] + 2.6 * iod, c[1] - 1.4 * iod]], np.float32)
    one_side = np.array([[c[0] + 1.2 * iod, c[1] + 0.8 * iod], [c[0] + 3.0 * iod, c[1] + 2.6 * iod]], np.float32)
    for bad in (above_eyes, one_side):
        assert not held.plausible_shoulders(bad, lm, iod)
        assert np.array_equal(build_layers(img, lm, person=person, hands=flat, shoulders=bad).head, level.head)
    raised = np.array([[c[0] - 2.6 * iod, c[1] - 0.5 * iod], [c[0] + 2.6 * iod, c[1] + 2.6 * iod]], np.float32)
    assert held.plausible_shoulders(raised, lm, iod)
