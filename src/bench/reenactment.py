"""Reenactment quality measured by re-detecting faces: does the output do what the driver did?

Plain functions, importable by scripts/benchmark.py and the tests:

    from src.bench.reenactment import landmarks_series, reenactment_metrics
    m = reenactment_metrics("driver.mp4", "output.mp4")
    # {"error_iod": ..., "mouth_corr": ..., "roll_corr": ..., "face_found": ..., ...}

or from a shell: `python -m src.bench.reenactment DRIVER.mp4 OUTPUT.mp4` (prints JSON).

Both videos go through MediaPipe face mesh (video mode, 478 landmarks). Per frame
with a face in both, the output's landmarks are aligned to the driver's by the
best 2-D similarity (scale, rotation, translation), and the mean point distance
is divided by the driver's inter-ocular distance (IOD). Mouth opening (inner-lip
gap / IOD) and head roll are compared as series by Pearson correlation.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from src.capture.face_tracker import FaceTracker
from src.core.face_mesh import N_MESH, interocular, measure, similarity_transform


def landmarks_series(video_path: str | Path) -> list[np.ndarray | None]:
    """The largest face's (478, 3) landmarks (pixels) in every frame of a video, or None where there is none."""
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open video {video_path}")
    series: list[np.ndarray | None] = []
    try:
        with FaceTracker(max_faces=1) as tracker:
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                faces = tracker.process(frame)
                series.append(faces[0].landmarks.copy() if faces else None)
    finally:
        cap.release()
    return series


def aligned_error_iod(output_lm: np.ndarray, driver_lm: np.ndarray) -> float:
    """Mean distance of the 468 mesh points after aligning the output to the driver (2-D similarity), in driver IODs."""
    src = output_lm[:N_MESH, :2].astype(np.float64)
    dst = driver_lm[:N_MESH, :2].astype(np.float64)
    s, r, t = similarity_transform(src, dst)
    aligned = (s * (r @ src.T)).T + t
    return float(np.linalg.norm(aligned - dst, axis=1).mean() / max(interocular(driver_lm), 1e-9))


def pearson(a: list[float] | np.ndarray, b: list[float] | np.ndarray) -> float:
    """Pearson correlation; NaN when either series is (nearly) constant or shorter than 3."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(x) < 3 or x.std() < 1e-9 or y.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def series_metrics(driver: list[np.ndarray | None], output: list[np.ndarray | None]) -> dict[str, float]:
    """The metrics from two landmark series (frame i of the output was driven by frame i of the driver)."""
    n = min(len(driver), len(output))
    both = [(d, o) for d, o in zip(driver[:n], output[:n], strict=True) if d is not None and o is not None]
    errors = [aligned_error_iod(o, d) for d, o in both]
    d_meas = [measure(d) for d, _ in both]
    o_meas = [measure(o) for _, o in both]
    return {
        "error_iod": float(np.mean(errors)) if errors else float("nan"),
        "mouth_corr": pearson([m.mouth_open for m in d_meas], [m.mouth_open for m in o_meas]),
        "roll_corr": pearson([m.roll for m in d_meas], [m.roll for m in o_meas]),
        "face_found": sum(lm is not None for lm in output) / len(output) if output else 0.0,
        "driver_face_found": sum(lm is not None for lm in driver) / len(driver) if driver else 0.0,
        "frames": n,
        "frames_compared": len(both),
        "driver_mouth_range": float(np.ptp([m.mouth_open for m in d_meas])) if d_meas else float("nan"),
        "driver_roll_range_deg": float(np.ptp([m.roll for m in d_meas])) if d_meas else float("nan"),
    }


def reenactment_metrics(driver_video: str | Path, output_video: str | Path) -> dict[str, float]:
    """error_iod (mean aligned landmark error / IOD), mouth_corr, roll_corr, face_found (fraction of output frames
    with a face), plus frames, frames_compared and the driver's mouth and roll ranges."""
    return series_metrics(landmarks_series(driver_video), landmarks_series(output_video))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m src.bench.reenactment DRIVER_VIDEO OUTPUT_VIDEO", file=sys.stderr)
        return 2
    m = reenactment_metrics(argv[0], argv[1])
    print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
