#!/usr/bin/env python
"""Measure FPS, latency, drops, memory and warp quality of the real pipeline on this machine.

    python scripts/benchmark.py [--driver VIDEO|webcam[:N]] [--duration S] [--frames N] [--json FILE] [--plot FILE]

Writes JSON with: fps (unpaced, end to end, null sink), landmark_only_fps,
stage_ms, latency_ms (paced), dropped, frames, rss_mb, warp_vs_skimage, and,
with --reenactment, the self-reenactment and cross-identity figures.
Default driver: the shared carphone clip scaled to 640x480 (made once under out/bench/).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GLOG_minloglevel", "2")

import cv2
import numpy as np
import psutil

from src.animation import AnimationInput, MeshWarpAnimator, PiecewiseAffineWarper
from src.capture import FaceTracker, open_capture
from src.core.config import PROJECT_ROOT, AppConfig, load_config
from src.core.face_mesh import euler_to_rotation
from src.core.frames import MotionState, MouthShape, RenderedFrame
from src.core.runtime.metrics import percentiles
from src.output import NullOutput, Output
from src.pipeline import LivePipeline, render

log = logging.getLogger("benchmark")
SHARED_CLIP = PROJECT_ROOT.parent / "shared" / "assets" / "driver_carphone.mp4"
BENCH_DIR = PROJECT_ROOT / "out" / "bench"


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def scaled_driver(src: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """The clip re-encoded at `size` (H.264 through PyAV), made once."""
    import av

    out = BENCH_DIR / f"{src.stem}_{size[0]}x{size[1]}.mp4"
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(out), "w") as dst:
        vin = inp.streams.video[0]
        stream = dst.add_stream("libx264", rate=vin.average_rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in inp.decode(vin):
            img: np.ndarray = cv2.resize(frame.to_ndarray(format="bgr24"), size, interpolation=cv2.INTER_CUBIC)
            for pkt in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                dst.mux(pkt)
        for pkt in stream.encode(None):
            dst.mux(pkt)
    return out


class LatencyRecorder(Output):
    """A sink that keeps every frame's capture-to-output latency (the null output, with a memory)."""

    name = "latency"
    realtime = False

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.arrivals: list[float] = []

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, frame: RenderedFrame) -> None:
        now = time.monotonic()
        self.latencies_ms.append((now - frame.capture_ts) * 1000.0)
        self.arrivals.append(now)


def make_animator(config: AppConfig, source: str) -> MeshWarpAnimator:
    animator = MeshWarpAnimator(config)
    animator.load_model()
    animator.preprocess_source_image(source)
    return animator


def measure_landmarks_only(driver: str, config: AppConfig, max_frames: int = 300) -> dict[str, Any]:
    """The face tracker alone on the driver's frames, decoded beforehand."""
    cap = open_capture(driver, config, realtime=False, loop=True)
    assert cap is not None
    frames: list[np.ndarray] = []
    while len(frames) < max_frames:
        f = cap.read()
        if f is None:
            break
        frames.append(f.image)
    cap.close()
    with FaceTracker(config.tracking) as tracker:
        for img in frames[:10]:  # warm up (first detection)
            tracker.process(img)
        t0 = time.perf_counter()
        for img in frames:
            tracker.process(img)
        wall = time.perf_counter() - t0
    return {"fps": round(len(frames) / wall, 1), "frames": len(frames), "ms_per_frame": round(1000 * wall / len(frames), 2)}


def measure_unpaced(driver: str, config: AppConfig, source: str, n_frames: int, batch: int) -> dict[str, Any]:
    """The whole pipeline (decode, track, animate, null sink) on every frame, as fast as possible."""
    animator = make_animator(config, source)
    cap = open_capture(driver, config, realtime=False, loop=True)
    sink = NullOutput()
    result = render(config, animator, [sink], capture=cap, n_frames=n_frames, batch_size=batch)
    stage_ms = {k.split(":")[0] if k.startswith("output") else k: v["ms"] for k, v in result.metrics.items()}
    return {"fps": round(result.frames / result.wall_s, 1), "frames": result.frames, "wall_s": round(result.wall_s, 2),
            "stage_ms": stage_ms}


def measure_paced(driver: str, config: AppConfig, source: str, duration_s: float, rss_probe: dict[str, float]) -> dict[str, Any]:
    """The live pipeline with the driver played in real time (its own fps, about 30), null sink."""
    animator = make_animator(config, source)
    cap = open_capture(driver, config, realtime=True, loop=True)
    rec = LatencyRecorder()
    pipe = LivePipeline(config, animator, [rec], capture=cap)
    t_start = time.monotonic()

    def probe() -> None:
        if "after_1min" not in rss_probe and time.monotonic() - t_start >= 60.0:
            rss_probe["after_1min"] = rss_mb()

    pipe.start()
    pipe.run(duration_s, on_tick=probe)
    snap = pipe.metrics.snapshot()
    lat = np.array(rec.latencies_ms[30:] or rec.latencies_ms)  # skip the first second (warm-up)
    captured = pipe.metrics.stage("capture").frames
    dropped = sum(m["dropped"] for m in snap.values())
    gaps = np.diff(rec.arrivals) if len(rec.arrivals) > 2 else np.array([0.0])
    return {
        "latency_ms": {**percentiles(lat, (50, 95)), "max": round(float(lat.max()), 2) if lat.size else None},
        "frames": len(rec.latencies_ms),
        "captured": captured,
        "dropped": int(dropped),
        "output_fps": round(len(rec.arrivals) / max(rec.arrivals[-1] - rec.arrivals[0], 1e-9), 2) if len(rec.arrivals) > 1 else 0.0,
        "max_gap_ms": round(float(gaps.max()) * 1000, 1),
        "stage_ms": {k: v["ms"] for k, v in snap.items()},
        "errors": int(sum(m["errors"] for m in snap.values())),
        "duration_s": duration_s,
        "_latencies": [round(x, 2) for x in rec.latencies_ms],
    }


def measure_warp(config: AppConfig, source: str) -> dict[str, Any]:
    """Our warp against scikit-image's PiecewiseAffineTransform + warp on the same image and mesh."""
    from scipy.spatial import Delaunay
    from skimage.transform import PiecewiseAffineTransform
    from skimage.transform import warp as sk_warp

    animator = make_animator(config, source)
    src = animator.source
    assert src is not None
    image = src.avatar.image
    points = src.mesh.points[:, :2]
    motion = MotionState(rotation=euler_to_rotation(5.0, 3.0, 4.0), mouth=MouthShape(open=0.06), eye_open=(0.8, 0.8),
                         translation=np.array([0.05, 0.02], np.float32))
    dst = animator.target_points(motion)[:, :2]
    # scikit-image triangulates the points it is given (Delaunay); use that same mesh for ours.
    tri = Delaunay(dst.astype(np.float64)).simplices
    same_topology = {tuple(sorted(t)) for t in tri} == {tuple(sorted(t)) for t in Delaunay(points.astype(np.float64)).simplices}
    size = image.shape[1], image.shape[0]
    ours = PiecewiseAffineWarper(points, tri, size, config.animation.meshwarp.map_scale)
    for _ in range(5):
        ours.warp(image, dst)
    times = []
    for _ in range(50):
        t0 = time.perf_counter()
        out = ours.warp(image, dst)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    tform = PiecewiseAffineTransform()
    tform.estimate(dst.astype(np.float64), points.astype(np.float64))
    ref = sk_warp(image.astype(np.float64) / 255.0, tform, order=1, mode="edge")
    sk_s = time.perf_counter() - t0
    ref8 = np.clip(ref * 255.0 + 0.5, 0, 255).astype(np.uint8)
    mse = float(np.mean((ref8.astype(np.float64) - out.astype(np.float64)) ** 2))
    psnr = 10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf")
    ours_ms = float(np.median(times)) * 1000
    return {"speedup": round(sk_s * 1000 / ours_ms, 1), "psnr_db": round(psnr, 2), "ours_ms": round(ours_ms, 3),
            "skimage_ms": round(sk_s * 1000, 1), "points": len(points), "triangles": len(tri), "same_topology": same_topology}


def measure_animate_only(config: AppConfig, source: str, n: int = 300) -> dict[str, Any]:
    """The meshwarp animator alone on a varied motion (no other thread running)."""
    animator = make_animator(config, source)
    times = []
    for i in range(n):
        t = i / 30.0
        m = MotionState(rotation=euler_to_rotation(8 * np.sin(t), 5 * np.sin(0.7 * t), 6 * np.sin(0.5 * t)),
                        mouth=MouthShape(open=max(0.0, 0.3 * np.sin(3 * t))), eye_open=(1.0 - 0.9 * (i % 60 < 6),) * 2)
        t0 = time.perf_counter()
        animator.animate(AnimationInput(motion=m, capture_ts=t, index=i))
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times[10:])


def measure_reenactment(config: AppConfig, clip: Path, work: Path) -> dict[str, Any]:
    """Self-reenactment (source = the clip's first frame) and cross-identity (bundled portrait) figures."""
    from src.bench.reenactment import reenactment_metrics

    work.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(clip))
    ok, first = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read {clip}")
    first_png = work / "self_source.png"
    cv2.imwrite(str(first_png), first)
    from src.output import FileOutput

    results: dict[str, Any] = {}
    for name, source in (("self", str(first_png)), ("cross", str(PROJECT_ROOT / "assets" / "portrait.png"))):
        out_path = work / f"reenact_{name}.mp4"
        animator = make_animator(config, source)
        render(config, animator, [FileOutput(str(out_path), config)], capture=open_capture(str(clip), config, realtime=False, loop=False))
        results[name] = reenactment_metrics(str(clip), str(out_path))
    return results


def render_talking(config: AppConfig, source: str, audio: Path, out_path: Path) -> dict[str, Any]:
    """What `render --source IMG --audio FILE --output OUT.mp4` does, timed: mouth shapes, frames, AAC."""
    from src.audio import file_mouth_track
    from src.output import FileOutput
    from src.output.audio_mux import AudioFileMux

    animator = make_animator(config, source)
    fps = config.pipeline.fps
    out = FileOutput(str(out_path), config)
    t0 = time.perf_counter()
    track = file_mouth_track(audio, fps, config)
    t_track = time.perf_counter() - t0
    out.audio = AudioFileMux(audio, max_duration_s=track.n_frames / fps)
    result = render(config, animator, [out], n_frames=track.n_frames, fps=fps, mouth_track=track.shapes)
    wall = time.perf_counter() - t0
    return {"render_speed_x": round(track.duration_s / wall, 2), "audio_s": round(track.duration_s, 2), "wall_s": round(wall, 2),
            "mouth_track_s": round(t_track, 2), "frames_s": round(result.wall_s, 2), "method": track.method,
            "output_size_px": config.animation.output_size_px}


def measure_render_speed(config: AppConfig, source: str, audio: str | None, seconds: float = 60.0) -> dict[str, Any]:
    """`render --audio`: portrait + speech -> talking mp4 with AAC, timed end to end (phones, animation, encoding)."""
    import tempfile

    from src.bench.audio import long_speech

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(audio) if audio else long_speech(Path(tmp), seconds)[0]
        return render_talking(config, source, path, Path(tmp) / "talk.mp4")


def mp4_mouth_opening(path: Path) -> tuple[np.ndarray, float]:
    """Per-frame inner-lip opening (inter-ocular units) re-detected by MediaPipe in a written video, and its fps."""
    import av

    from src.bench.reenactment import landmarks_series
    from src.core.face_mesh import measure

    with av.open(str(path)) as c:
        rate = c.streams.video[0].average_rate
        assert rate is not None, f"{path}: no frame rate"  # the video we wrote ourselves
        fps = float(rate)
    series = landmarks_series(path)
    opening = np.array([measure(lm).mouth_open if lm is not None else np.nan for lm in series])
    return opening, fps


def measure_lipsync(config: AppConfig, source: str, languages: list[str] | None = None) -> dict[str, Any]:
    """Render speech with pauses (clean, and under -40 dBFS noise), silence and -40 dBFS noise alone to mp4
    through the render path, re-detect the mouth in the mp4 as written, and compare with the speech."""
    import tempfile

    from src.bench.audio import PHRASES, SR, lip_sync_timing, make_speech_with_pauses, truth_regions, write_wav

    out: dict[str, Any] = {"note": "idle sway and breathing off: head motion moves MediaPipe's re-detected lip gap by "
                                   "several percent of the speaking range, which would swamp the timing being measured"}
    config = config.model_copy(deep=True)
    config.idle.sway_deg = 0.0
    config.idle.breath_amplitude = 0.0
    config.idle.seed = 0  # blinks at the same times in every run: they nudge the re-detected lips near the threshold
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        ranges, rests = [], []
        for name, noise in (("speech", None), ("speech_noise40", -40.0)):
            wav, clean, _ = make_speech_with_pauses(d, phrases=PHRASES, noise_dbfs=noise, name=f"{name}.wav")
            mp4 = d / f"{name}.mp4"
            render_talking(config, source, wav, mp4)
            opening, fps = mp4_mouth_opening(mp4)
            # The mouth at rest: the frames before the first word (the portrait may smile open; pressed lips
            # for P/B/M close it further, so a low percentile would not be "rest").
            regions = truth_regions(clean)
            lead = opening[: max(1, int((regions[0][0] - 0.15) * fps))]
            rest = float(np.nanmedian(lead))
            rests.append(rest)
            # A mouth movement away from rest, either way: a word may start with pressed lips (P, B, M).
            o = np.abs(np.nan_to_num(opening - rest, nan=0.0))
            # lip_sync_timing reads frame k at k / fps; a frame is shown from k / fps to (k + 1) / fps.
            r = lip_sync_timing(o, fps, regions, len(clean) / SR)
            ranges.append(r["range"])
            out[name] = {k: r[k] for k in ("onset_abs_median_ms", "onset_errors_ms", "close_max_ms", "silence_max_frac")}
            out[name]["faces_found"] = float(np.mean(~np.isnan(opening)))
        speech_range = float(np.mean(ranges))
        rng = np.random.default_rng(0)
        for name, signal in (("silence", np.zeros(5 * SR, np.float32)),
                             ("noise40", (rng.standard_normal(5 * SR) * 10 ** (-40 / 20)).astype(np.float32))):
            wav = write_wav(d / f"{name}.wav", signal)
            mp4 = d / f"{name}.mp4"
            render_talking(config, source, wav, mp4)
            opening, _ = mp4_mouth_opening(mp4)
            # Departure from the resting mouth seen in the speech renders, as a share of the speaking range.
            dev = float(np.nanmax(np.abs(opening - float(np.mean(rests)))))
            out[name] = {"max_opening_frac_of_speech_range": round(dev / speech_range, 3)}
    out["speech_range_iod"] = round(speech_range, 3)
    # Other languages (src/bench/languages.py): on a portrait whose mouth rests closed, made from the shared clip
    if SHARED_CLIP.is_file():
        from src.bench.languages import measure_language_figures

        out["languages"] = measure_language_figures(config, SHARED_CLIP, render_talking, mp4_mouth_opening, languages,
                                                    BENCH_DIR / "languages")
    else:
        out["languages"] = {"skipped": f"{SHARED_CLIP} absent: the closed-mouth portrait is made from it"}
    return out


def measure_mic_latency(config: AppConfig, source: str, n_onsets: int = 20) -> dict[str, Any]:
    """Speech onset at the real microphone capture callback (PulseAudio virtual mic) -> first OUTPUT frame
    of the live pipeline whose mouth opening shows it."""
    from src.bench.audio import measure_audio_latency

    animator = make_animator(config, source)
    threshold = 0.1 * config.audio.mouth.max_open

    class MouthWatch(Output):
        name = "mouth-watch"
        realtime = True

        def __init__(self) -> None:
            self.opens: list[float] = []
            self._was_open = False

        def open(self, width: int, height: int, fps: float) -> None:
            pass

        def write(self, frame: RenderedFrame) -> None:
            is_open = frame.meta.get("mouth_open", 0.0) > threshold
            if is_open and not self._was_open:
                self.opens.append(time.monotonic())
            self._was_open = is_open

    def observe(driver: Any, stop: threading.Event) -> list[float]:
        watch = MouthWatch()
        pipe = LivePipeline(config, animator, [watch], mouth=driver)
        pipe.start()
        try:
            stop.wait()
        finally:
            pipe.stop()
        return watch.opens

    res = measure_audio_latency(config, n_onsets=n_onsets, open_times=observe)
    res["pipeline_fps"] = config.pipeline.fps
    return res


def measure_live_outputs(config: AppConfig, source: str, kind: str, viewers: int, duration_s: float,
                         audio: str | None) -> dict[str, Any]:
    """The real pipeline (idle motion, or the bundled speech when --audio is a file) into WebRTC viewers
    (headless Chromium) or the virtual camera (recording backend); glass to glass from stamped pixels."""
    from src.bench.outputs import bench_churn, bench_vcam, bench_webrtc, pipeline_frame_source
    from src.output.timestamp_code import stamp

    config.output.stamp_capture_time = True
    animator = make_animator(config, source)

    def make(outputs: Any) -> LivePipeline:
        mouth = None
        if audio and audio not in ("mic", "speech"):
            from src.audio import AudioDriver

            mouth = AudioDriver(audio, config, realtime=True, loop=True)
        pipe = LivePipeline(config, animator, outputs, mouth=mouth, stamper=stamp)
        if mouth is not None:
            for out in outputs:
                if hasattr(out, "attach_audio"):
                    out.attach_audio(mouth)
            mouth.start()
            original_stop = pipe.stop

            def stop() -> list[str]:
                alive = original_stop()
                mouth.stop()
                return alive

            pipe.stop = stop  # type: ignore[method-assign]  # this run's stop also stops the mouth it started
        return pipe

    src = pipeline_frame_source(make)
    if kind == "webrtc":
        res = bench_webrtc(src, viewers=viewers, duration_s=duration_s, config=config)
    elif kind == "vcam":
        res = bench_vcam(src, duration_s=duration_s, config=config)
    elif kind == "churn":
        res = bench_churn(src, cycles=50, config=config)
    else:
        raise ValueError(kind)
    return res


def measure_vowels(config: AppConfig) -> dict[str, Any]:
    """Sustained espeak-ng vowels: frame accuracy with the shipped templates on voices they were not
    built from, and on three voices after calibrating on a different take of the same voice."""
    import tempfile

    from src.audio import calibrate_voice, load_templates
    from src.audio.lipsync.vowels import VOWELS
    from src.bench.vowel_templates import BUILD_VOICES, EVAL_VOICES, VOWEL_PHONEMES, accuracy, frame_accuracy, synth_phoneme

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        shipped = load_templates(config.audio)
        out["default_held_out"] = accuracy(shipped, EVAL_VOICES, d)
        out["default_held_out_mean"] = round(float(np.mean(list(out["default_held_out"].values()))), 3)
        out["default_build_voices_mean"] = round(float(np.mean(list(accuracy(shipped, BUILD_VOICES, d).values()))), 3)
        def take(voice: str, hold: int, speed: int, tag: str) -> list[str]:
            return [str(synth_phoneme(VOWEL_PHONEMES[v], voice, d / f"{voice}_{v}_{tag}.wav", hold=hold, speed_wpm=speed))
                    for v in VOWELS]

        calibrated = {}
        for voice in ("en-us+f5", "en-gb-x-gbcwmd", "en+klatt"):
            calib, test = take(voice, 5, 80, "calib"), take(voice, 8, 110, "test")  # two takes: other length and tempo
            cfg = config.model_copy(deep=True)
            cfg.audio.voice_profile = str(d / f"{voice}.json")
            calibrate_voice(cfg, wavs=calib)
            calibrated[voice] = {"default": round(frame_accuracy(shipped, test), 3),
                                 "calibrated": round(frame_accuracy(load_templates(cfg.audio), test), 3)}  # fmt: skip
        out["calibrated"] = calibrated
    return out


def measure_neural(config: AppConfig, tune: bool, unet: bool) -> dict[str, Any]:
    """Batching figures for the neural animators (CPU here: no GPU on this machine)."""
    import tempfile

    from src.bench.neural import auto_tune, unet_figures

    out: dict[str, Any] = {"gpu": "none: every neural figure is CPU-only (ONNX Runtime CPUExecutionProvider)"}
    if unet:
        out["unet"] = unet_figures(batch_sizes=(1, 4, 8, 16), sizes=(160, 320), seconds=2.0)
    if tune:
        model = config.animation.lipsync_unet.onnx_path
        budget = config.pipeline.latency_budget_ms
        if model:
            out["auto_tune"] = auto_tune(model, [config.animation.lipsync_unet.size], [1, 2, 4, 8, 16], budget,
                                         config=config, out_dir=PROJECT_ROOT / "out" / "autotune")
        else:
            import subprocess

            with tempfile.TemporaryDirectory() as tmp:
                results = {}
                for size in (160, 320):
                    path = Path(tmp) / f"unet{size}.onnx"
                    # Random weights (the cost does not depend on them), exported in another process: torch's
                    # thread pool in this one would slow ONNX Runtime down.
                    subprocess.run([sys.executable, str(PROJECT_ROOT / "scripts" / "export_onnx.py"), "--random", "--size", str(size),
                                    "--out", str(path)], check=True, capture_output=True)
                    results[size] = auto_tune(path, [size], [1, 2, 4, 8, 16], budget, config=config,
                                              out_dir=PROJECT_ROOT / "out" / "autotune" / f"unet{size}")
                out["auto_tune"] = results
    return out


def plot(report: dict[str, Any], latencies: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if latencies:
        ax1.hist(latencies, bins=50, color="#3b7dd8")
    ax1.set_title(f"capture-to-output latency, paced ({len(latencies)} frames)")
    ax1.set_xlabel("ms")
    stages = report.get("stage_ms", {})
    names = list(stages)
    p50 = [stages[n]["p50"] for n in names]
    p95 = [stages[n]["p95"] for n in names]
    x = np.arange(len(names))
    ax2.bar(x - 0.2, p50, 0.4, label="p50")
    ax2.bar(x + 0.2, p95, 0.4, label="p95")
    ax2.set_xticks(x, names, rotation=20)
    ax2.set_ylabel("ms per frame")
    ax2.set_title("per-stage processing time (paced run)")
    ax2.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


# Measurements that run alone ("only that is measured"), in order of precedence: the flag and the report's name.
SOLO = (("look", "look"), ("serve", "serve"), ("cpu", "cpu"), ("lipsync", "lipsync"), ("vowels", "vowels"),
        ("auto_tune", "autotune"), ("unet", "unet"))
ALL_PARTS = ["unpaced", "paced", "warp", "landmarks"]


def solo_kind(args: argparse.Namespace) -> str | None:
    """The flag of the measurement that runs alone, if one was asked for."""
    return next((flag for flag, _ in SOLO if getattr(args, flag, False)), None)


def default_json(args: argparse.Namespace) -> Path:
    """One report file per kind of measurement (the names run_figures.sh gives them)."""
    kind = solo_kind(args)
    if kind is not None:
        name = dict(SOLO)[kind]
        if kind == "serve":
            ray = getattr(args, "engine", "local") == "ray"
            name = "serve_soak" if getattr(args, "soak_minutes", None) else "serve_ray" if ray else "serve"
    elif args.output:
        name = f"webrtc_{args.viewers}" if args.output == "webrtc" else args.output
    elif args.audio and args.audio_only:
        name = "audio_latency" if args.audio == "mic" else "render_speed"
    else:
        name = "benchmark"
    return PROJECT_ROOT / "out" / "bench" / f"{name}.json"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", help="driver video or webcam[:N] (default: the shared clip at 640x480)")
    ap.add_argument("--source", default=str(PROJECT_ROOT / "assets" / "portrait.png"))
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of the paced (real-time) run")
    ap.add_argument("--frames", type=int, default=900, help="frames of the unpaced throughput run")
    ap.add_argument("--fps-pairs", type=int, default=3, help="runs of the tracker alone and the whole pipeline, one after "
                    "the other; fps, landmark_only_fps and their ratio are the medians (the VM's speed drifts)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--json", help="where the report goes (default: out/bench/<what was measured>.json, the names "
                                   "scripts/run_figures.sh uses, so a partial run never overwrites another figure's file)")
    ap.add_argument("--plot", default=str(PROJECT_ROOT / "out" / "bench" / "benchmark.png"))
    ap.add_argument("--reenactment", action="store_true", help="also measure self-reenactment and cross-identity figures")
    ap.add_argument("--audio", help="'mic': live audio latency through a PulseAudio virtual mic; a FILE (or 'speech'"
                                    " for 60 s of espeak-ng speech): render_speed_x")
    ap.add_argument("--audio-only", action="store_true", help="only the audio figures (skip the video ones)")
    ap.add_argument("--output", choices=["webrtc", "vcam", "churn"], help="measure a live output fed by the real pipeline "
                    "(webrtc: headless Chromium viewers; vcam: the recording virtual-camera backend; churn: 50 viewer cycles); "
                    "only that is measured")
    ap.add_argument("--viewers", type=int, default=1, help="Chromium viewers for --output webrtc")
    ap.add_argument("--auto-tune", action="store_true", help="measure throughput and p95 latency per batch size for the "
                    "configured model (an ONNX U-Net from animation.lipsync_unet.onnx_path, else a random-weight U-Net at "
                    "both sizes), pick the largest batch within pipeline.latency_budget_ms, write it as a config override "
                    "and plot; only that is measured")
    ap.add_argument("--lipsync", action="store_true", help="render timing figures: speech (clean and under -40 dBFS noise), "
                    "silence and noise rendered to mp4, the mouth re-detected in the mp4 as written; only that is measured")
    ap.add_argument("--languages", help="with --lipsync: espeak-ng voices to measure, comma-separated (default: "
                    "en-us,de,fr,es,it,pt,nl)")
    ap.add_argument("--vowels", action="store_true", help="vowel classification figures (default templates on held-out "
                    "espeak-ng voices; after calibration); only that is measured")
    ap.add_argument("--unet", action="store_true", help="U-Net figures: ms and fps per batch for both sizes (random weights), "
                    "ONNX Runtime vs PyTorch difference; only that is measured")
    ap.add_argument("--cpu", action="store_true", help="CPU cores per live session (driver none, --audio FILE or speech_en.wav, "
                    "the driver video; each alone and with one WebRTC viewer) and audio_sessions_in_85pct; only that is measured")
    ap.add_argument("--cpu-cases", help="comma-separated subset of the --cpu cases, e.g. audio,audio+webrtc")
    ap.add_argument("--cpu-seconds", type=float, default=10.0, help="--cpu: seconds measured per case, after 3 s of warm-up")
    ap.add_argument("--serve", action="store_true", help="`main.py serve` figures (src/bench/serve.py): create to first "
                    "frame in Chromium, say to first audio, concurrent browser sessions (up to --sessions), create/delete "
                    "cycles; only that is measured")
    ap.add_argument("--sessions", type=int, default=4, help="most concurrent browser sessions tried by --serve")
    ap.add_argument("--soak-minutes", type=float, help="with --serve: only the soak: --sessions text sessions speaking for "
                    "this long, RSS and audio-vs-mouth lag at a viewer after a minute and at the end")
    ap.add_argument("--look", action="store_true", help="how the face looks (src/bench/look_sheet.py): a contact sheet PNG "
                    "and re-detected figures (faces, background vs plate, person area, mouth interior)")
    ap.add_argument("--engine", choices=["local", "ray"], default="local", help="with --serve: ray measures the ray engine "
                    "on a two-node loopback cluster (src/bench/serve_ray.py): added latency vs local, Serve batches of "
                    "--unet-sessions lipsync-unet 160 sessions, node-loss recovery")
    ap.add_argument("--unet-sessions", type=int, default=8, help="--serve --engine ray: lipsync-unet sessions batched (0: skip)")
    ap.add_argument("--skip", action="append", default=[], choices=["unpaced", "paced", "warp", "landmarks"], help="skip a part")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    return ap


def measure_alone_or_audio(args: argparse.Namespace, config: AppConfig, driver: str, report: dict[str, Any]) -> bool:
    """The measurements that run alone, and the audio figures; True when the video figures are to be skipped."""
    if args.look:
        from src.bench.look_sheet import run_look

        if not SHARED_CLIP.is_file():
            print(f"error: --look needs the shared clip {SHARED_CLIP}", file=sys.stderr)
            raise SystemExit(2)
        report["look"] = run_look(config, SHARED_CLIP, Path(args.source), BENCH_DIR / "look")
    elif args.serve and args.engine == "ray":
        from src.bench.serve_ray import measure_serve_ray

        report["serve_ray"] = measure_serve_ray(config, args.sessions, min(args.duration, 10.0), args.unet_sessions)
    elif args.serve:
        from src.bench.serve import measure_serve

        if args.soak_minutes:
            from src.bench.serve import soak

            report["serve_soak"] = soak(config, args.sessions, args.soak_minutes)
        else:
            report["serve"] = measure_serve(config, args.sessions, min(args.duration, 10.0))
    elif args.cpu:
        from src.bench.cpu import measure_cpu

        report["cpu"] = measure_cpu(driver, args.audio, seconds=args.cpu_seconds, overrides=args.overrides,
                                    cases=args.cpu_cases.split(",") if args.cpu_cases else None)
        report.update({k: v for k, v in report["cpu"].items() if k.endswith("85pct") or k == "cpu_cores_per_session"})
    elif args.lipsync:
        report["lipsync"] = measure_lipsync(config, args.source, args.languages.split(",") if args.languages else None)
    elif args.vowels:
        report["vowels"] = measure_vowels(config)
    elif args.auto_tune or args.unet:
        report.update(measure_neural(config, args.auto_tune, args.unet))
    elif args.output:
        report[args.output] = measure_live_outputs(config, args.source, args.output, args.viewers, args.duration, args.audio)
    elif args.audio:
        if args.audio == "mic":
            report["audio_latency"] = measure_mic_latency(config, args.source)
            report["audio_latency_ms"] = report["audio_latency"]["audio_latency_ms"]
        else:
            report["render"] = measure_render_speed(config, args.source, None if args.audio == "speech" else args.audio)
            report["render_speed_x"] = report["render"]["render_speed_x"]
    return solo_kind(args) is not None or bool(args.output) or bool(args.audio and args.audio_only)


def measure_fps_pairs(args: argparse.Namespace, config: AppConfig, driver: str) -> dict[str, Any]:
    """The tracker alone and the whole pipeline, `--fps-pairs` times one after the other: this VM's speed
    drifts within minutes, so the ratio is taken within each pair and the medians are reported."""
    out: dict[str, Any] = {}
    pairs: list[dict[str, float]] = []
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, args.fps_pairs)):
        pair: dict[str, float] = {}
        if "landmarks" not in args.skip:
            pair["landmark_only_fps"] = measure_landmarks_only(driver, config)["fps"]
            log.info("landmarks alone: %.1f fps", pair["landmark_only_fps"])
        if "unpaced" not in args.skip:
            up = measure_unpaced(driver, config, args.source, args.frames, args.batch)
            runs.append(up)
            pair["fps"] = up["fps"]
            log.info("unpaced end to end: %.1f fps", up["fps"])
        if "fps" in pair and "landmark_only_fps" in pair:
            pair["ratio"] = round(pair["fps"] / pair["landmark_only_fps"], 3)
        pairs.append(pair)
    for key, name in (("landmark_only_fps", "landmark_only_fps"), ("fps", "fps"), ("ratio", "fps_vs_landmark_only")):
        values = [p[key] for p in pairs if key in p]
        if values:
            out[name] = round(float(np.median(values)), 3 if key == "ratio" else 1)
    if runs:
        out["unpaced"] = sorted(runs, key=lambda r: r["fps"])[len(runs) // 2]  # the median run, with its stage times
    if len(pairs) > 1:
        out["fps_pairs"] = pairs
    return out


def measure_video_figures(args: argparse.Namespace, config: AppConfig, driver: str, report: dict[str, Any]) -> list[float]:
    """Landmarks alone, animate alone, unpaced and paced runs, RSS, the warp comparison, reenactment; the paced latencies."""
    rss: dict[str, float] = {"start": rss_mb()}
    if not args.audio_only:
        report["animate_only_ms"] = measure_animate_only(config, args.source)
    report.update(measure_fps_pairs(args, config, driver))
    latencies: list[float] = []
    if "paced" not in args.skip:
        rss["before_paced"] = rss_mb()
        paced = measure_paced(driver, config, args.source, args.duration, rss)
        latencies = paced.pop("_latencies")
        report["latency_ms"] = paced["latency_ms"]
        report["dropped"] = paced["dropped"]
        report["frames"] = paced["frames"]
        report["stage_ms"] = paced["stage_ms"]
        report["paced"] = paced
        log.info("paced: latency p50 %.1f p95 %.1f ms, dropped %d of %d", paced["latency_ms"]["p50"], paced["latency_ms"]["p95"],
                 paced["dropped"], paced["captured"])
    rss["end"] = rss_mb()
    if not args.audio_only:
        report["rss_mb"] = rss
    if "warp" not in args.skip:
        report["warp_vs_skimage"] = measure_warp(config, args.source)
    if args.reenactment:
        if not SHARED_CLIP.is_file():
            report["reenactment"] = {"skipped": f"{SHARED_CLIP} absent"}
        else:
            report["reenactment"] = measure_reenactment(config, SHARED_CLIP, BENCH_DIR / "reenactment")
    return latencies


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(overrides=args.overrides)
    if args.driver:
        driver = args.driver
    elif SHARED_CLIP.is_file():
        driver = str(scaled_driver(SHARED_CLIP))
    else:
        print(f"error: no --driver given and the shared clip {SHARED_CLIP} is absent; pass --driver VIDEO", file=sys.stderr)
        return 2
    report: dict[str, Any] = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "gpu": "none (CPU only)"},
        "driver": driver,
        "output_size_px": config.animation.output_size_px,
        "command": "python scripts/benchmark.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    if measure_alone_or_audio(args, config, driver, report):
        args.skip, args.audio_only = ALL_PARTS, True
    latencies = measure_video_figures(args, config, driver, report)
    out = Path(args.json or default_json(args))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    if args.plot and not args.audio_only:
        plot(report, latencies, Path(args.plot))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "benchmark"
    sys.exit(main())
