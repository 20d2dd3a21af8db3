"""`--output webrtc[:HOST:PORT]`: a live preview page served over WebRTC.

The server (aiohttp + aiortc) runs on its own asyncio loop in a named thread
("webrtc-server"); VP8 encoding runs in that loop's bounded executor
("webrtc-encode_N"). `write()` is called from the fan-out thread: it converts the
frame to I420 once (for all viewers), stores it as the newest and wakes the loop
at most once per pending frame, so it never blocks and never queues up work.
`close()` closes every viewer, stops the loop, shuts the executor down and joins
the thread: nothing is left running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2

from src.audio.pcm import PcmSource
from src.core.config import AppConfig, WebRTCOutputConfig
from src.core.errors import OutputError
from src.core.frames import RenderedFrame
from src.core.runtime.metrics import percentiles
from src.core.runtime.threads import name_os_thread
from src.output.base import OUTPUTS, Output, PipelineControls
from src.output.webrtc.auth import TOKEN_QUERY, is_loopback, parse_host_port, resolve_token
from src.output.webrtc.server import WebRTCServer
from src.output.webrtc.tracks import AudioFanIn, FrameHub, HubFrame

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
LATENCY_WINDOW = 300  # frames kept for the latency percentiles
FPS_WINDOW_S = 2.0
DELAY_EMA = 0.1  # smoothing of the video latency that audio is delayed by


def _started_executor() -> ThreadPoolExecutor:
    """The encoders' pool, all threads started now so the thread count stays flat while viewers come and go.

    Each viewer has at most one encode in flight, so more threads than cores only add contention.
    """
    workers = (os.cpu_count() or 2) + 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webrtc-encode")
    barrier = threading.Barrier(workers)

    def meet() -> None:
        try:
            barrier.wait(timeout=2.0)
        except threading.BrokenBarrierError:
            pass

    for f in [pool.submit(meet) for _ in range(workers)]:
        f.result()
    return pool


class WebRTCOutput(Output):
    """Serves the live frames to any number of browser viewers (newest frame each)."""

    name = "webrtc"
    realtime = True
    accepts_audio = True

    def __init__(self, arg: str | None = None, config: AppConfig | None = None) -> None:
        self.cfg = config.output.webrtc if config else WebRTCOutputConfig()
        self.host, self.port = parse_host_port(arg, self.cfg.host, self.cfg.port)
        self.token: str | None = None
        self.controls = PipelineControls()
        self.frames = 0
        self._audio_source: PcmSource | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: WebRTCServer | None = None
        self._hub: FrameHub | None = None
        self._lock = threading.Lock()
        self._latest: HubFrame | None = None
        self._wake_pending = False
        self._seq = 0
        self._write_ts: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._latency_s: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._delay_s = 0.0
        self._started_at = time.monotonic()
        self.listen = True  # False: no HTTP server of its own; offers come through offer() (`serve` sessions)
        self.min_audio_delay_s = 0.0  # audio plays at least this late (an audio path slower than the video's)

    # --- integration points ----------------------------------------------------------------------

    def bind_controls(self, controls: PipelineControls) -> None:
        self.controls = controls

    def attach_audio(self, source: PcmSource) -> None:
        """Give viewers an audio track from `source.add_pcm_listener(cb)` blocks (call before or after open)."""
        self._audio_source = source
        if self._server is not None and self._server.audio is not None:
            self._server.audio.detach()  # replacing an earlier source
        if self._server is not None and self._loop is not None:
            fan_in = self._make_fan_in(source)
            self._loop.call_soon_threadsafe(setattr, self._server, "audio", fan_in)

    def offer(self, sdp: str, remote: str, on_peer: Callable[[Any], None] | None = None) -> tuple[int, dict[str, Any]]:
        """Answer a validated SDP offer from any thread: (200, answer) or (status, {"error": ...}).
        `on_peer(pc)` runs on the server loop before the offer is applied."""
        server, loop = self._server, self._loop
        if server is None or loop is None or server.hub.closed:
            return 503, {"error": "the stream is not running"}
        return asyncio.run_coroutine_threadsafe(server.accept_offer(sdp, remote, on_peer), loop).result(START_TIMEOUT_S)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The server's event loop (tracks and data channels live there)."""
        return self._loop

    def _make_fan_in(self, source: PcmSource) -> AudioFanIn:
        return AudioFanIn(source, self.cfg.audio_buffer_ms, lambda: self.audio_delay_s)

    @property
    def video_delay_s(self) -> float:
        """The smoothed capture-to-output latency of the video."""
        return self._delay_s

    @property
    def audio_delay_s(self) -> float:
        """How late after capture the audio plays: the video's latency, or `min_audio_delay_s` if longer."""
        return max(self._delay_s, self.min_audio_delay_s)

    @property
    def url(self) -> str:
        """The page's address (with the token when one is required)."""
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        query = f"?{TOKEN_QUERY}={self.token}" if self.token else ""
        return f"http://{host}:{self.port}/{query}"

    @property
    def viewer_count(self) -> int:
        return self._server.viewer_count if self._server is not None else 0

    # --- Output ----------------------------------------------------------------------------------

    def open(self, width: int, height: int, fps: float) -> None:
        if self._thread is not None:
            raise RuntimeError("WebRTCOutput.open called twice")
        self.token, generated = resolve_token(self.host, self.cfg.token)
        self._hub = FrameHub()
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_started_executor())
        self._loop = loop
        self._server = WebRTCServer(self.cfg, self.host, self.port, self.token, self._hub,
                                    self.stats, self._stages, self._ready)
        if self._audio_source is not None:
            self._server.audio = self._make_fan_in(self._audio_source)
        self._thread = threading.Thread(target=self._run_loop, name="webrtc-server", daemon=True)
        self._thread.start()
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._server.start(self.listen), loop).result(START_TIMEOUT_S)
        except BaseException as exc:
            self._stop_loop(serving=False)
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f"--output webrtc: server did not start on {self.host}:{self.port} ({exc}); "
                              "try another port with --output webrtc:127.0.0.1:8081") from None
        if not self.listen:
            return
        if generated:
            # Printed once, never logged: whoever reads the log must not learn the token.
            print(f"WebRTC preview on {self.host}:{self.port} needs a token; open {self.url}", flush=True)
        elif not is_loopback(self.host) or self.token:
            log.info("WebRTC preview at http://%s:%d/ (token required)", self.host, self.port)
        else:
            log.info("WebRTC preview at %s", self.url)

    def write(self, frame: RenderedFrame) -> None:
        now = time.monotonic()
        latency = now - frame.capture_ts
        with self._lock:
            self.frames += 1
            self._write_ts.append(now)
            self._latency_s.append(latency)
            self._delay_s = latency if self.frames == 1 else self._delay_s + DELAY_EMA * (latency - self._delay_s)
        server, loop = self._server, self._loop
        if server is None or loop is None or server.viewer_count == 0:
            return  # nobody is watching: skip the conversion
        image = frame.image
        h, w = image.shape[:2]
        if h % 2 or w % 2:  # I420 needs even sizes
            image = image[: h - h % 2, : w - w % 2]
        item = HubFrame(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), frame.capture_ts, self._seq)
        self._seq += 1
        with self._lock:
            self._latest = item
            if self._wake_pending:
                return  # the loop has not taken the previous one yet: it will take this one
            self._wake_pending = True
        try:
            loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:  # the loop is closing
            pass

    def _deliver(self) -> None:
        with self._lock:
            item, self._latest = self._latest, None
            self._wake_pending = False
        if item is not None and self._hub is not None:
            self._hub.publish(item)

    def close(self) -> None:
        if self._thread is None:
            return
        self._stop_loop(serving=True)
        if self._server is not None and self._server.audio is not None:
            self._server.audio.detach()
        log.info("WebRTC preview closed after %d frames, %d viewers", self.frames,
                 self._server.viewers_total if self._server else 0)

    # --- the loop thread -------------------------------------------------------------------------

    def _run_loop(self) -> None:
        name_os_thread()
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()

    def _stop_loop(self, serving: bool) -> None:
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None:
            return
        if serving and server is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(server.shutdown(), loop).result(STOP_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - still stop the loop below
                log.warning("WebRTC shutdown did not finish cleanly (%s)", type(exc).__name__)
        if thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                log.warning("WebRTC server thread did not stop within %.0f s", STOP_TIMEOUT_S)
        self._thread = None

    # --- numbers for the page, /stats and /metrics -----------------------------------------------

    def _ready(self) -> bool:
        try:
            return bool(self.controls.ready())
        except Exception:  # noqa: BLE001 - a health check must answer
            return False

    def _stages(self) -> dict[str, dict[str, Any]]:
        metrics = self.controls.metrics
        return metrics.snapshot() if metrics is not None else {}

    def fps(self) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._write_ts if now - t <= FPS_WINDOW_S]
        if len(recent) < 2 or recent[-1] == recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def stats(self) -> dict[str, Any]:
        """fps, capture-to-output latency, drops and viewers (JSON-ready; any thread)."""
        with self._lock:
            lat_ms = [x * 1000.0 for x in self._latency_s]
            frames = self.frames
        metrics = self.controls.metrics
        drops = sum(m.dropped for m in (metrics.get(n) for n in metrics.names()) if m is not None) if metrics else 0
        server = self._server
        return {
            "fps": round(self.fps(), 2),
            "latency_ms": percentiles(lat_ms) if lat_ms else {"p50": None, "p95": None},
            "frames": frames,
            "drops": drops,
            "viewers": server.viewer_count if server else 0,
            "viewers_total": server.viewers_total if server else 0,
            "viewer_skipped": server.skipped_total() if server else 0,
            "refused": dict(server.refused) if server else {},  # HTTP status -> offers/requests refused
            "audio": self._audio_source is not None,
            "ready": self._ready(),
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }


OUTPUTS.register("webrtc", WebRTCOutput)
