"""How the meshwarp face looks: a contact sheet PNG and figures from an independent re-detection (`benchmark.py --look`).

The shared clip drives two sources: the bundled portrait (cross-identity) and the clip's own
first frame (self-reenactment). Per driver frame, as the live pipeline does: face mesh ->
motion relative to the driver's neutral -> the motion mixer -> the animator. The sheet shows
driver | portrait | self at the frames of largest yaw left and right, largest roll, widest
mouth and a blink (found on the driver's own landmarks), two expressions on demand, then one
row per background mode (at the largest-yaw frame; `transparent` over a checkerboard).

Figures come from a second, independent MediaPipe pass over the outputs (face mesh in video
mode and selfie segmentation), not from the animator's landmarks:
- faces_found: fraction of output frames with a face; also at the sheet's extreme frames;
- background_vs_plate_grey: mean |grey(output) - grey(plate)| outside the output's re-segmented
  person (dilated 7 px), per frame, averaged (issue bound <= 2);
- person_area_p5_over_median: 5th percentile of the re-segmented person area over its median
  (>= 0.98: no hair or head cut off). It also moves when the segmentation's verdict on the
  backdrop flips as a big head moves over it (the self source's car seat), and with pitch;
  inspect the frames behind a low value before blaming the layers;
- mouth_interior: over wide-open output frames (re-detected inner-lip gap in the top 15 % and
  > 0.12 IOD), the fraction of inner-lip pixels darker than luma 35 (<= 0.5) and brighter than 150
  (> 0: teeth);
- reenactment: error / mouth / roll correlation of the outputs against the driver (as
  scripts/reenactment_metrics.py), and the animator's own per-frame time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.animation import AnimationInput, MotionMixer, create_animator
from src.animation.meshwarp import MeshWarpAnimator
from src.bench.reenactment import series_metrics
from src.capture import FaceTracker
from src.capture.face_motion import FaceMotionExtractor
from src.core.config import AppConfig
from src.core.face_mesh import INNER_MOUTH_RING, measure
from src.core.runtime.metrics import percentiles

log = logging.getLogger("look")
TILE = 256
MODES = ("keep", "blur", "image", "color:#2E6FB0", "transparent")


def read_clip(path: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    if not frames:
        raise RuntimeError(f"cannot read {path}")
    return frames, fps


def make_animator(config: AppConfig, source: Path, background: str = "keep") -> MeshWarpAnimator:
    cfg = config.model_copy(deep=True)
    cfg.animation.background = background
    a = create_animator("meshwarp", cfg)
    a.load_model()
    a.preprocess_source_image(str(source))
    assert isinstance(a, MeshWarpAnimator)
    return a


def driven_motions(config: AppConfig, frames: list[np.ndarray], fps: float) -> tuple[list, list[np.ndarray | None]]:
    """Per frame: the mixed MotionState (what the pipeline's animate stage gets) and the driver's landmarks."""
    motions, lms = [], []
    extractor = FaceMotionExtractor(config.tracking)
    mixer = MotionMixer(config, 0.0)
    with FaceTracker(config.tracking) as tracker:
        for i, f in enumerate(frames):
            t = i / fps
            faces = tracker.process(f)
            face = faces[0] if faces else None
            lms.append(face.landmarks.copy() if face else None)
            motions.append(mixer.update(t, extractor.update(face, t)))
    return motions, lms


def pick_frames(lms: list[np.ndarray | None]) -> dict[str, int]:
    """The driver's extreme frames, from its own landmarks (yaw sign: MediaPipe's face frame)."""
    ok = [i for i, lm in enumerate(lms) if lm is not None]
    m = {i: measure(lm) for i, lm in enumerate(lms) if lm is not None}
    yaw0 = float(np.median([m[i].yaw for i in ok]))
    roll0 = float(np.median([m[i].roll for i in ok]))
    return {
        "yaw left": min(ok, key=lambda i: m[i].yaw - yaw0),
        "yaw right": max(ok, key=lambda i: m[i].yaw - yaw0),
        "largest roll": max(ok, key=lambda i: abs(m[i].roll - roll0)),
        "widest mouth": max(ok, key=lambda i: m[i].mouth_open),
        "blink": min(ok, key=lambda i: float(np.mean(m[i].eye_open))),
    }


def render_all(animator: MeshWarpAnimator, motions: list) -> tuple[list[np.ndarray], list[float]]:
    outs, times = [], []
    for i, motion in enumerate(motions):
        t0 = time.perf_counter()
        img = animator.animate(AnimationInput(motion=motion, capture_ts=i / 30.0, index=i))
        times.append((time.perf_counter() - t0) * 1000)
        outs.append(img)
    return outs, times


class Redetect:
    """Independent MediaPipe passes over output frames: face mesh (video mode) and selfie segmentation."""

    def __init__(self) -> None:
        import mediapipe as mp

        self.seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)

    def landmarks(self, frames: list[np.ndarray]) -> list[np.ndarray | None]:
        out: list[np.ndarray | None] = []
        with FaceTracker(max_faces=1) as tracker:
            for f in frames:
                faces = tracker.process(f[..., :3])
                out.append(faces[0].landmarks.copy() if faces else None)
        return out

    def person(self, frame: np.ndarray) -> np.ndarray:
        res = self.seg.process(cv2.cvtColor(np.ascontiguousarray(frame[..., :3]), cv2.COLOR_BGR2RGB))
        return np.asarray(res.segmentation_mask, np.float32)

    def close(self) -> None:
        self.seg.close()


def look_figures(outs: list[np.ndarray], plate: np.ndarray, driver_lms: list, picks: dict[str, int], red: Redetect) -> dict[str, Any]:
    out_lms = red.landmarks(outs)
    plate_g = cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY).astype(np.float32)
    bg_diff, areas = [], []
    for f in outs:
        mask = red.person(f) > 0.5
        areas.append(float(mask.mean()))
        outside = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) == 0
        if outside.any():
            g: np.ndarray = cv2.cvtColor(np.ascontiguousarray(f[..., :3]), cv2.COLOR_BGR2GRAY).astype(np.float32)
            bg_diff.append(float(np.abs(g - plate_g)[outside].mean()))
    gaps = [measure(lm).mouth_open if lm is not None else 0.0 for lm in out_lms]
    thresh = max(float(np.quantile(gaps, 0.85)), 0.12)
    dark, bright, n_open = [], [], 0
    for f, lm, gap in zip(outs, out_lms, gaps, strict=True):
        if lm is None or gap < thresh:
            continue
        n_open += 1
        m = np.zeros(f.shape[:2], np.uint8)
        cv2.fillPoly(m, [np.round(lm[INNER_MOUTH_RING, :2]).astype(np.int32)], (1,))
        g = cv2.cvtColor(np.ascontiguousarray(f[..., :3]), cv2.COLOR_BGR2GRAY)[m > 0]
        if g.size:
            dark.append(float((g < 35).mean()))
            bright.append(float((g > 150).mean()))
    reen = series_metrics(driver_lms, out_lms)
    return {
        "faces_found": sum(lm is not None for lm in out_lms) / len(out_lms),
        "faces_found_at_extremes": {k: out_lms[i] is not None for k, i in picks.items()},
        "background_vs_plate_grey": float(np.mean(bg_diff)) if bg_diff else None,
        "person_area_p5_over_median": float(np.percentile(areas, 5) / max(float(np.median(areas)), 1e-9)),
        "mouth_interior": {"wide_open_frames": n_open, "min_gap_iod": round(thresh, 3),
                           "dark_fraction_mean": float(np.mean(dark)) if dark else None,
                           "dark_fraction_max": float(np.max(dark)) if dark else None,
                           "bright_fraction_mean": float(np.mean(bright)) if bright else None},
        "reenactment": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in reen.items()},
    }


def _tile(img: np.ndarray, label: str = "") -> np.ndarray:
    if img.shape[2] == 4:  # transparent: over a checkerboard
        yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
        board = np.where(((yy // 16 + xx // 16) % 2)[..., None] == 0, 200, 120).astype(np.float32) * np.ones(3)
        a = img[..., 3:4].astype(np.float32) / 255.0
        img = (img[..., :3] * a + board * (1 - a)).astype(np.uint8)
    h, w = img.shape[:2]
    s = TILE / max(h, w)
    t = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    canvas = np.full((TILE, TILE, 3), 32, np.uint8)
    y0, x0 = (TILE - t.shape[0]) // 2, (TILE - t.shape[1]) // 2
    canvas[y0 : y0 + t.shape[0], x0 : x0 + t.shape[1]] = t
    if label:
        cv2.putText(canvas, label, (6, TILE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(canvas, label, (6, TILE - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def run_look(config: AppConfig, clip: Path, portrait: Path, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    frames, fps = read_clip(clip)
    first = work / "self_source.png"
    cv2.imwrite(str(first), frames[0])
    backdrop = work / "backdrop.png"  # a real photo for image mode: the clip's first frame (a car's interior)
    cv2.imwrite(str(backdrop), cv2.resize(frames[len(frames) // 2], (704, 576), interpolation=cv2.INTER_CUBIC))
    motions, driver_lms = driven_motions(config, frames, fps)
    picks = pick_frames(driver_lms)
    sources = {"portrait": portrait, "self": first}
    red = Redetect()
    report: dict[str, Any] = {"clip": str(clip), "frames": len(frames), "picked_frames": picks, "sources": {}}
    rows: list[list[np.ndarray]] = [[_tile(frames[i], f"driver {i}: {name}") for name, i in picks.items()]]
    cols: dict[str, list[np.ndarray]] = {}
    # The expressions go over an ordinary frame: eyes open, mouth not at its widest, near the clip's middle.
    meas = {i: measure(lm) for i, lm in enumerate(driver_lms) if lm is not None}
    eye_med = np.median([float(np.mean(m.eye_open)) for m in meas.values()])
    mouth_med = np.median([m.mouth_open for m in meas.values()])
    calm = [i for i, m in meas.items() if float(np.mean(m.eye_open)) >= eye_med and m.mouth_open <= mouth_med
            and i not in picks.values()]
    mid = min(calm, key=lambda i: abs(i - len(frames) // 2)) if calm else len(frames) // 2
    for key, src in sources.items():
        anim = make_animator(config, src)
        assert anim.source is not None  # make_animator prepared the portrait
        outs, times = render_all(anim, motions)
        figs = look_figures(outs, anim.compositor.layers.plate if anim.compositor else anim.source.avatar.image, driver_lms, picks, red)
        figs["animate_ms"] = percentiles(times[5:])
        report["sources"][key] = figs
        col = [_tile(outs[i], f"{key}: {name}") for name, i in picks.items()]
        for expr in ("smile", "surprise"):
            anim.set_expression(expr, 0.9, instant=True)
            col.append(_tile(anim.animate(AnimationInput(motion=motions[mid], capture_ts=0.0, index=mid)), f"{key}: {expr} 0.9"))
            anim.set_expression("none", 0.0, instant=True)
        for mode in MODES:
            spec = f"image:{backdrop}" if mode == "image" else mode
            a2 = make_animator(config, src, spec)
            i = picks["yaw right"]
            col.append(_tile(a2.animate(AnimationInput(motion=motions[i], capture_ts=0.0, index=i)), f"{key}: bg {mode}"))
        cols[key] = col
        log.info("look %s: %s", key, {k: v for k, v in figs.items() if k != "reenactment"})
    red.close()
    driver_col = rows[0] + [_tile(frames[mid], f"driver {mid} (+ expression)")] * 2
    driver_col += [_tile(frames[picks["yaw right"]], "driver (bg rows)")] * len(MODES)
    sheet = np.vstack([np.hstack([d, cols["portrait"][r], cols["self"][r]]) for r, d in enumerate(driver_col)])
    path = work / "look_sheet.png"
    cv2.imwrite(str(path), sheet)
    report["sheet"] = str(path)
    return report
