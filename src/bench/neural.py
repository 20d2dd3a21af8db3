#!/usr/bin/env python3
"""Neural animator benchmarks: batch auto-tuning, U-Net speed and parity figures, training figure.

Importable by scripts/benchmark.py:
    auto_tune(target, sizes, batch_sizes, budget_ms, ...) -> dict
    unet_figures(...) -> dict
    training_figure(...) -> dict
CPU only here: no GPU figure can be measured on this machine.

    .venv/bin/python scripts/bench_neural.py unet [--seconds 1]
    .venv/bin/python scripts/bench_neural.py tune --model out/unet160.onnx --budget-ms 100
    .venv/bin/python scripts/bench_neural.py train-figure --minutes 4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from src.animation.base import AnimationInput, BaseAnimationModel
from src.animation.onnx_session import OnnxModel
from src.core.config import PROJECT_ROOT, AppConfig, load_config
from src.core.frames import MotionState

NO_GPU_NOTE = "CPU only: no NVIDIA GPU on this machine, so no GPU figure could be measured here"


def _stats(batch: int, times_s: list[float]) -> dict[str, float]:
    t = np.asarray(times_s) * 1000.0
    return {
        "batch": batch,
        "runs": len(t),
        "p50_ms": float(np.percentile(t, 50)),
        "p95_ms": float(np.percentile(t, 95)),
        "ms_per_frame": float(np.median(t) / batch),
        "fps": float(batch * 1000.0 / np.median(t)),
    }


def _time_calls(fn: Callable[[], object], seconds: float, min_runs: int = 5, max_runs: int = 500) -> list[float]:
    fn()  # warm-up
    times: list[float] = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_runs or (time.perf_counter() < t_end and len(times) < max_runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _model_caller(path: Path, size: int, batch: int, config: AppConfig) -> Callable[[], object]:
    """A call of an ONNX model at `batch` on random inputs (spatial axes of dynamic inputs set to `size`)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [batch if k == 0 else (d if isinstance(d, int) else size) for k, d in enumerate(inp.shape)]
        dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        feeds[inp.name] = rng.random(shape, dtype=np.float32).astype(dtype)
    return lambda: sess.run(None, feeds)


def _animator_caller(factory: Callable[[AppConfig], BaseAnimationModel], size: int, batch: int, config: AppConfig,
                     source: str | None, inputs: Callable[[int], list[AnimationInput]] | None) -> Callable[[], object]:  # fmt: skip
    cfg = config.model_copy(deep=True)
    cfg.animation.output_size_px = size
    anim = factory(cfg)
    anim.load_model()
    anim.preprocess_source_image(source or str(PROJECT_ROOT / "assets" / "portrait.png"))
    make = inputs or (lambda n: [AnimationInput(motion=MotionState(), capture_ts=time.monotonic(), index=i) for i in range(n)])
    batch_inputs = make(batch)
    return lambda: anim.animate_batch(batch_inputs)


def auto_tune(
    target: str | Path | Callable[[AppConfig], BaseAnimationModel],
    sizes: Sequence[int],
    batch_sizes: Sequence[int],
    budget_ms: float,
    *,
    config: AppConfig | None = None,
    seconds: float = 1.0,
    out_dir: str | Path = "out/autotune",
    source: str | None = None,
    inputs: Callable[[int], list[AnimationInput]] | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Measure throughput and p95 latency per batch size, pick the largest batch whose p95 call time fits
    `budget_ms`, write it as a config override (YAML: pipeline.batch_size) and plot fps/latency vs batch.

    `target` is an ONNX model path (random inputs; dynamic spatial axes take each size) or an animator
    factory (`ANIMATORS.get(name)`: built per size with output_size_px = size, fed `inputs(n)` or idle
    inputs). With several sizes the override takes the smallest choice, so every size stays in budget.
    """
    config = config or load_config()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"budget_ms": budget_ms, "sizes": {}, "note": NO_GPU_NOTE}
    for size in sizes:
        rows = []
        for b in batch_sizes:
            if isinstance(target, (str, Path)):
                call = _model_caller(Path(target), size, b, config)
            else:
                call = _animator_caller(target, size, b, config, source, inputs)
            rows.append(_stats(b, _time_calls(call, seconds)))
        fitting = [r["batch"] for r in rows if r["p95_ms"] <= budget_ms]
        result["sizes"][size] = {"rows": rows, "best_batch": max(fitting) if fitting else 1, "any_fits": bool(fitting)}
    chosen = min(v["best_batch"] for v in result["sizes"].values()) if result["sizes"] else 1
    result["batch_size"] = chosen
    override = out / "batch_override.yaml"
    override.write_text(
        f"# written by scripts/bench_neural.py auto_tune: largest batch with p95 <= {budget_ms:g} ms ({NO_GPU_NOTE})\n"
        f"pipeline:\n  batch_size: {chosen}\n"
    )
    result["override_path"] = str(override)
    if plot:
        result["plot_path"] = str(_plot(result, out / "autotune.png"))
    (out / "autotune.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def _plot(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for size, v in result["sizes"].items():
        b = [r["batch"] for r in v["rows"]]
        a1.plot(b, [r["fps"] for r in v["rows"]], "o-", label=f"size {size}")
        a2.plot(b, [r["p95_ms"] for r in v["rows"]], "o-", label=f"size {size}")
    a2.axhline(result["budget_ms"], color="r", ls="--", label="latency budget")
    a1.set(xlabel="batch size", ylabel="frames / s", title="throughput (CPU)")
    a2.set(xlabel="batch size", ylabel="p95 call latency (ms)", title="latency (CPU)")
    for a in (a1, a2):
        a.set_xscale("log", base=2)
        a.grid(alpha=0.3)
        a.legend()
    fig.suptitle(NO_GPU_NOTE, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def unet_figures(batch_sizes: Sequence[int] = (1, 4, 8, 16), sizes: Sequence[int] = (160, 320), seconds: float = 1.0,
                 out_dir: str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """U-Net per-frame ms and fps per batch for both sizes (random weights: cost does not depend on the
    values), end-to-end ms at batch 1 for 160 (crop + network + paste-back at 512 output), and the
    ONNX Runtime vs PyTorch max abs difference on the same input."""
    from src.training.lipsync_unet.export import parity, random_model, to_onnx_bytes

    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="unet_bench_"))
    out.mkdir(parents=True, exist_ok=True)
    res: dict[str, Any] = {"note": NO_GPU_NOTE, "sizes": {}}
    for size in sizes:
        model = random_model(size)
        data = to_onnx_bytes(model)
        path = out / f"unet{size}_random.onnx"
        path.write_bytes(data)
        timed = _time_in_subprocess(path, size, batch_sizes, seconds, e2e=size == 160)
        res["sizes"][size] = {"width": model.cfg.width, "rows": timed["rows"], "max_abs_diff_ort_vs_torch": parity(model, data)}
        if "end_to_end" in timed:
            res["end_to_end_160_batch1"] = timed["end_to_end"]
    return res


def _time_in_subprocess(path: Path, size: int, batch_sizes: Sequence[int], seconds: float, e2e: bool) -> dict[str, Any]:
    """Time ONNX Runtime in a fresh process: torch's OpenMP threads (used here for export and parity)
    keep spinning after their work and slowed onnxruntime 3x when timed in the same process."""
    import subprocess

    cmd = [sys.executable, "-m", "src.bench.neural", "time-model", "--model", str(path), "--size", str(size),
           "--batches", *map(str, batch_sizes), "--seconds", str(seconds)] + (["--e2e"] if e2e else [])  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(run.stdout)


def time_model(path: Path, size: int, batch_sizes: Sequence[int], seconds: float, e2e: bool) -> dict[str, Any]:
    res: dict[str, Any] = {"rows": [_stats(b, _time_calls(_model_caller(path, size, b, load_config()), seconds)) for b in batch_sizes]}
    if e2e:
        res["end_to_end"] = _end_to_end_160(path, seconds)
    return res


def _end_to_end_160(onnx_path: Path, seconds: float) -> dict[str, float]:
    """One frame through the runtime path (template frame decode, crop, U-Net, paste-back, fit to 512)."""
    from src.animation.lipsync_unet.animator import unet_spec
    from src.animation.lipsync_unet.audio_windows import WINDOW
    from src.animation.lipsync_unet.geometry import BORDER, crop_box, network_input, network_output_to_bgr, paste_crop, paste_mask
    from src.animation.liveportrait.crop import fit_square
    from src.core.config import OnnxConfig

    model = OnnxModel(onnx_path, unet_spec(160), OnnxConfig(provider="cpu"))
    frame = cv2.resize(cv2.imread(str(PROJECT_ROOT / "assets" / "portrait.png")), (512, 512))
    box = np.array([150, 230, 362, 442], np.float32)
    mask = paste_mask(168, 6)
    mel = np.random.default_rng(0).uniform(-4, 4, (1, 1, 80, WINDOW)).astype(np.float32)

    def one() -> np.ndarray:
        crop = crop_box(frame, box, 168)
        inner = crop[BORDER:-BORDER, BORDER:-BORDER]
        out = model.run({"image": network_input(inner, inner)[None], "audio": mel})["out"][0]
        crop[BORDER:-BORDER, BORDER:-BORDER] = network_output_to_bgr(out)
        return fit_square(paste_crop(frame, box, crop, mask), 512)

    s = _stats(1, _time_calls(one, seconds))
    return {"ms_per_frame": s["ms_per_frame"], "p95_ms": s["p95_ms"], "fps": s["fps"]}


# --- a talking video for training tests and figures --------------------------------------------------


def speech_envelope(audio: np.ndarray, fps: float, n_frames: int, sr: int = 16000) -> np.ndarray:
    """Mouth opening 0..1 per frame from the speech's loudness (40 ms RMS around each frame, smoothed)."""
    half = int(0.02 * sr)
    out = np.zeros(n_frames, np.float32)
    for i in range(n_frames):
        c = int(i / fps * sr)
        seg = audio[max(0, c - half) : c + half]
        db = 20 * np.log10(np.sqrt(np.mean(seg**2)) + 1e-9) if len(seg) else -120.0
        out[i] = np.clip((db + 42.0) / 22.0, 0.0, 1.0)
    return np.convolve(np.pad(out, 1, mode="edge"), np.ones(3) / 3, mode="valid").astype(np.float32)


def make_talking_video(out_path: str | Path, portrait: str | Path, audio_16k: np.ndarray, fps: float = 25.0, size: int = 256) -> np.ndarray:
    """A simple, honest stand-in renderer (until `main.py render` exists): the portrait's jaw and lower lip
    move down with the speech's loudness and the mouth opening is drawn dark. Muxes the audio in.
    Returns the per-frame opening it rendered (0..1)."""
    import subprocess
    import tempfile

    from scipy.spatial import Delaunay

    from src.animation.meshwarp.warp import PiecewiseAffineWarper
    from src.capture.face_tracker import FaceTracker
    from src.core.face_mesh import INNER_MOUTH_RING, LIPS_LOWER_INNER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER, MOUTH_CORNERS

    img = cv2.resize(cv2.imread(str(portrait)), (size, size), interpolation=cv2.INTER_AREA)
    with FaceTracker(static_image_mode=True, max_faces=1) as tr:
        faces = tr.process(img)
    if not faces:
        raise RuntimeError(f"no face in {portrait}")
    lm = faces[0].landmarks[:468, :2].astype(np.float32)
    e, h = size - 1, size / 2
    border = np.array([[0, 0], [e, 0], [0, e], [e, e], [h, 0], [h, e], [0, h], [e, h]], np.float32)
    pts = np.concatenate([lm, border])
    tri = Delaunay(pts).simplices
    warper = PiecewiseAffineWarper(pts, tri, (size, size), map_scale=1.0)
    mouth_y = float(lm[list(MOUTH_CORNERS), 1].mean())
    mouth_x = float(lm[list(MOUTH_CORNERS), 0].mean())
    mw = float(np.linalg.norm(lm[MOUTH_CORNERS[0]] - lm[MOUTH_CORNERS[1]]))
    chin_y = float(lm[152, 1])
    below = np.clip((pts[:, 1] - mouth_y + 0.02 * mw) / (0.25 * (chin_y - mouth_y) + 1e-6), 0, 1)
    w = below * np.exp(-(((pts[:, 0] - mouth_x) / (1.2 * mw)) ** 2))
    w[LIPS_UPPER_INNER + LIPS_UPPER_OUTER] = 0.0  # the upper lip stays
    w[LIPS_LOWER_INNER] = np.maximum(w[LIPS_LOWER_INNER], 0.9)
    w[468:] = 0.0
    n = int(len(audio_16k) / 16000 * fps)
    opening = speech_envelope(audio_16k, fps, n)
    amp = 0.45 * mw
    with tempfile.TemporaryDirectory() as td:
        raw = Path(td) / "v.avi"
        wav = Path(td) / "a.wav"
        writer = cv2.VideoWriter(str(raw), cv2.VideoWriter.fourcc(*"MJPG"), fps, (size, size))
        for i in range(n):
            dst = pts.copy()
            dst[:, 1] += w * amp * opening[i]
            frame = warper.warp(img, dst)
            ring = dst[INNER_MOUTH_RING].astype(np.int32)
            if opening[i] > 0.05:
                cv2.fillPoly(frame, [ring], (40, 25, 70), lineType=cv2.LINE_AA)
            writer.write(frame)
        writer.release()
        pcm = (np.clip(audio_16k[: int(n / fps * 16000)], -1, 1) * 32767).astype(np.int16)
        import wave

        with wave.open(str(wav), "wb") as wf:
            wf.setnchannels(1)
            wf.setsampwidth(2)
            wf.setframerate(16000)
            wf.writeframes(pcm.tobytes())
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(raw), "-i", str(wav), "-c:v", "libx264", "-crf", "18",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(out_path)], check=True)  # fmt: skip
    return opening


# --- training figure -----------------------------------------------------------------------------------


def _espeak(text: str, path: Path, voice: str = "en-us") -> np.ndarray:
    import subprocess
    import wave

    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True, capture_output=True)
    subprocess.run(["sox", str(path), "-r", "16000", "-c", "1", "-b", "16", str(path) + ".16k.wav"], check=True, capture_output=True)
    with wave.open(str(path) + ".16k.wav") as wf:
        return np.frombuffer(wf.readframes(wf.getnframes()), np.int16).astype(np.float32) / 32768.0


def _read_wav(path: Path) -> np.ndarray:
    import wave

    with wave.open(str(path)) as wf:
        return np.frombuffer(wf.readframes(wf.getnframes()), np.int16).astype(np.float32) / 32768.0


TRAIN_TEXTS = [
    "The quick brown fox jumps over the lazy dog while the band plays a happy tune.",
    "Open the window, please, and let the morning air move through the quiet room.",
    "We measured every frame twice, and the numbers matched what the camera saw.",
    "Bob and Maggie ate cheese pie by the river before the evening boat arrived.",
    "Should you ever choose a new shoe, look for soft leather and a wide, thick sole.",
    "Five thousand people cheered as the yellow balloon rose over the old town square.",
    "Why would anybody boil an egg for twenty minutes when four is plenty?",
    "Our teacher read aloud from a book of poems about oceans, owls and autumn.",
]
HELDOUT_TEXT = "My father bought a large map of the old harbour and pinned it above his desk."


def mouth_openings(frames: list[np.ndarray]) -> np.ndarray:
    """MediaPipe inner-lip gap / inter-ocular distance per frame (NaN where no face)."""
    from src.capture.face_tracker import FaceTracker
    from src.core.face_mesh import measure

    vals = []
    with FaceTracker(static_image_mode=False, max_faces=1) as tr:
        for f in frames:
            faces = tr.process(f)
            vals.append(measure(faces[0].landmarks).mouth_open if faces else np.nan)
    return np.asarray(vals, np.float64)


def _read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def render_talking_video(out_path: Path, audio_16k: np.ndarray, fps: float = 25.0,
                         lipsync_method: str = "auto") -> tuple[str, np.ndarray | None]:  # fmt: skip
    """A talking video of the bundled portrait saying `audio_16k`: our own `main.py render` when it works
    (file lip sync by `lipsync_method`, as `audio.visemes.method`), otherwise the stand-in
    `make_talking_video`. Returns (which renderer, its opening when known)."""
    import subprocess
    import wave

    wav = out_path.with_suffix(".wav")
    with wave.open(str(wav), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(16000)
        wf.writeframes((np.clip(audio_16k, -1, 1) * 32767).astype(np.int16).tobytes())
    portrait = PROJECT_ROOT / "assets" / "portrait.png"
    cmd = [sys.executable, str(PROJECT_ROOT / "main.py"), "render", "--source", str(portrait), "--audio", str(wav),
           "--output", str(out_path), "--fps", str(fps), "--set", f"cache.dir={out_path.parent / 'render_cache'}",
           "--set", f"audio.visemes.method={lipsync_method}"]  # fmt: skip
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if run.returncode == 0 and out_path.is_file() and _has_audio(out_path):
            return f"main.py render (meshwarp, audio.visemes.method={lipsync_method})", None
    except (OSError, subprocess.SubprocessError):
        pass
    opening = make_talking_video(out_path, PROJECT_ROOT / "assets" / "portrait.png", audio_16k, fps, size=512)
    return "make_talking_video (stand-in: main.py render failed here)", opening


def _has_audio(path: Path) -> bool:
    import av

    with av.open(str(path)) as c:
        return bool(c.streams.audio)


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    ok = ~(np.isnan(a) | np.isnan(b))
    return (float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 2 else float("nan")), int(ok.sum())


def training_figure(minutes: float = 4.0, out_dir: str | Path = "out/train_figure", fps: float = 25.0,
                    evaluate_only: bool = False, lipsync_method: str = "auto") -> dict[str, Any]:  # fmt: skip
    """Train the 160 U-Net for `minutes` on a talking video (speech_en.wav + espeak sentences, rendered by
    `main.py render` with file lip sync `lipsync_method`), then drive it with held-out speech and
    correlate its MediaPipe mouth opening with the renderer's on the same speech. `evaluate_only`: no
    rendering or training; evaluate the checkpoint an earlier run left in `out_dir` with the current
    run-time code.

    `auto` (phones) renders mouths that any model of the 200 ms audio window can follow only so far: the
    phone recogniser decodes whole utterances, so its shapes depend on context the window never hears
    (a ridge regression from the windows reaches r = 0.62 on the held-out render; 0.85 for `live`)."""
    from src.animation.lipsync_unet import LipsyncUNetAnimator, mel_windows
    from src.training.lipsync_unet.export import export_unet
    from src.training.lipsync_unet.training import train_lipsync

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config()
    cfg.cache.dir = str(out / "cache")
    parts = [_read_wav(PROJECT_ROOT / "assets" / "speech_en.wav")]
    for k, text in enumerate(TRAIN_TEXTS):
        parts += [np.zeros(4000, np.float32), _espeak(text, out / f"train{k}.wav")]
    train_audio = np.concatenate(parts)
    held_audio = _espeak(HELDOUT_TEXT, out / "heldout.wav", voice="en-us")
    train_video, held_video = out / "train_talking.mp4", out / "heldout_talking.mp4"
    if evaluate_only:
        from src.training.lipsync_unet.checkpoint import load_checkpoint
        from src.training.lipsync_unet.training import TrainReport

        if not (out / "run" / "last.pt").is_file() or not held_video.is_file():
            raise SystemExit(f"--evaluate-only: no earlier train-figure run in {out}; run without it first")
        ckpt = load_checkpoint(out / "run" / "last.pt")
        report = TrainReport(checkpoint=out / "run" / "last.pt", epochs_done=int(ckpt.get("epoch", 0)), losses=list(ckpt.get("losses", [])))
        prev = json.loads((out / "figure.json").read_text()) if (out / "figure.json").is_file() else {}
        renderer, train_s = prev.get("renderer", "main.py render (meshwarp)"), prev.get("train_seconds")
        report.frames, report.steps = prev.get("train_frames", 0), prev.get("steps", 0)
    else:
        renderer, _ = render_talking_video(train_video, train_audio, fps, lipsync_method)
        render_talking_video(held_video, held_audio, fps, lipsync_method)
        t0 = time.monotonic()
        report = train_lipsync(train_video, out / "run", cfg, size=160, epochs=10_000, max_minutes=minutes, progress=False)
        train_s = round(time.monotonic() - t0, 1)
    onnx = export_unet(out / "unet160.onnx", report.checkpoint)
    cfg.animation.lipsync_unet.onnx_path = onnx["path"]
    anim = LipsyncUNetAnimator(cfg)
    anim.load_model()
    anim.preprocess_source_image(str(train_video))
    held_frames = _read_frames(held_video)
    mels = mel_windows(held_audio, fps, len(held_frames))
    inputs = [AnimationInput(motion=MotionState(), capture_ts=0.0, index=i, audio_features=mels[i]) for i in range(len(held_frames))]
    ours: list[np.ndarray] = []
    for s in range(0, len(inputs), 8):
        ours += anim.animate_batch(inputs[s : s + 8])
    ref_open = mouth_openings(held_frames)
    our_open = mouth_openings(ours)
    corr, n_ok = _corr(ref_open, our_open)
    # Diagnostics: the audio's effect alone (every frame on one closed-mouth template frame), and how much
    # the output follows the template frame's own mouth (a leak: it should not).
    tpl = anim.template
    assert tpl is not None
    fixed = int(tpl.closed[len(tpl.closed) // 2])
    still: list[np.ndarray] = []
    for s in range(0, len(inputs), 8):
        still += anim.animate_batch([AnimationInput(MotionState(), 0.0, fixed, audio_features=x.audio_features) for x in inputs[s : s + 8]])
    corr_fixed, _ = _corr(ref_open, mouth_openings(still))
    leak, _ = _corr(tpl.mouth_open[[tpl.pingpong(i) for i in range(len(ours))]].astype(np.float64), our_open)
    w = cv2.VideoWriter(str(out / "heldout_unet.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), fps, ours[0].shape[1::-1])
    for f in ours:
        w.write(f)
    w.release()
    return {
        "train_seconds": train_s, "evaluated_only": evaluate_only, "epochs": report.epochs_done, "train_frames": report.frames,
        "loss_first_last": [report.losses[0], report.losses[-1]] if report.losses else [], "steps": report.steps,
        "heldout_frames": len(held_frames), "frames_compared": n_ok,
        "mouth_open_correlation": corr, "mouth_open_correlation_one_template_frame": corr_fixed,
        "correlation_with_template_mouth": leak, "max_abs_diff_export": onnx["max_abs_diff"],
        "renderer": renderer, "note": NO_GPU_NOTE,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("unet", help="U-Net ms/fps per batch and ORT-vs-torch parity")
    u.add_argument("--seconds", type=float, default=1.0)
    t = sub.add_parser("tune", help="auto-tune pipeline.batch_size for a model or animator")
    t.add_argument("--model", help="ONNX model path")
    t.add_argument("--animator", help="registered animator name instead of --model")
    t.add_argument("--sizes", type=int, nargs="+", default=[160])
    t.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    t.add_argument("--budget-ms", type=float, default=100.0)
    t.add_argument("--seconds", type=float, default=1.0)
    t.add_argument("--out", default="out/autotune")
    tm = sub.add_parser("time-model", help="(internal) time one ONNX model per batch size, JSON on stdout")
    tm.add_argument("--model", required=True)
    tm.add_argument("--size", type=int, required=True)
    tm.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    tm.add_argument("--seconds", type=float, default=1.0)
    tm.add_argument("--e2e", action="store_true")
    f = sub.add_parser("train-figure", help="train a few minutes, correlate mouth opening on held-out speech")
    f.add_argument("--minutes", type=float, default=4.0)
    f.add_argument("--out", default="out/train_figure")
    f.add_argument("--evaluate-only", action="store_true", help="evaluate the checkpoint an earlier run left in --out")
    f.add_argument("--lipsync-method", choices=["auto", "phones", "live"], default="auto",
                   help="file lip sync of the renderer that makes the training and held-out videos")
    args = ap.parse_args(argv)
    if args.cmd == "unet":
        res = unet_figures(seconds=args.seconds)
    elif args.cmd == "time-model":
        res = time_model(Path(args.model), args.size, args.batches, args.seconds, args.e2e)
    elif args.cmd == "tune":
        if args.animator:
            import src.animation.lipsync_unet
            import src.animation.liveportrait  # noqa: F401
            from src.animation.base import ANIMATORS

            target: Any = ANIMATORS.get(args.animator)
        elif args.model:
            target = args.model
        else:
            ap.error("give --model or --animator")
        res = auto_tune(target, args.sizes, args.batches, args.budget_ms, seconds=args.seconds, out_dir=args.out)
    else:
        res = training_figure(args.minutes, args.out, evaluate_only=args.evaluate_only, lipsync_method=args.lipsync_method)
        (Path(args.out) / "figure.json").write_text(json.dumps(res, indent=2, default=str))
    print(json.dumps(res, indent=2, default=str))
    return 0


def cli(argv: list[str] | None = None) -> int:
    """`main` with a user error as one line on stderr (exit 2), not a traceback."""
    from src.core.errors import UserError

    try:
        return main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(cli())
