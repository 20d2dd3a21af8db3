"""The threaded pipeline: capture -> landmarks -> animate -> outputs.

Live (`LivePipeline`): bounded newest-wins buffers between stages (drops are
counted), pacing to the target fps, every frame carrying its capture time to
the outputs. With no driver, or when the driver stalls, the animate stage
ticks on its own so the avatar never freezes.

Offline (`render`): the same stages with lossless buffers, batched animation,
every driver frame rendered in order, as fast as the machine allows.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from src.animation.base import AnimationInput, BaseAnimationModel
from src.animation.meshwarp.expressions import expression_on
from src.animation.motion.mixer import MotionMixer
from src.capture.face_motion import FaceMotionExtractor
from src.capture.face_tracker import FaceTracker
from src.capture.sources import CaptureSource
from src.core.config import AppConfig
from src.core.frames import MouthShape, RenderedFrame, TrackedFrame, VideoFrame
from src.core.run_state import RunState
from src.core.runtime.metrics import PipelineMetrics
from src.core.runtime.pacing import Pacer
from src.core.runtime.ring_buffer import BufferClosed
from src.core.runtime.stage import EndOfStream
from src.output.alpha import key_over
from src.output.base import Output, PipelineControls
from src.pipeline.graph import StageGraph
from src.pipeline.onset_wake import OnsetWake

log = logging.getLogger(__name__)

ONSET_OPEN_FRACTION = 0.1  # an audio mouth opening beyond this fraction of its range is an onset
ONSET_POLL_S = 0.004  # how often a waiting tick looks for an onset
MIN_ONSET_GAP_S = 0.012  # never two frames closer than this


class MouthSource(Protocol):
    """What the animate stage needs from an audio driver."""

    def mouth_at(self, t: float) -> MouthShape: ...


class FrameStamper(Protocol):
    def __call__(self, image: np.ndarray, wall_ms: int, /) -> None: ...


def _wall_ms(capture_ts: float) -> int:
    """A monotonic capture time as wall-clock milliseconds (for stamping into pixels)."""
    return int(round((time.time() - (time.monotonic() - capture_ts)) * 1000.0))


@dataclass
class AnimateStage:
    """Turns tracked frames into rendered frames: mixes motion, asks the animator, stamps."""

    config: AppConfig
    animator: BaseAnimationModel
    mouth: MouthSource | None = None
    mouth_at_frame: Callable[[TrackedFrame], MouthShape | None] | None = None
    features_at: Callable[[TrackedFrame], np.ndarray | None] | None = None  # audio windows for audio-driven models
    stamper: FrameStamper | None = None
    first_frame: threading.Event = field(default_factory=threading.Event)
    state: RunState | None = None  # the run-time toggles (motion mode, mouth owner); from the config if not given
    mixer: MotionMixer | None = None
    # Motion relative to the neutral face is computed here, not on the landmarks thread: face tracking
    # is the pipeline's slowest stage, so everything else that can move off its thread does.
    motion: FaceMotionExtractor | None = None

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = RunState.from_config(self.config)
        if self.mixer is None:
            self.mixer = MotionMixer(self.config, state=self.state)
        if self.motion is None:
            self.motion = FaceMotionExtractor(self.config.tracking)

    def render(self, frames: Sequence[TrackedFrame], clock: Callable[[TrackedFrame], float] | None = None) -> list[RenderedFrame]:
        assert self.mixer is not None and self.motion is not None and self.state is not None  # set in __post_init__
        inputs: list[AnimationInput] = []
        for tf in frames:
            t = clock(tf) if clock else tf.capture_ts
            if tf.frame is not None and tf.motion is None:
                tf.motion = self.motion.update(tf.face, t)
            audio = None
            if self.mouth_at_frame is not None:
                audio = self.mouth_at_frame(tf)
            elif self.mouth is not None:
                audio = self.mouth.mouth_at(tf.capture_ts)
            motion = self.mixer.update(t, tf.motion, audio)
            features = self.features_at(tf) if self.features_at is not None else None
            inputs.append(AnimationInput(motion=motion, capture_ts=tf.capture_ts, index=tf.index, driver_frame=tf.frame,
                                         driver_face=tf.face, audio_mouth=audio, audio_features=features,
                                         media_time_s=tf.media_time_s, controls=self.state))
        images = self.animator.animate_batch(inputs)
        done = time.monotonic()
        out = []
        for inp, img in zip(inputs, images, strict=True):
            bgra = None
            if img.ndim == 3 and img.shape[2] == 4:  # transparent background: BGRA for files, over the key colour for the rest
                bgra, img = img, key_over(img)
            if self.stamper is not None:
                self.stamper(img, _wall_ms(inp.capture_ts))
            out.append(RenderedFrame(image=img, capture_ts=inp.capture_ts, index=inp.index, media_time_s=inp.media_time_s,
                                     stage_ts={"animate": done}, meta={"mouth_open": float(inp.motion.mouth.open)},
                                     bgra=bgra))
        self.first_frame.set()
        return out


def freeze_startup_objects() -> None:
    """Move everything allocated so far (models, tables, modules) out of the cyclic GC's reach, so a
    full collection during the stream scans only what the stream allocates: no 100 ms pauses."""
    gc.collect()
    gc.freeze()


def route_model_timings(animator: BaseAnimationModel, metrics: PipelineMetrics) -> None:
    """Per-call inference time of neural models goes into the stage metrics as `model:<name>`."""

    def record(name: str, ms: float) -> None:
        metrics.stage(f"model:{name}").record(ms / 1000.0)

    for a in (animator, getattr(animator, "primary", None), getattr(animator, "fallback", None)):
        if a is not None:
            a.on_timing = record


class LandmarkStage:
    """Face tracking (MediaPipe). Motion relative to the neutral face is the animate stage's job
    (`AnimateStage.motion`); `motion` here serves callers that use the stage on its own."""

    def __init__(self, config: AppConfig, on_corrupt: Callable[[], None] | None = None, with_motion: bool = False) -> None:
        self.tracker = FaceTracker(config.tracking)
        self.motion = FaceMotionExtractor(config.tracking) if with_motion else None
        self._on_corrupt = on_corrupt
        self.corrupt = 0

    def process(self, frames: Sequence[VideoFrame], clock: Callable[[VideoFrame], float] | None = None) -> list[TrackedFrame]:
        out = []
        for f in frames:
            t = clock(f) if clock else f.capture_ts
            try:
                faces = self.tracker.process(f.image)
                corrupt = False
            except Exception as exc:  # noqa: BLE001 - a corrupt frame is skipped and counted, never fatal
                log.debug("landmarks: frame %d failed: %s", f.index, exc)
                faces, corrupt = [], True
                self.corrupt += 1
                if self._on_corrupt is not None:
                    self._on_corrupt()
            face = faces[0] if faces else None
            motion = self.motion.update(face, t) if self.motion is not None else None
            out.append(TrackedFrame(frame=f, capture_ts=f.capture_ts, index=f.index, face=face, motion=motion,
                                    media_time_s=f.media_time_s, corrupt=corrupt))
        return out

    def close(self) -> None:
        self.tracker.close()


class LivePipeline:
    """Start, run for a while (or until stopped), stop: every thread joined."""

    def __init__(self, config: AppConfig, animator: BaseAnimationModel, outputs: Sequence[Output],
                 capture: CaptureSource | None = None, mouth: MouthSource | None = None,
                 stamper: FrameStamper | None = None,
                 features_at: Callable[[TrackedFrame], np.ndarray | None] | None = None,
                 state: RunState | None = None) -> None:
        self.config = config
        self.animator = animator
        self.capture = capture
        self.state = state or RunState.from_config(config)
        self.metrics = PipelineMetrics()
        self.animate = AnimateStage(config, animator, mouth=mouth, stamper=stamper, features_at=features_at, state=self.state)
        route_model_timings(animator, self.metrics)
        self.landmarks: LandmarkStage | None = None
        if capture is not None:
            self.landmarks = LandmarkStage(config, on_corrupt=self.metrics.stage("landmarks").count_skipped)
        self.graph = StageGraph(config, outputs, self.metrics, live=True, animate=self._animate_next,
                                read=self._read_capture if capture is not None else None,
                                track=self.landmarks.process if self.landmarks is not None else None,
                                on_track_exit=self.landmarks.close if self.landmarks is not None else None)
        self.stop_event = self.graph.stop_event
        self.fanout = self.graph.fanout
        self.threads = self.graph.threads
        self.controls = PipelineControls(stop_event=self.stop_event, metrics=self.metrics, reset_neutral=self._reset_neutral,
                                         toggle_motion_mode=self.state.toggle_motion_mode, retry_model=animator.retry,
                                         set_expression=lambda name, level, hold_s: expression_on(animator, name, level, hold_s))
        self.controls.ready = lambda: self.animator.loaded and self.animate.first_frame.is_set()
        self.period = 1.0 / config.pipeline.fps
        self._m_capture = self.metrics.stage("capture") if capture is not None else None
        self._m_animate = self.metrics.stage("animate")
        self._pacer = Pacer(config.pipeline.fps, self.stop_event)
        self._onset = OnsetWake.attach(mouth, ONSET_OPEN_FRACTION * config.audio.mouth.max_open)  # None: poll
        self._mouth_was_open = False
        self._last_tick_t = 0.0
        self._out_index = 0
        # Tick only when the driver has really stalled: well past both our period and the driver's.
        driver_period = 1.0 / capture.fps if capture is not None and capture.fps > 0 else 0.0
        self._stall_s = max(2.0 * self.period, 2.5 * driver_period)
        self.freeze_gc = True  # a server hosting many pipelines turns this off: frozen objects are never collected

    # -- stage bodies --------------------------------------------------------------------------

    def _read_capture(self) -> VideoFrame | None:
        assert self.capture is not None
        frame = self.capture.read()
        if frame is None:
            raise EndOfStream
        if self._m_capture is not None:
            self._m_capture.record(self.capture.last_read_s)
        return frame

    def _tick(self) -> TrackedFrame:
        return TrackedFrame(frame=None, capture_ts=time.monotonic(), index=-1)

    def _wait_tick_or_onset(self) -> None:
        """Sleep until the next tick, but render at once when the audio mouth starts to open:
        a speech onset then reaches the output within one render instead of up to one frame later.
        The cadence continues from that frame, so the average rate stays at the target fps."""
        mouth = self.animate.mouth
        if mouth is None:
            self._pacer.wait()
            return
        threshold = ONSET_OPEN_FRACTION * self.config.audio.mouth.max_open
        deadline = self._pacer.next_deadline()
        while not self.stop_event.is_set():
            if self._onset is not None:
                self._onset.arm()  # before looking: an onset from now on wakes the wait below
            now = time.monotonic()
            if now >= deadline:
                self._pacer.wait()
                return
            opening = mouth.mouth_at(now).open > threshold
            if opening and not self._mouth_was_open:
                if now - self._last_tick_t >= MIN_ONSET_GAP_S:
                    self._mouth_was_open = True
                    self._pacer.rephase(now)
                    return
                # Too soon after the last frame: keep the onset pending until the gap has passed.
                self.stop_event.wait(min(deadline - now, MIN_ONSET_GAP_S - (now - self._last_tick_t), ONSET_POLL_S))
                continue
            self._mouth_was_open = opening
            if self._onset is not None:
                self._onset.wait(deadline - now)  # one wake a frame, or at an onset (src/pipeline/onset_wake.py)
            else:
                self.stop_event.wait(min(deadline - now, ONSET_POLL_S))

    def _animate_next(self) -> RenderedFrame | None:
        """One output frame: the newest tracked frame, or an idle tick when there is none in time."""
        anim_in = self.graph.animate_in
        if anim_in is None:
            self._wait_tick_or_onset()
            self._last_tick_t = time.monotonic()
            tf = self._tick()
        else:
            try:
                newest = anim_in.get(timeout=self._stall_s)
            except BufferClosed:
                raise EndOfStream from None
            tf = newest if newest is not None else self._tick()  # None: the driver stalled: keep the avatar alive
        if self.stop_event.is_set():
            return None
        t0 = time.perf_counter()
        frame = self.animate.render([tf])[0]
        self._m_animate.record(time.perf_counter() - t0)
        frame.index = self._out_index  # output order: driver frames and idle ticks in one sequence
        self._out_index += 1
        if self.animate.mouth is not None:  # what the output now shows: the next onset is a change from this
            self._mouth_was_open = frame.meta.get("mouth_open", 0.0) > ONSET_OPEN_FRACTION * self.config.audio.mouth.max_open
        return frame

    # -- control -------------------------------------------------------------------------------

    def _reset_neutral(self) -> None:
        assert self.animate.motion is not None
        self.animate.motion.reset_neutral()
        self.animator.reset_driver_reference()

    def start(self) -> None:
        """Open the outputs (a user error if one cannot be opened) and start every thread."""
        self.graph.open_outputs(self.animator.output_size, self.config.pipeline.fps, self.controls)
        if self.freeze_gc:
            freeze_startup_objects()
        self.graph.start()
        log.info("pipeline started: %s", ", ".join(t.name for t in self.graph.all_threads))

    @property
    def finished(self) -> bool:
        return self.graph.finished

    def run(self, duration_s: float | None = None, on_tick: Callable[[], Any] | None = None) -> None:
        """Block until `duration_s` passes, stop is requested, or the driver ends; then stop."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_log = time.monotonic() + self.config.pipeline.metrics_interval_s
        restore = self._ctrl_c_requests_stop()
        try:
            while not self.stop_event.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if self.finished:
                    break
                self.stop_event.wait(0.05)
                if on_tick is not None:
                    on_tick()
                if time.monotonic() >= next_log:
                    next_log += self.config.pipeline.metrics_interval_s
                    log.debug("metrics: %s", self.metrics.summary_line())
        except KeyboardInterrupt:
            log.info("interrupted; stopping")
        finally:
            restore()
            self.stop()

    def _ctrl_c_requests_stop(self) -> Callable[[], None]:
        """On the main thread, Ctrl+C (SIGINT) sets the stop event instead of raising KeyboardInterrupt at
        whatever line runs then (inside a lock, half way through a log call); a second Ctrl+C raises as usual.
        Returns the function that puts the previous handler back."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def on_sigint(signum: int, frame: object) -> None:
            if self.stop_event.is_set():
                raise KeyboardInterrupt
            log.info("interrupted; stopping")
            self.stop_event.set()

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, on_sigint)
        return restore

    def stop(self) -> list[str]:
        """Stop every thread (outputs drain what is queued for them first); returns the names of any still
        alive after `pipeline.stop_timeout_s` (none expected)."""
        self.stop_event.set()
        if self._onset is not None:
            self._onset.wake()
        alive = self.graph.stop()
        if self.capture is not None:
            self.capture.close()
        return alive

    def errors(self) -> list[BaseException]:
        return self.graph.errors()
