"""`scripts/benchmark.py --serve`: figures of `main.py serve` (sessions from one server).

- create_to_first_frame: `POST /api/sessions` to the first avatar frame decoded in headless Chromium (the viewer
  page opened once the POST answered), per trial; p50.
- say_to_first_audio: `say` of a short sentence to the first loud audio at a WebRTC viewer (an aiortc client),
  and to the first received frame whose re-detected mouth is open; p50.
- concurrent_browser_sessions: N Chromium studio pages, each a browser-driven session (fake camera from the
  shared clip, fake microphone from speech), for N = 1, 2, ...: decoded fps at each page and the server's
  capture-to-output p95; the largest N with every page >= 25 fps and every p95 <= 150 ms.
- cycles: create/delete cycles: threads and RSS before and after.
The browsers run on the same machine as the server (here 2 shared cores): their decoding and camera encoding
take CPU from the sessions.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from scripts.serve_client import create, first_loud, http, view, wait_for
from src.bench.outputs import CHROMIUM, CHROMIUM_ARGS, chromium_missing
from src.core.config import AppConfig
from src.core.runtime.metrics import percentiles
from src.serve.runner import BackgroundServer

log = logging.getLogger("bench_serve")
ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "assets"


def _browser(pw: Any, fake: tuple[Path, Path] | None = None) -> Any:
    args = list(CHROMIUM_ARGS)
    if fake is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={fake[0]}", f"--use-file-for-fake-audio-capture={fake[1]}"]
    return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


def create_to_first_frame(srv: BackgroundServer, trials: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    values, post_ms = [], []
    with sync_playwright() as pw:
        browser = _browser(pw)
        for _ in range(trials):
            ctx = browser.new_context()
            page = ctx.new_page()
            t0 = time.time()
            status, _, body = create(srv.base, driver="none")
            post_ms.append((time.time() - t0) * 1000)
            if status != 201:
                raise RuntimeError(f"create failed: {status} {body}")
            page.goto(body["viewer_url"] + "&bare=1")
            ok = wait_for(lambda p=page: p.evaluate("window.puppetcam && window.puppetcam.firstFrameAt") is not None, 20)
            if ok:
                values.append(page.evaluate("window.puppetcam.firstFrameAt") - t0 * 1000)
            ctx.close()
            http("DELETE", f"{srv.base}/api/sessions/{body['id']}", token=body["token"])
        browser.close()
    return {"ms": [round(v, 1) for v in values], "p50_ms": percentiles(values)["p50"] if values else None,
            "post_answer_ms": percentiles(post_ms), "trials": trials, "aim_p50_ms": 1000}


def _mouth_open_times(images: list[tuple[float, np.ndarray]]) -> list[tuple[float, float]]:
    from src.capture.face_tracker import FaceTracker
    from src.core.face_mesh import measure

    out = []
    with FaceTracker(static_image_mode=True) as tracker:
        for t, img in images:
            faces = tracker.process(img)
            if faces:
                out.append((t, measure(faces[0].landmarks).mouth_open))
    return out


def say_to_first_audio(srv: BackgroundServer, trials: int) -> dict[str, Any]:
    audio_ms, mouth_ms, synth_ms = [], [], []
    for _ in range(trials):
        status, _, s = create(srv.base, driver="text")
        session = srv.engine.get(s["id"])
        said: dict[str, float] = {}

        def say(s: dict[str, Any] = s, said: dict[str, float] = said) -> None:
            time.sleep(1.0)
            said["t"] = time.monotonic()
            http("POST", f"{srv.base}/api/sessions/{s['id']}/say", {"text": "Hello there, nice to meet you."}, token=s["token"])

        got = asyncio.run(view(srv.base, s["id"], s["viewer_token"], 3.0, keep_images=200, on_connected=say))
        first = getattr(getattr(session, "speaker", None), "first_sample_at", None)  # local engine: the server's side
        if first is not None and "t" in said:
            synth_ms.append((first - said["t"]) * 1000)
        http("DELETE", f"{srv.base}/api/sessions/{s['id']}", token=s["token"])
        t_say = said.get("t")
        if t_say is None:
            continue
        t_audio = first_loud(got.audio, t_say)
        if t_audio is not None:
            audio_ms.append((t_audio - t_say) * 1000)
        opening = _mouth_open_times(got.images)
        rest = max((o for t, o in opening if t < t_say), default=0.0)
        t_mouth = next((t for t, o in opening if t >= t_say and o > rest + 0.03), None)
        if t_mouth is not None:
            mouth_ms.append((t_mouth - t_say) * 1000)
    return {"audio_ms": [round(v, 1) for v in audio_ms], "audio_p50_ms": percentiles(audio_ms)["p50"] if audio_ms else None,
            "mouth_open_ms": [round(v, 1) for v in mouth_ms],
            "mouth_open_p50_ms": percentiles(mouth_ms)["p50"] if mouth_ms else None,
            "server_first_sample_ms": [round(v, 1) for v in synth_ms],
            "viewer": "aiortc client on this machine", "aim_ms": 400,
            "parts": "server_first_sample_ms: say -> synthesised and its first sample in the session's audio; the "
                     "viewer hears it serve.audio_delay_ms (80) later plus network and the client's jitter buffer"}


def _fake_media(workdir: Path) -> tuple[Path, Path]:
    clip, speech = SHARED / "driver_carphone.mp4", SHARED / "speech_en.wav"
    y4m, wav = workdir / "cam.y4m", workdir / "mic.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-vf", "scale=352:288:flags=lanczos,fps=30", "-pix_fmt",
                    "yuv420p", str(y4m)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(speech), "-ar", "48000", "-ac", "1", str(wav)], check=True)
    return y4m, wav


def _concurrent(config: AppConfig, n: int, duration_s: float, fake: tuple[Path, Path]) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    cfg = config.model_copy(deep=True)
    cfg.serve.max_sessions = max(n, cfg.serve.max_sessions)
    cfg.serve.session_cpu_cores = 0.01  # measure, do not refuse
    with BackgroundServer(cfg) as srv, sync_playwright() as pw:
        browser = _browser(pw, fake)
        pages = []
        for _ in range(n):
            page = browser.new_context().new_page()
            page.goto(f"{srv.base}/")
            page.click("#start")
            pages.append(page)
        ok = all(wait_for(lambda p=p: p.evaluate("window.studio.frames") > 10 or p.evaluate("window.studio.error"), 60)
                 for p in pages)
        errors = [p.evaluate("window.studio.error") for p in pages if p.evaluate("window.studio.error")]
        if not ok or errors:
            browser.close()
            return {"sessions": n, "error": "; ".join(map(str, errors)) or "no frames"}
        time.sleep(3.0)
        f0 = [p.evaluate("window.studio.frames") for p in pages]
        t0 = time.monotonic()
        time.sleep(duration_s)
        f1 = [p.evaluate("window.studio.frames") for p in pages]
        dt = time.monotonic() - t0
        infos = [s.info() for s in srv.engine.list()]
        load = os.getloadavg()[0]
        browser.close()
    page_fps = [round((b - a) / dt, 1) for a, b in zip(f0, f1, strict=True)]
    p95 = [i["latency_ms"]["p95"] for i in infos]
    passed = all(f >= 25 for f in page_fps) and all(p is not None and p <= 150 for p in p95)
    return {"sessions": n, "page_decoded_fps": page_fps, "server_fps": [i["fps"] for i in infos],
            "capture_to_output_p95_ms": p95, "cpu_ms_per_frame": [i["cpu_ms_per_frame"] for i in infos],
            "loadavg_1m": round(load, 2), "passed": passed}


def concurrent_browser_sessions(config: AppConfig, max_sessions: int, duration_s: float) -> dict[str, Any]:
    why = chromium_missing()
    if why or not (SHARED / "driver_carphone.mp4").is_file():
        return {"skipped": why or f"{SHARED} absent"}
    runs = []
    best = 0
    with tempfile.TemporaryDirectory() as d:
        fake = _fake_media(Path(d))
        for n in range(1, max_sessions + 1):
            r = _concurrent(config, n, duration_s, fake)
            log.info("concurrent browser sessions: %s", r)
            runs.append(r)
            if not r.get("passed"):
                break
            best = n
    return {"largest_passing": best, "runs": runs, "criteria": "every page >= 25 fps decoded, every session's "
            "capture-to-output p95 <= 150 ms", "aim": 4}


def create_delete_cycles(srv: BackgroundServer, cycles: int) -> dict[str, Any]:
    import psutil

    from src.output.webrtc.server import release_memory

    proc = psutil.Process()

    def settle() -> tuple[int, float]:
        gc.collect()
        release_memory()
        time.sleep(0.3)
        return threading.active_count(), proc.memory_info().rss / 2**20

    s0 = create(srv.base, driver="browser")[2]  # warm-up: imports, caches
    http("DELETE", f"{srv.base}/api/sessions/{s0['id']}", token=s0["token"])
    threads0, rss0 = settle()
    for _ in range(cycles):
        status, _, s = create(srv.base, driver="browser")
        if status != 201:
            raise RuntimeError(f"create failed: {status} {s}")
        http("DELETE", f"{srv.base}/api/sessions/{s['id']}", token=s["token"])
    threads1, rss1 = settle()
    return {"cycles": cycles, "threads_before": threads0, "threads_after": threads1, "rss_mb_before": round(rss0, 1),
            "rss_mb_after": round(rss1, 1), "rss_growth_pct": round((rss1 - rss0) / rss0 * 100, 2)}


def _av_lag_ms(srv: BackgroundServer, s: dict[str, Any]) -> dict[str, float | None]:
    """One `say` watched by an aiortc viewer: first loud audio and first open mouth, and their difference."""
    said: dict[str, float] = {}

    def say() -> None:
        time.sleep(1.0)
        said["t"] = time.monotonic()
        http("POST", f"{srv.base}/api/sessions/{s['id']}/say", {"text": "Hello there, nice to meet you."}, token=s["token"])

    got = asyncio.run(view(srv.base, s["id"], s["viewer_token"], 3.0, keep_images=200, on_connected=say))
    t_say = said.get("t")
    if t_say is None:
        return {"audio_ms": None, "mouth_ms": None, "lag_ms": None}
    t_audio = first_loud(got.audio, t_say)
    opening = _mouth_open_times(got.images)
    rest = max((o for t, o in opening if t < t_say), default=0.0)
    t_mouth = next((t for t, o in opening if t >= t_say and o > rest + 0.03), None)
    audio = (t_audio - t_say) * 1000 if t_audio is not None else None
    mouth = (t_mouth - t_say) * 1000 if t_mouth is not None else None
    return {"audio_ms": audio, "mouth_ms": mouth, "lag_ms": audio - mouth if audio is not None and mouth is not None else None}


def soak(config: AppConfig, sessions: int, minutes: float) -> dict[str, Any]:
    """`sessions` text sessions speaking every few seconds for `minutes`: RSS and the audio-minus-mouth lag at a
    viewer after the first minute and at the end."""
    import psutil

    cfg = config.model_copy(deep=True)
    cfg.serve.session_cpu_cores = 0.01
    cfg.serve.max_sessions = max(sessions, cfg.serve.max_sessions)
    cfg.serve.idle_timeout_s = minutes * 60 + 600  # the measured session is quiet between its two measurements
    proc = psutil.Process()
    out: dict[str, Any] = {"sessions": sessions, "minutes": minutes}
    with BackgroundServer(cfg) as srv:
        made = [create(srv.base, driver="text")[2] for _ in range(sessions)]
        stop = threading.Event()

        def talk() -> None:
            i = 0
            while not stop.wait(4.0):
                for s in made[1:]:  # the first one is measured by the viewer
                    http("POST", f"{srv.base}/api/sessions/{s['id']}/say", {"text": f"Sentence number {i}, spoken."},
                         token=s["token"])
                i += 1

        talker = threading.Thread(target=talk, daemon=True)
        talker.start()
        t_end = time.monotonic() + minutes * 60
        time.sleep(min(60.0, minutes * 60 / 2))
        out["lag_1min"] = _av_lag_ms(srv, made[0])  # first: it loads the viewer's and the face tracker's code
        out["rss_mb_1min"] = round(proc.memory_info().rss / 2**20, 1)
        time.sleep(max(0.0, t_end - time.monotonic()))
        out["rss_mb_end"] = round(proc.memory_info().rss / 2**20, 1)
        out["lag_end"] = _av_lag_ms(srv, made[0])
        stop.set()
        talker.join(10)
        out["sessions_state"] = [s.info()["state"] for s in srv.engine.list()]
        out["fps_end"] = [s.info()["fps"] for s in srv.engine.list()]
    out["rss_change_pct"] = round((out["rss_mb_end"] - out["rss_mb_1min"]) / out["rss_mb_1min"] * 100, 2)
    a, b = out["lag_1min"]["lag_ms"], out["lag_end"]["lag_ms"]
    out["lag_drift_ms"] = round(b - a, 1) if a is not None and b is not None else None
    return out


def measure_serve(config: AppConfig, max_sessions: int, duration_s: float, trials: int = 5) -> dict[str, Any]:
    report: dict[str, Any] = {"note": "headless Chromium and the aiortc viewer run on the same machine as the server"}
    cfg = config.model_copy(deep=True)
    cfg.serve.session_cpu_cores = 0.01
    with BackgroundServer(cfg) as srv:
        if chromium_missing() is None:
            report["create_to_first_frame"] = create_to_first_frame(srv, trials)
        report["say_to_first_audio"] = say_to_first_audio(srv, trials)
        report["cycles"] = create_delete_cycles(srv, 50)
    report["concurrent_browser_sessions"] = concurrent_browser_sessions(config, max_sessions, duration_s)
    return report
