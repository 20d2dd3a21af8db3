"""Face tracking: MediaPipe landmarks on real images, re-acquisition, One-Euro smoothing, neutral face, pose signs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from src.capture import FaceMotionExtractor, FaceTracker, OneEuroFilter, open_capture
from src.core.config import TrackingConfig
from src.core.face_mesh import interocular, measure, rotation_to_euler
from src.pipeline import LandmarkStage
from tests.support.media import rotate_image

FPS = 30.0
HEAD = (220, 130)  # roughly the head centre in the 512 px portrait


@pytest.fixture(scope="module")
def tracker_static():
    with FaceTracker(static_image_mode=True) as t:
        yield t


def _motion_series(frames: list[np.ndarray], cfg: TrackingConfig | None = None, t0: float = 0.0):
    """Track frames as a 30 fps video; return (faces, motions) per frame."""
    with FaceTracker(cfg) as tracker:
        ext = FaceMotionExtractor(cfg)
        faces, motions = [], []
        for i, img in enumerate(frames):
            found = tracker.process(img)
            face = found[0] if found else None
            faces.append(face)
            motions.append(ext.update(face, t0 + i / FPS))
    return faces, motions, ext


def test_478_landmarks_on_the_portrait(tracker_static: FaceTracker, portrait_bgr: np.ndarray) -> None:
    faces = tracker_static.process(portrait_bgr)
    assert len(faces) == 1
    f = faces[0]
    assert f.landmarks.shape == (478, 3) and f.landmarks.dtype == np.float32
    assert f.frame_size == (512, 512)
    x0, y0, x1, y1 = f.bbox
    # The face is in the upper middle of the picture, about 100 px wide.
    assert 140 < x0 < x1 < 300 and 40 < y0 < y1 < 220
    assert 70 < f.width_px < 160
    assert np.all(f.landmarks[:, 0] >= x0 - 1e-3) and np.all(f.landmarks[:, 0] <= x1 + 1e-3)
    iod = interocular(f.landmarks)
    assert 30 < iod < 70
    # Nose tip between the eyes horizontally, below them; chin below the mouth.
    lm = f.landmarks
    assert lm[33, 0] < lm[1, 0] < lm[263, 0] and lm[1, 1] > lm[33, 1]
    assert lm[152, 1] > lm[14, 1] > lm[1, 1]


def test_no_face_in_test_pattern(tracker_static: FaceTracker, noface_image: Path) -> None:
    assert tracker_static.process(cv2.imread(str(noface_image))) == []


def test_two_faces_come_back_largest_first(tracker_static: FaceTracker, two_faces_image: Path) -> None:
    faces = tracker_static.process(cv2.imread(str(two_faces_image)))
    assert len(faces) == 2
    assert faces[0].width_px > faces[1].width_px
    assert faces[0].bbox[0] < 300 <= faces[1].bbox[0]  # the big head is on the left


def test_reacquires_a_lost_face(make_config, face_blank_face_video: Path) -> None:
    """Face, then 20 blank frames, then the face again: tracking resumes (through the real landmark stage)."""
    cfg = make_config()
    src = open_capture(str(face_blank_face_video), cfg, realtime=False)
    stage = LandmarkStage(cfg, with_motion=True)
    tracked = []
    try:
        while (f := src.read()) is not None:
            tracked.extend(stage.process([f], clock=lambda fr: fr.media_time_s))
    finally:
        stage.close()
        src.close()
    assert len(tracked) == 50
    present = [tf.face is not None for tf in tracked]
    assert all(present[:15])
    assert not any(present[15:35])
    assert sum(present[35:]) >= 13, present[35:]  # re-acquired within a couple of frames
    assert all(tf.motion is None for tf in tracked[15:35])
    # The face was gone for 1.3 s (> lost_after_ms): the returning face gets a fresh neutral,
    # so its -10 degree tilt reads as no rotation, not as a tilt relative to the first neutral.
    last = tracked[-1].motion
    assert last is not None
    assert abs(rotation_to_euler(last.rotation)[2]) < 3.0


def test_one_euro_filter_smooths_noise_and_follows_a_step() -> None:
    cfg = TrackingConfig().smoothing
    f = OneEuroFilter(cfg.min_cutoff_hz, cfg.beta, cfg.d_cutoff_hz)
    rng = np.random.default_rng(0)
    raw = 1.0 + rng.normal(0, 0.01, (90, 4))
    out = np.array([f(x, i / FPS) for i, x in enumerate(raw)])
    assert np.abs(np.diff(out[10:], axis=0)).mean() < 0.5 * np.abs(np.diff(raw[10:], axis=0)).mean()
    # A real move (a step of 0.5 IOD) is followed, not smoothed away: most of it within 0.2 s.
    step = [f(np.full(4, 1.5), 3.0 + i / FPS) for i in range(1, 31)]
    assert np.all(step[6] > 1.35) and np.all(np.abs(step[-1] - 1.5) < 0.02)
    # Time not moving forward returns the last value.
    assert np.array_equal(f(np.zeros(4), 3.0 + 30 / FPS), step[-1])


def test_smoothing_reduces_landmark_jitter_on_a_noisy_still(portrait_bgr: np.ndarray) -> None:
    """A still image with fresh noise every frame: the smoothed motion jitters much less than raw."""
    img = cv2.resize(portrait_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(1)
    frames = [np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8) for _ in range(40)]
    on = TrackingConfig()
    off = TrackingConfig(smoothing={"enabled": False})
    _, m_on, _ = _motion_series(frames, on)
    _, m_off, _ = _motion_series(frames, off)
    assert all(m is not None for m in m_on + m_off)

    def jitter(ms: list) -> float:
        expr = np.array([m.expression for m in ms[on.neutral_frames + 2 :]])
        return float(np.abs(np.diff(expr, axis=0)).mean())

    j_on, j_off = jitter(m_on), jitter(m_off)
    print(f"expression jitter per frame: smoothed {j_on:.5f} vs raw {j_off:.5f} IOD")
    assert j_on < 0.5 * j_off


def test_neutral_from_first_frames_then_reset(portrait_bgr: np.ndarray) -> None:
    cfg = TrackingConfig()
    tilted = rotate_image(portrait_bgr, 10.0, HEAD)
    with FaceTracker(cfg) as tracker:
        ext = FaceMotionExtractor(cfg)
        t = 0.0
        for _ in range(cfg.neutral_frames):
            assert not ext.has_neutral
            m = ext.update(tracker.process(portrait_bgr)[0], t)
            t += 1 / FPS
        assert ext.has_neutral
        assert m is not None and m.face_present
        assert abs(rotation_to_euler(m.rotation)[2]) < 1.0
        assert np.abs(m.expression).max() < 0.05
        assert m.eye_open[0] == pytest.approx(1.0, abs=0.1)
        for _ in range(15):
            m = ext.update(tracker.process(tilted)[0], t)
            t += 1 / FPS
        roll_before_reset = rotation_to_euler(m.rotation)[2]
        assert abs(roll_before_reset) > 7.0  # tilted relative to the neutral
        neutral_before = ext.neutral.copy()
        ext.reset_neutral()
        for _ in range(cfg.neutral_frames + 5):
            m = ext.update(tracker.process(tilted)[0], t)
            t += 1 / FPS
        assert ext.has_neutral
        assert abs(rotation_to_euler(m.rotation)[2]) < 1.5  # the tilt is the new neutral
        assert not np.allclose(ext.neutral, neutral_before)


@pytest.mark.parametrize("angle", [10.0, -10.0])
def test_roll_sign_follows_the_image_rotation(portrait_bgr: np.ndarray, angle: float) -> None:
    """cv2 rotates counter-clockwise for positive angles; in image coordinates (y down) that is a negative roll."""
    frames = [portrait_bgr] * 10 + [rotate_image(portrait_bgr, angle, HEAD)] * 12
    faces, motions, _ = _motion_series(frames)
    yaw, pitch, roll = rotation_to_euler(motions[-1].rotation)
    assert np.sign(roll) == -np.sign(angle)
    assert abs(roll) == pytest.approx(10.0, abs=2.5)
    assert abs(yaw) < 3 and abs(pitch) < 3
    # The absolute measure agrees: the same change of roll between the frames.
    d_roll = measure(faces[-1].landmarks).roll - measure(faces[0].landmarks).roll
    assert d_roll == pytest.approx(roll, abs=2.5)


def test_translation_and_scale(portrait_bgr: np.ndarray) -> None:
    h, w = portrait_bgr.shape[:2]
    shifted = cv2.warpAffine(portrait_bgr, np.float32([[1, 0, 24], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    bigger = cv2.warpAffine(portrait_bgr, cv2.getRotationMatrix2D(HEAD, 0, 1.15), (w, h), borderMode=cv2.BORDER_REPLICATE)
    _, m_shift, ext = _motion_series([portrait_bgr] * 10 + [shifted] * 12)
    iod = interocular(ext.neutral)
    assert m_shift[-1].translation[0] == pytest.approx(24 / iod, rel=0.25)
    assert abs(m_shift[-1].translation[1]) < 0.1
    _, m_big, _ = _motion_series([portrait_bgr] * 10 + [bigger] * 12)
    assert m_big[-1].scale == pytest.approx(1.15, abs=0.05)


def test_lost_face_returns_none_and_clears_after_timeout(portrait_bgr: np.ndarray) -> None:
    cfg = TrackingConfig()
    with FaceTracker(cfg) as tracker:
        ext = FaceMotionExtractor(cfg)
        face = tracker.process(portrait_bgr)[0]
        for i in range(10):
            ext.update(face, i / FPS)
        assert ext.has_neutral
        assert ext.update(None, 10 / FPS) is None
        assert ext.has_neutral  # a short gap keeps the neutral
        assert ext.update(None, 10 / FPS + cfg.lost_after_ms / 1000 + 0.1) is None
        assert not ext.has_neutral  # gone longer than lost_after_ms: the next face starts fresh


def test_landmark_conversion_reads_the_serialised_list_and_falls_back_for_other_layouts() -> None:
    from mediapipe.framework.formats import landmark_pb2

    from src.capture.face_tracker import landmarks_to_array

    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, (478, 3)).astype(np.float32)
    plain = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in pts:
        plain.landmark.add(x=float(x), y=float(y), z=float(z))
    np.testing.assert_array_equal(landmarks_to_array(plain), pts)  # the fast path
    with_visibility = landmark_pb2.NormalizedLandmarkList()
    for x, y, z in pts:
        with_visibility.landmark.add(x=float(x), y=float(y), z=float(z), visibility=0.5)
    np.testing.assert_array_equal(landmarks_to_array(with_visibility), pts)  # another layout: the loop
    zero_x = landmark_pb2.NormalizedLandmarkList()
    zero_x.landmark.add(x=0.0, y=0.25, z=-0.5)  # proto3 omits zero fields: shorter records must not be misread
    np.testing.assert_array_equal(landmarks_to_array(zero_x), np.array([[0.0, 0.25, -0.5]], np.float32))
