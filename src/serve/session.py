"""One avatar session: its animator, pipeline, voice, tracks and encoder, started and stopped as one.

A `Session` owns every thread, track and encoder it makes (`start()` makes them, `stop()`
ends and joins them); its methods are plain, thread-safe calls with JSON-ready answers,
so an engine can run it in this process (`local`) or inside an actor elsewhere. The
pipeline is the command line's `LivePipeline`; the video goes out through a WebRTC
output that serves no HTTP of its own (offers arrive through `offer()`); the voice is an
`AudioDriver` on a push stream mixing the browser's microphone, streamed PCM and text to speech.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from src.animation.base import BaseAnimationModel
from src.core.config import AppConfig
from src.core.frames import KEY_BGR
from src.core.run_state import RunState
from src.output.webrtc.output import WebRTCOutput
from src.pipeline.live import LivePipeline
from src.serve.browser import BrowserTransport
from src.serve.jitter import JitterBuffer
from src.serve.push_sources import STREAM_RATE_HZ, Mixer, PushCapture, PushInput
from src.serve.speech import Playing, SessionMouth, Speaker

log = logging.getLogger(__name__)

Driver = Literal["browser", "text", "audio", "none"]
DRIVERS: tuple[str, ...] = ("browser", "text", "audio", "none")
WS_RATES = (16000, 24000, 48000)
MIC_TARGET_MS = 40.0

AnimatorFactory = Callable[..., BaseAnimationModel]  # (config, name, source_path, live=True)


def default_animator_factory(config: AppConfig, name: str | None, source: str, *, live: bool) -> BaseAnimationModel:
    from src.animation.fallback import build_animator

    return build_animator(config, name, source, live=live)


@dataclass
class SessionSpec:
    portrait: str  # path of the portrait image
    driver: str = "browser"
    animator: str | None = None
    output_size_px: int | None = None
    background: str | None = None  # animation.background for this session (default: the server's)


class SessionError(Exception):
    """A request the session cannot do in its state (HTTP 409) or with this input (HTTP 400)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Session:
    """See the module doc. `prepare()` (slow: the animator and the portrait) before `start()`."""

    def __init__(self, session_id: str, spec: SessionSpec, config: AppConfig,
                 animator_factory: AnimatorFactory = default_animator_factory) -> None:
        self.id = session_id
        self.spec = spec
        own: dict[str, Any] = {}
        if spec.output_size_px is not None:
            own["output_size_px"] = spec.output_size_px
        if spec.background is not None:
            own["background"] = spec.background
        self.config = config.model_copy(update={"animation": config.animation.model_copy(update=own)})
        self.run_state = RunState.from_config(self.config)  # the studio's controls; the config stays read-only
        self._factory = animator_factory
        self.state = "created"
        self.reason: str | None = None
        self.created_at = time.time()
        self._created_mono = time.monotonic()
        self._lock = threading.RLock()
        self.animator: BaseAnimationModel | None = None
        self.pipe: LivePipeline | None = None
        self.output: WebRTCOutput | None = None
        self.audio: Any = None
        self.capture: PushCapture | None = None
        self.transport: BrowserTransport | None = None
        sc = self.config.serve
        ms = STREAM_RATE_HZ / 1000.0
        self.stream_in = JitterBuffer(int(sc.jitter_target_ms * ms), int(sc.jitter_max_ms * ms))
        self.mic = JitterBuffer(int(MIC_TARGET_MS * ms), int(sc.jitter_max_ms * ms)) if spec.driver == "browser" else None
        self.speaker = Speaker(self.config, on_start=self._on_utterance, name=f"session-{session_id}-tts")
        self.mixer = Mixer([self.speaker, self.stream_in, *([self.mic] if self.mic is not None else [])])
        self._last_activity = time.monotonic()
        self._frames_seen = 0
        self._frames_changed_at = time.monotonic()
        self.first_frame_at: float | None = None
        self.shared_models = 0  # the animator's ONNX models served by cross-session batch workers

    # -- lifecycle -----------------------------------------------------------------------------
    def prepare(self) -> None:
        """Load the animator and prepare the portrait (content-hash cached, like `prepare`)."""
        self.animator = self._factory(self.config, self.spec.animator, self.spec.portrait, live=True)
        self.state = "prepared"

    def start(self) -> None:
        with self._lock:
            if self.animator is None:
                self.prepare()
            assert self.animator is not None
            from src.audio import AudioDriver

            sid = self.id
            self.audio = AudioDriver("mic", self.config, input_streams=PushInput(self.mixer, f"session-{sid}-audio"))
            self.audio.label = self.audio.mic.label = f"session {sid} voice"
            if self.spec.driver == "browser":
                self.capture = PushCapture(fps=self.config.capture.fps)
            self.output = WebRTCOutput(None, self.config)
            self.output.listen = False
            self.output.min_audio_delay_s = self.config.serve.audio_delay_ms / 1000.0
            self.output.attach_audio(self.audio)
            features = None
            if self.animator.needs_audio_features:
                from src.animation.lipsync_unet import LatestMelWindow

                window = LatestMelWindow(self.config.pipeline.fps)
                self.audio.add_pcm_listener(window)
                features = lambda tf: window.latest()  # noqa: E731 - the newest complete window drives the next frame
            self.pipe = LivePipeline(self.config, self.animator, [self.output], capture=self.capture,
                                     mouth=SessionMouth(self.speaker, self.audio, self._audio_lag_s), features_at=features,
                                     state=self.run_state)
            self.pipe.freeze_gc = False  # other sessions come and go in this process: keep them collectable
            if self.capture is not None:
                self.capture.stop_event = self.pipe.stop_event
            self.transport = BrowserTransport(self.capture, self.mic)
            try:
                self.pipe.start()
                self.audio.start()
                self.speaker.start()
            except BaseException:
                self.stop()
                raise
            self.state = "running"
            log.info("session %s started (driver %s, animator %s)", sid, self.spec.driver, self.animator.name)

    def stop(self, reason: str | None = None) -> None:
        """End everything this session started; safe to call twice and from any thread."""
        with self._lock:
            if self.state == "stopped":
                return
            self.state = "stopping"
            if reason and not self.reason:
                self.reason = reason
            self.speaker.stop()
            out, transport = self.output, self.transport
            if out is not None and out.loop is not None and transport is not None:
                try:
                    out.loop.call_soon_threadsafe(transport.close)
                except RuntimeError:  # the loop already closed
                    pass
            if self.pipe is not None:
                self.pipe.stop()
            elif out is not None:
                out.close()
            if self.audio is not None:
                self.audio.stop()
            if self.animator is not None:
                try:
                    self.animator.unload_model()
                except Exception as exc:  # noqa: BLE001 - freeing must not fail the stop
                    log.debug("unload failed: %s", exc)
            self.animator = None
            self.pipe = None
            self.state = "stopped"
            log.info("session %s stopped%s", self.id, f" ({self.reason})" if self.reason else "")

    # -- media ---------------------------------------------------------------------------------
    def offer(self, sdp: str, role: Literal["studio", "viewer"], remote: str = "?") -> tuple[int, dict[str, Any]]:
        """Answer a browser's SDP offer. A studio's camera and microphone feed this session."""
        out, transport = self.output, self.transport
        if self.state != "running" or out is None or transport is None:
            return 409, {"error": f"session {self.id} is {self.state}; create a new session"}
        if role == "studio":
            on_peer = transport.attach
        else:
            viewer_only = BrowserTransport(None, None)
            viewer_only.channels = transport.channels  # captions reach viewers too

            def on_peer(pc: Any) -> None:
                viewer_only.attach(pc)

        self.touch()
        try:
            return out.offer(sdp, remote, on_peer)
        except (RuntimeError, TimeoutError):  # the session ended meanwhile (its loop closed)
            return 409, {"error": f"session {self.id} has ended; create a new session"}

    def say(self, text: str, voice: str) -> int:
        self._require_running()
        self.touch()
        try:
            return self.speaker.say(text, voice)
        except OverflowError as exc:
            raise SessionError(str(exc), 429) from None

    def interrupt(self) -> None:
        self._require_running()
        self.touch()
        self.speaker.interrupt()
        self.stream_in.clear()
        self._send({"type": "interrupt"})

    def push_pcm(self, samples_48k: np.ndarray) -> None:
        """Streamed voice (already at 48 kHz mono float32) into the jitter buffer."""
        self.touch()
        self.stream_in.push(samples_48k)

    def end_pcm(self) -> None:
        self.stream_in.flush()

    def set_controls(self, *, reset_neutral: bool = False, motion_mode: str | None = None,
                     mouth_owner: str | None = None, pose_gain: float | None = None,
                     expression_gain: float | None = None) -> dict[str, Any]:
        self._require_running()
        self.touch()
        state = self.run_state
        if reset_neutral and self.pipe is not None:
            self.pipe.controls.reset_neutral()
        if motion_mode is not None:
            state.motion_mode = "absolute" if motion_mode == "absolute" else "relative"
        if mouth_owner is not None:
            state.mouth_owner = "webcam" if mouth_owner == "webcam" else "audio"
        if pose_gain is not None:
            state.pose_gain = pose_gain
        if expression_gain is not None:
            state.expression_gain = expression_gain
        return self.controls()

    def controls(self) -> dict[str, Any]:
        return dataclasses.asdict(self.run_state)

    def set_expression(self, name: str, intensity: float = 0.8, hold_s: float | None = None) -> dict[str, Any]:
        """Show an expression over the driving motion (see src/animation/meshwarp/expressions.py); its state back."""
        from src.animation.meshwarp.expressions import expression_on, expression_state

        self._require_running()
        self.touch()
        try:
            expression_on(self.animator, name, intensity, hold_s)
        except RuntimeError as exc:  # an animator without expressions (the neural ones)
            raise SessionError(str(exc), 409) from None
        return expression_state(self.animator) or {"name": "none", "intensity": 0.0, "shown": 0.0}

    def set_background(self, spec: str) -> dict[str, Any]:
        """Show another background from the next frame on: keep | blur | color:#RRGGBB | transparent (a picture is
        an upload when the session is created). 400 for a bad spec, 409 for an animator without a background layer."""
        from src.core.background_spec import validate_spec
        from src.core.errors import ConfigError

        self._require_running()
        self.touch()
        try:
            if validate_spec(spec).lower().startswith("image:"):
                raise SessionError("background image:PATH: not over HTTP; upload the picture as the background_image "
                                   "file when you create the session")
            switch = getattr(self.animator, "set_background", None)
            if switch is None:
                raise SessionError(f"background: the {self.animator.name if self.animator else '?'} animator draws no "
                                   "separate background; create the session with animator=meshwarp", 409)
            switch(spec)
        except ConfigError as exc:
            raise SessionError(str(exc).replace("animation.background ", "background ", 1)) from None
        except RuntimeError as exc:  # a portrait prepared without layers
            raise SessionError(f"background: {exc}", 409) from None
        return {"background": self._background(), "transparent": self._transparent()}

    def _background(self) -> str:
        return str(getattr(self.animator, "background", self.config.animation.background))

    def _transparent(self) -> bool:
        return self._background().strip().lower() == "transparent"

    def _expression(self) -> dict[str, Any] | None:
        from src.animation.meshwarp.expressions import expression_state

        return expression_state(self.animator) if self.animator is not None else None

    def _audio_lag_s(self) -> float:
        out = self.output
        return out.audio_delay_s - out.video_delay_s if out is not None else 0.0

    # -- captions ------------------------------------------------------------------------------
    def _on_utterance(self, p: Playing) -> None:
        from src.audio.tts.captions import caption_cues

        out = self.output
        delay_s = out.audio_delay_s if out is not None else 0.0  # when the viewers hear it
        cues = [{"start_ms": round((c.start_s + delay_s) * 1000), "end_ms": round((c.end_s + delay_s) * 1000),
                 "text": c.text} for c in caption_cues(p.words)]
        self._send({"type": "captions", "text": p.text, "cues": cues})

    def _send(self, message: dict[str, Any]) -> None:
        out, transport = self.output, self.transport
        if out is None or out.loop is None or transport is None:
            return
        try:
            out.loop.call_soon_threadsafe(transport.send, message)
        except RuntimeError:
            pass

    # -- state ---------------------------------------------------------------------------------
    def _require_running(self) -> None:
        if self.state != "running":
            raise SessionError(f"session {self.id} is {self.state}; create a new session", 409)

    def touch(self) -> None:
        self._last_activity = time.monotonic()

    def idle_s(self) -> float:
        """Seconds without driver input, requests or viewers."""
        now = time.monotonic()
        last = self._last_activity
        if self.transport is not None:
            last = max(last, self.transport.last_input)
        if self.speaker.speaking or len(self.stream_in):
            last = now
        if self.output is not None and self.output.viewer_count > 0:
            last = now
        return now - last

    def failure(self) -> str | None:
        """Why this session can no longer stream (None while it is healthy)."""
        pipe, out = self.pipe, self.output
        if pipe is None or out is None or self.state != "running":
            return None
        for exc in pipe.errors():
            return f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if out.frames != self._frames_seen:
            self._frames_seen = out.frames
            self._frames_changed_at = now
            if self.first_frame_at is None:
                self.first_frame_at = now
            return None
        animate = next((t for t in pipe.threads if t.name == "animate"), None)
        if animate is not None and animate.first_error and now - self._frames_changed_at > self.config.serve.failure_timeout_s:
            return f"the animator fails on every frame ({animate.first_error})"
        return None

    def info(self) -> dict[str, Any]:
        out, pipe = self.output, self.pipe
        stats = out.stats() if out is not None else {}
        stages = pipe.metrics.snapshot() if pipe is not None else {}
        cpu_ms = sum(s["ms"]["p50"] for s in stages.values() if s.get("frames") and s["ms"]["p50"] == s["ms"]["p50"])
        lat = stats.get("latency_ms") or {}
        return {
            "id": self.id,
            "state": self.state,
            "reason": self.reason,
            "driver": self.spec.driver,
            "animator": self.animator.name if self.animator is not None else self.spec.animator,
            "viewers": stats.get("viewers", 0),
            "fps": stats.get("fps", 0.0),
            "latency_ms": {"p50": lat.get("p50"), "p95": lat.get("p95")},
            "drops": stats.get("drops", 0),
            "frames": stats.get("frames", 0),
            "cpu_ms_per_frame": round(cpu_ms, 2),
            "tts_queue": self.speaker.queue_length(),
            "speaking": self.speaker.speaking,
            "audio_buffer_ms": round(len(self.stream_in) / STREAM_RATE_HZ * 1000.0, 1),
            "audio_underruns": self.stream_in.underruns,
            "controls": self.controls(),
            "expression": self._expression(),
            "background": self._background(),
            "transparent": self._transparent(),
            "key_color": "#{2:02X}{1:02X}{0:02X}".format(*KEY_BGR),
            "created_at": self.created_at,
            "idle_s": round(self.idle_s(), 1),
        }
