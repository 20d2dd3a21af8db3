"""Benchmarks for the live outputs: WebRTC into headless Chromium, the virtual camera, viewer churn.

Used by scripts/benchmark.py; also runnable alone with a synthetic source:

    .venv/bin/python -m src.bench.outputs webrtc --viewers 4 --duration 10
    .venv/bin/python -m src.bench.outputs vcam --duration 10
    .venv/bin/python -m src.bench.outputs churn --cycles 50

A *frame source* is any callable `source(outputs) -> context manager`: on enter it
opens the outputs (e.g. through `OutputFanout.open`) and starts writing
RenderedFrames to them; on exit it stops and closes them. `SyntheticFrameSource`
does this with a moving portrait; the real pipeline does it by running with the
outputs added. Glass-to-glass figures need stamped frames (`stamp()` with each
frame's capture time; for the pipeline: `--set output.stamp_capture_time=true`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import psutil

from src.bench.recording_vcam import register_recording_backend
from src.core.config import PROJECT_ROOT, AppConfig, load_config
from src.core.frames import RenderedFrame
from src.core.runtime.metrics import PipelineMetrics, percentiles
from src.core.runtime.pacing import Pacer
from src.output.base import Output, PipelineControls
from src.output.timestamp_code import capture_wall_ms, stamp
from src.output.vcam import VirtualCameraOutput
from src.output.webrtc import WebRTCOutput
from src.output.webrtc.server import release_memory
from src.pipeline.fanout import OutputFanout

log = logging.getLogger("bench_outputs")

PORTRAIT = PROJECT_ROOT / "assets" / "portrait.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
RECORDING_BACKEND = "bench-recording"

FrameSource = Callable[[Sequence[Output]], contextlib.AbstractContextManager[Any]]


# --- a synthetic frame source ------------------------------------------------------------------


class SyntheticFrameSource:
    """Feeds outputs a portrait that sways left-right, at `fps`, through a real OutputFanout.

    `with source([out1, out2]) as s:` opens the outputs, starts the fan-out threads and a
    producer thread, and on exit stops everything and closes the outputs. Each frame's
    capture time is stamped into its pixels (`stamp_frames`).
    """

    def __init__(self, fps: float = 30.0, size_px: int = 512, image: Path | str = PORTRAIT, stamp_frames: bool = True,
                 sway_px: int = 6, queue_size: int = 2) -> None:
        base = cv2.imread(str(image), cv2.IMREAD_COLOR)
        if base is None:
            raise FileNotFoundError(f"cannot read {image}")
        h, w = base.shape[:2]
        side = min(h, w)
        base = base[(h - side) // 2 : (h - side) // 2 + side, (w - side) // 2 : (w - side) // 2 + side]
        base = cv2.resize(base, (size_px, size_px), interpolation=cv2.INTER_AREA)
        n = 24
        self._frames = [np.roll(base, int(round(sway_px * math.sin(2 * math.pi * k / n))), axis=1) for k in range(n)]
        self.fps = fps
        self.size_px = size_px
        self.stamp_frames = stamp_frames
        self.queue_size = queue_size
        self.produced = 0
        self.put_ms: list[float] = []  # time to hand each frame to every output's buffer
        self.metrics = PipelineMetrics()
        self.controls = PipelineControls(metrics=self.metrics, ready=lambda: self.produced > 0)

    def make_frame(self, index: int) -> RenderedFrame:
        image = self._frames[index % len(self._frames)].copy()
        ts = time.monotonic()
        if self.stamp_frames:
            stamp(image, capture_wall_ms(ts))
        return RenderedFrame(image=image, capture_ts=ts, index=index)

    @contextlib.contextmanager
    def __call__(self, outputs: Sequence[Output]) -> Iterator[SyntheticFrameSource]:
        stop = threading.Event()
        fanout = OutputFanout(outputs, self.metrics, stop, live=True, queue_size=self.queue_size)
        fanout.open(self.size_px, self.size_px, self.fps, self.controls)
        fanout.start()
        done = threading.Event()
        producer_metrics = self.metrics.stage("synthetic-source")

        def produce() -> None:
            pacer = Pacer(self.fps, done)
            i = 0
            while not done.is_set():
                pacer.wait()
                if done.is_set():
                    break
                t0 = time.perf_counter()
                frame = self.make_frame(i)
                t1 = time.perf_counter()
                for buf in fanout.buffers:
                    buf.put(frame)
                self.put_ms.append((time.perf_counter() - t1) * 1000.0)
                producer_metrics.record(time.perf_counter() - t0)
                self.produced += 1
                i += 1

        thread = threading.Thread(target=produce, name="synthetic-source", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join(2.0)
            for buf in fanout.buffers:
                buf.close()
            for t in fanout.threads:
                t.join(5.0)
            stop.set()
            for t in fanout.threads:
                t.join(2.0)


def pipeline_frame_source(make_pipeline: Callable[[Sequence[Output]], Any]) -> FrameSource:
    """A frame source from the real pipeline: `make_pipeline(outputs)` returns an unstarted
    pipeline (e.g. `LivePipeline(config, animator, outputs, stamper=stamp)`); it is started on
    enter (which opens the outputs) and stopped on exit (which closes them)."""

    @contextlib.contextmanager
    def source(outputs: Sequence[Output]) -> Iterator[Any]:
        pipe = make_pipeline(outputs)
        pipe.start()
        try:
            yield pipe
        finally:
            pipe.stop()

    return source


# --- headless Chromium viewers -----------------------------------------------------------------


def chromium_missing() -> str | None:
    """Why browser benchmarks cannot run here (None if they can)."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (Debian package 'chromium')"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


class ChromiumViewers:
    """Headless Chromium tabs watching the preview page, one browser context per viewer."""

    def __init__(self, url: str, viewers: int = 1, bare: bool = True) -> None:
        sep = "&" if "?" in url else "?"
        self.url = url + (f"{sep}bare=1" if bare else "")
        self.count = viewers
        self.pages: list[Any] = []
        self._contexts: list[Any] = []
        self._pw: Any = None
        self.browser: Any = None
        self.console_errors: list[str] = []

    def __enter__(self) -> ChromiumViewers:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for _ in range(self.count):
                self.add()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def add(self) -> Any:
        ctx = self.browser.new_context(viewport={"width": 640, "height": 640})
        page = ctx.new_page()
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.goto(self.url)
        self._contexts.append(ctx)
        self.pages.append(page)
        return page

    def remove(self, page: Any) -> None:
        i = self.pages.index(page)
        self.pages.pop(i)
        self._contexts.pop(i).close()

    def frames_decoded(self, page: Any) -> int:
        return int(page.evaluate("(() => { const s = puppetcam.stats; return s.length ? s[s.length-1].framesDecoded : 0; })()"))

    def wait_decoding(self, timeout_s: float = 20.0, pages: Sequence[Any] | None = None) -> None:
        """Wait until every page has decoded frames; RuntimeError naming the page's error if not."""
        deadline = time.monotonic() + timeout_s
        for page in pages or self.pages:
            while self.frames_decoded(page) <= 0:
                if time.monotonic() > deadline:
                    err = page.evaluate("puppetcam.error") or page.evaluate("puppetcam.connectionState")
                    raise RuntimeError(f"viewer did not decode a frame within {timeout_s:.0f} s ({err})")
                page.wait_for_timeout(100)

    def reset(self) -> None:
        for page in self.pages:
            page.evaluate("puppetcam.reset()")

    def collect(self) -> list[dict[str, Any]]:
        script = "JSON.stringify({frameTimes: puppetcam.frameTimes, g2g: puppetcam.g2g, stats: puppetcam.stats})"
        return [json.loads(page.evaluate(script)) for page in self.pages]

    def kill(self) -> int:
        """SIGKILL this helper's Chromium processes (a crashed browser: no goodbye is sent). Returns how many."""
        killed = 0
        for proc in psutil.Process().children(recursive=True):
            try:
                if proc.exe() == os.path.realpath(CHROMIUM) or "chrom" in proc.name():
                    os.kill(proc.pid, signal.SIGKILL)
                    killed += 1
            except (psutil.Error, ProcessLookupError):
                continue
        self.pages.clear()
        self._contexts.clear()
        self.browser = None
        return killed

    def __exit__(self, *exc: object) -> None:
        try:
            if self.browser is not None:
                self.browser.close()
        finally:
            self.browser = None
            if self._pw is not None:
                self._pw.stop()
                self._pw = None


# --- figures -----------------------------------------------------------------------------------


def freeze_count(frame_times_ms: Sequence[float]) -> int:
    """Gaps >= max(3 x mean gap, mean gap + 150 ms) between shown frames (the WebRTC stats definition)."""
    t = np.asarray(frame_times_ms, dtype=np.float64)
    if t.size < 3:
        return 0
    gaps = np.diff(t)
    mean = float(gaps.mean())
    return int(np.count_nonzero(gaps >= max(3 * mean, mean + 150.0)))


def viewer_figures(sample: dict[str, Any]) -> dict[str, Any]:
    """fps (decoded frames from getStats over the window), freezes and glass-to-glass for one viewer."""
    stats = sample["stats"]
    fps = 0.0
    chromium_freezes = 0
    if len(stats) >= 2 and stats[-1]["t"] > stats[0]["t"]:
        fps = (stats[-1]["framesDecoded"] - stats[0]["framesDecoded"]) / ((stats[-1]["t"] - stats[0]["t"]) / 1000.0)
        chromium_freezes = stats[-1]["freezeCount"] - stats[0]["freezeCount"]
    return {
        "fps": round(fps, 2),
        "freezes": freeze_count(sample["frameTimes"]),
        "chromium_freeze_count": chromium_freezes,
        "frames_shown": len(sample["frameTimes"]),
        "g2g_ms": sample["g2g"],
    }


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    return {k: v for k, v in percentiles(list(values)).items()}  # float -> float | None


def _port0(config: AppConfig | None) -> str:
    host = config.output.webrtc.host if config else "127.0.0.1"
    return f"{host}:0" if ":" not in host else f"[{host}]:0"


def bench_webrtc(frame_source: FrameSource, viewers: int, duration_s: float, warmup_s: float = 3.0,
                 config: AppConfig | None = None, bare: bool = True) -> dict[str, Any]:
    """N headless Chromium viewers of a WebRTC output fed by `frame_source`.

    Returns {viewers, fps_per_viewer_min, fps_per_viewer, glass_to_glass_ms: {p50, p95}, freezes,
    chromium_freeze_count, duration_s, server}. fps counts decoded frames (getStats framesDecoded);
    freezes use requestVideoFrameCallback times; glass-to-glass reads the stamped pixels in the page.
    """
    reason = chromium_missing()
    if reason:
        raise RuntimeError(f"bench_webrtc: {reason}")
    out = WebRTCOutput(_port0(config), config)
    with frame_source([out]), ChromiumViewers(out.url, viewers, bare=bare) as browsers:
        browsers.wait_decoding()
        time.sleep(warmup_s)
        browsers.reset()
        time.sleep(duration_s)
        samples = browsers.collect()
        server = out.stats()
    per = [viewer_figures(s) for s in samples]
    g2g = [x for p in per for x in p["g2g_ms"]]
    return {
        "viewers": viewers,
        "fps_per_viewer_min": min(p["fps"] for p in per),
        "fps_per_viewer": [p["fps"] for p in per],
        "glass_to_glass_ms": _pcts(g2g),
        "stamped_frames_read": len(g2g),
        "freezes": sum(p["freezes"] for p in per),
        "chromium_freeze_count": sum(p["chromium_freeze_count"] for p in per),
        "duration_s": duration_s,
        "server": server,
    }


def bench_vcam(frame_source: FrameSource, duration_s: float, warmup_s: float = 1.0,
               config: AppConfig | None = None) -> dict[str, Any]:
    """The virtual camera output into the recording backend (what a camera app would get).

    Returns {fps, glass_to_glass_ms: {p50, p95}, repeats, frames_in, skipped, sent, format, size}.
    """
    rec = register_recording_backend(RECORDING_BACKEND)
    cfg = (config or load_config()).model_copy(deep=True)
    cfg.output.vcam.backend = RECORDING_BACKEND
    cfg.output.vcam.device = None
    out = VirtualCameraOutput(None, cfg)
    with frame_source([out]):
        time.sleep(warmup_s)
        t0 = time.monotonic()
        sent0, repeats0 = out.stats.sent, out.stats.repeats
        time.sleep(duration_s)
        t1 = time.monotonic()
        sent1, repeats1 = out.stats.sent, out.stats.repeats
        backend = rec.instances[-1]
    sends = [t for t in backend.send_ts if t0 <= t <= t1]
    fps = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) >= 2 and sends[-1] > sends[0] else 0.0
    g2g = [ms for ms, t in zip(backend.latency_ms, backend.latency_ts, strict=True) if t0 <= t <= t1]
    return {
        "fps": round(fps, 2),
        "glass_to_glass_ms": _pcts(g2g),
        "sent": sent1 - sent0,
        "repeats": repeats1 - repeats0,
        "frames_in": out.stats.frames_in,
        "skipped": out.stats.skipped,
        "format": backend.fourcc,
        "size": [backend.width, backend.height],
        "duration_s": duration_s,
    }


class _ErrorCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def _wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def bench_churn(frame_source: FrameSource, cycles: int = 50, config: AppConfig | None = None) -> dict[str, Any]:
    """Viewers connect (until a frame is decoded) and leave, `cycles` times, one after another.

    Thread count and RSS of this process are measured after one warm-up cycle and after the
    last; warnings/errors logged meanwhile are counted.
    """
    reason = chromium_missing()
    if reason:
        raise RuntimeError(f"bench_churn: {reason}")
    out = WebRTCOutput(_port0(config), config)
    counter = _ErrorCounter()
    proc = psutil.Process()
    with frame_source([out]), ChromiumViewers(out.url, 0) as browsers:

        def cycle() -> None:
            page = browsers.add()
            browsers.wait_decoding(pages=[page])
            browsers.remove(page)
            if not _wait_for(lambda: out.viewer_count == 0, 10.0):
                raise RuntimeError("a viewer that closed its tab was not cleaned up within 10 s")

        def settle() -> tuple[int, int]:
            # Count what is retained, not garbage waiting for a collection.
            time.sleep(0.5)
            gc.collect()
            release_memory()
            return threading.active_count(), proc.memory_info().rss

        cycle()  # warm-up: the page, codecs and pools exist from here on
        threads_before, rss_before = settle()
        logging.getLogger().addHandler(counter)
        try:
            t0 = time.monotonic()
            for _ in range(cycles):
                cycle()
            elapsed = time.monotonic() - t0
        finally:
            logging.getLogger().removeHandler(counter)
        threads_after, rss_after = settle()
        viewers_left = out.viewer_count
        total = out.stats()["viewers_total"]
    return {
        "cycles": cycles,
        "seconds": round(elapsed, 1),
        "viewers_total": total,
        "viewers_left": viewers_left,
        "threads_before": threads_before,
        "threads_after": threads_after,
        "rss_mb_before": round(rss_before / 2**20, 1),
        "rss_mb_after": round(rss_after / 2**20, 1),
        "rss_change_pct": round(100.0 * (rss_after - rss_before) / rss_before, 2),
        "warnings_logged": counter.records,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["webrtc", "vcam", "churn"])
    ap.add_argument("--viewers", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--cycles", type=int, default=50)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", type=int, default=512)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    source = SyntheticFrameSource(fps=args.fps, size_px=args.size)
    if args.what == "webrtc":
        result = bench_webrtc(source, args.viewers, args.duration, args.warmup)
    elif args.what == "vcam":
        result = bench_vcam(source, args.duration, min(args.warmup, 1.0))
    else:
        result = bench_churn(source, args.cycles)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
