"""Eyelids filtered on their own (src/capture/lid_filter.py): a real blink of the shared clip survives the landmark
smoothing, and lids at rest are still smoothed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from src.capture.face_motion import FaceMotionExtractor
from src.capture.face_tracker import FaceTracker
from src.core.config import TrackingConfig
from src.core.frames import FaceObservation

FPS = 30.0
DEFAULT = TrackingConfig()
LIDS_OFF = TrackingConfig(smoothing={"lid_beta": DEFAULT.smoothing.beta})  # the lids filtered with the rest
RAW = TrackingConfig(smoothing={"enabled": False})


def _faces(frames: list[np.ndarray]) -> list[FaceObservation]:
    with FaceTracker(DEFAULT) as tracker:
        faces = [tracker.process(f)[0] for f in frames]
    return faces


def _eye_open(faces: list[FaceObservation], cfg: TrackingConfig) -> np.ndarray:
    """The extractor's mean eye opening per frame (1 = the driver's neutral)."""
    ext = FaceMotionExtractor(cfg)
    out = []
    for i, face in enumerate(faces):
        m = ext.update(face, i / FPS)
        assert m is not None
        out.append(float(np.mean(m.eye_open)))
    return np.array(out)


def test_a_real_blink_survives_the_smoothing(carphone: Path) -> None:
    cap = cv2.VideoCapture(str(carphone))
    frames = [cap.read()[1] for _ in range(56)]  # the clip's first blink closes the lids at frame 42
    cap.release()
    faces = _faces(frames)
    raw, on, off = (_eye_open(faces, c) for c in (RAW, DEFAULT, LIDS_OFF))
    window = slice(38, 48)
    print(f"\nblink: lids close to {raw[window].min():.2f} (raw), {on[window].min():.2f} (lid filter), "
          f"{off[window].min():.2f} (one filter for all)")
    assert raw[window].min() < 0.4, "the clip's blink is where this test expects it"
    assert off[window].min() > 0.6, "one filter for every landmark takes most of the blink away"
    assert on[window].min() < 0.45, "with the lid filter the blink survives"
    assert on[window].argmin() == raw[window].argmin()


def test_lids_at_rest_are_still_smoothed(portrait_bgr: np.ndarray) -> None:
    img = cv2.resize(portrait_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(3)
    frames = [np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8) for _ in range(40)]
    faces = _faces(frames)
    skip = DEFAULT.neutral_frames + 2
    raw, on = (np.abs(np.diff(_eye_open(faces, c)[skip:])).mean() for c in (RAW, DEFAULT))
    print(f"\nlid jitter per frame at rest: {on:.4f} (lid filter) vs {raw:.4f} (raw)")
    assert on < 0.6 * raw
