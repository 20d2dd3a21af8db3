"""Face landmarks from MediaPipe face mesh (478 points with iris), bundled in mediapipe 0.10.21."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.capture.quiet import quiet_stderr
from src.core.config import TrackingConfig
from src.core.frames import FaceObservation

os.environ.setdefault("GLOG_minloglevel", "2")  # keep MediaPipe's C++ logging quiet
log = logging.getLogger(__name__)
WARMUP_IMAGE = Path(__file__).resolve().parents[2] / "assets" / "portrait.png"


# A NormalizedLandmark with x, y, z set serialises to 17 bytes: the repeated field's tag and length
# (0x0a 0x0f), then three float fields (tags 0x0d, 0x15, 0x1d), each followed by 4 little-endian bytes.
_LANDMARK_RECORD = np.dtype([("tag", "u1"), ("len", "u1"), ("tx", "u1"), ("x", "<f4"), ("ty", "u1"), ("y", "<f4"),
                             ("tz", "u1"), ("z", "<f4")])


def landmarks_to_array(landmark_list: Any) -> np.ndarray:  # Any: mediapipe ships no types
    """(N, 3) float32 normalised landmarks from a MediaPipe NormalizedLandmarkList.

    Reading the serialised message with one NumPy view is ~10x faster than a Python loop over
    478 landmarks (0.6 ms a frame on the tracking thread); any other layout takes the loop.
    """
    buf = landmark_list.SerializeToString()
    n = len(landmark_list.landmark)
    if n and len(buf) == n * _LANDMARK_RECORD.itemsize:
        rec = np.frombuffer(buf, _LANDMARK_RECORD)
        if (rec["tag"] == 0x0A).all() and (rec["len"] == 15).all() and (rec["tx"] == 0x0D).all() and (rec["ty"] == 0x15).all() \
                and (rec["tz"] == 0x1D).all():
            return np.stack([rec["x"], rec["y"], rec["z"]], axis=1).astype(np.float32)
    return np.array([(p.x, p.y, p.z) for p in landmark_list.landmark], dtype=np.float32)


class FaceTracker:
    """Runs the face mesh on BGR frames; faces come back largest first.

    In video mode MediaPipe tracks from the previous frame's landmarks and runs
    the detector again whenever tracking confidence drops, so a face that leaves
    and comes back is re-acquired.
    """

    def __init__(self, cfg: TrackingConfig | None = None, static_image_mode: bool = False, max_faces: int | None = None) -> None:
        import mediapipe as mp  # heavy import, deferred

        from src.core.runtime.threads import configure

        configure()  # BLAS and OpenCV pools (colour conversion, the landmark maths) sized, not spinning
        cfg = cfg or TrackingConfig()
        with quiet_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=static_image_mode,
                max_num_faces=max_faces or cfg.max_faces,
                refine_landmarks=True,
                min_detection_confidence=cfg.min_detection_confidence,
                min_tracking_confidence=cfg.min_tracking_confidence,
            )
            self._warm_up(static_image_mode)
        self.frames = 0
        self.found = 0

    def _warm_up(self, static_image_mode: bool) -> None:
        """Run the graph once so every model is loaded (and its notices silenced) before real frames."""
        img = cv2.imread(str(WARMUP_IMAGE)) if WARMUP_IMAGE.is_file() else None
        if img is None:
            return
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        self._mesh.process(rgb)
        if not static_image_mode:
            # Leave no tracking state behind: a blank frame makes the graph drop the warm-up face.
            self._mesh.process(np.zeros_like(rgb))

    def process(self, image_bgr: np.ndarray) -> list[FaceObservation]:
        h, w = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        rgb.flags.writeable = False
        result = self._mesh.process(rgb)
        self.frames += 1
        faces: list[FaceObservation] = []
        for face in result.multi_face_landmarks or []:
            pts = landmarks_to_array(face)
            pts[:, 0] *= w
            pts[:, 1] *= h
            pts[:, 2] *= w
            x0, y0 = pts[:, 0].min(), pts[:, 1].min()
            x1, y1 = pts[:, 0].max(), pts[:, 1].max()
            faces.append(FaceObservation(landmarks=pts, frame_size=(w, h), bbox=(float(x0), float(y0), float(x1), float(y1))))
        faces.sort(key=lambda f: (f.bbox[2] - f.bbox[0]) * (f.bbox[3] - f.bbox[1]), reverse=True)
        if faces:
            self.found += 1
        return faces

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
