"""Offline rendering: every frame, in order, as fast as the machine allows.

The same stages as live (capture -> landmarks -> animate -> outputs), each in
its own thread, with lossless buffers, so decoding, tracking, animation and
encoding overlap. Motion runs on media time (frame index / fps), so the result
does not depend on how fast the machine is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.animation.base import BaseAnimationModel
from src.capture.sources import CaptureSource
from src.core.config import AppConfig
from src.core.errors import OutputError
from src.core.frames import MouthShape, TrackedFrame, VideoFrame
from src.core.runtime.metrics import PipelineMetrics
from src.core.runtime.ring_buffer import RingBuffer
from src.core.runtime.stage import EndOfStream, StageThread
from src.output.base import Output, PipelineControls
from src.pipeline.fanout import OutputFanout
from src.pipeline.live import AnimateStage, LandmarkStage, freeze_startup_objects, route_model_timings

log = logging.getLogger(__name__)


@dataclass
class RenderResult:
    frames: int
    fps: float
    media_duration_s: float
    wall_s: float
    corrupt_frames: int
    faceless_frames: int
    metrics: dict[str, Any]

    @property
    def speed_x(self) -> float:
        return self.media_duration_s / self.wall_s if self.wall_s > 0 else float("inf")


def render(config: AppConfig, animator: BaseAnimationModel, outputs: Sequence[Output], *, capture: CaptureSource | None = None,
           n_frames: int | None = None, fps: float | None = None, mouth_track: Sequence[MouthShape] | None = None,
           audio_features: np.ndarray | None = None, batch_size: int | None = None) -> RenderResult:
    """Render every driver frame (or `n_frames` idle/audio frames at `fps` with no driver)."""
    if capture is None and (n_frames is None or fps is None):
        raise ValueError("without a driver, render needs n_frames and fps")
    fps = float(capture.fps if capture is not None else fps)  # type: ignore[arg-type]
    pc = config.pipeline
    batch = batch_size or pc.batch_size
    metrics = PipelineMetrics()
    stop = threading.Event()
    qsize = max(pc.render_queue_size, 2 * batch)
    fanout = OutputFanout(outputs, metrics, stop, live=False, render_queue_size=qsize)
    clock = lambda f: f.media_time_s if f.media_time_s is not None else f.index / fps  # noqa: E731
    track = list(mouth_track) if mouth_track is not None else None
    faceless = [0]

    def mouth_at_frame(tf: TrackedFrame) -> MouthShape | None:
        if track is None:
            return None
        return track[tf.index] if tf.index < len(track) else MouthShape()

    def features_at(tf: TrackedFrame) -> np.ndarray | None:
        assert audio_features is not None
        return audio_features[tf.index] if tf.index < len(audio_features) else None

    animate = AnimateStage(config, animator, mouth_at_frame=mouth_at_frame if track is not None else None,
                           features_at=features_at if audio_features is not None else None)
    route_model_timings(animator, metrics)
    threads: list[StageThread] = []
    anim_in: RingBuffer[TrackedFrame] = RingBuffer(qsize, "lossless", "landmarks->animate")
    landmarks: LandmarkStage | None = None
    if capture is not None:
        landmarks = LandmarkStage(config)
        cap_buf: RingBuffer[VideoFrame] = RingBuffer(qsize, "lossless", "capture->landmarks")
        limit = n_frames

        def read() -> VideoFrame:
            if limit is not None and capture.index >= limit:
                raise EndOfStream
            f = capture.read()
            if f is None:
                raise EndOfStream
            return f

        def track_faces(frames: list[VideoFrame]) -> list[TrackedFrame]:
            out = landmarks.process(frames, clock=clock)  # type: ignore[union-attr]
            faceless[0] += sum(1 for tf in out if tf.face is None)
            return out

        threads.append(StageThread("capture", read, metrics.stage("capture"), stop, outboxes=[cap_buf]))
        threads.append(StageThread("landmarks", track_faces, metrics.stage("landmarks", depth=cap_buf.__len__), stop,
                                   inbox=cap_buf, outboxes=[anim_in], on_exit=landmarks.close))
    else:
        counter = iter(range(n_frames or 0))

        def tick() -> TrackedFrame:
            i = next(counter, None)
            if i is None:
                raise EndOfStream
            return TrackedFrame(frame=None, capture_ts=time.monotonic(), index=i, media_time_s=i / fps)

        threads.append(StageThread("ticks", tick, metrics.stage("ticks"), stop, outboxes=[anim_in]))

    def animate_batch(frames: list[TrackedFrame]):  # noqa: ANN202
        return animate.render(frames, clock=clock)

    threads.append(StageThread("animate", animate_batch, metrics.stage("animate", depth=anim_in.__len__), stop, inbox=anim_in,
                               outboxes=fanout.buffers, batch_size=batch))
    size = animator.output_size
    fanout.open(size, size, fps, PipelineControls(stop_event=stop, metrics=metrics))
    freeze_startup_objects()
    t0 = time.perf_counter()
    fanout.start()
    for t in threads:
        t.start()
    try:
        for t in threads + fanout.threads:
            while not t.join(0.1):
                pass
    except KeyboardInterrupt:
        log.info("interrupted; stopping the render")
        stop.set()
        for t in threads + fanout.threads:
            t.join(config.pipeline.stop_timeout_s)
        raise
    finally:
        if capture is not None:
            capture.close()
    wall = time.perf_counter() - t0
    for t in threads + fanout.threads:
        if t.exception is not None:
            raise t.exception
    frames = metrics.stage(fanout.threads[0].name).frames if fanout.threads else 0
    for out, t in zip(fanout.outputs, fanout.threads, strict=True):
        m = metrics.stage(t.name)
        if m.errors and m.frames == 0:
            raise OutputError(f"output {getattr(out, 'path', out.name)}: no frame could be written ({t.first_error}); "
                              "check the path, the disk space and the codec")
    errors = sum(metrics.stage(n).errors for n in metrics.names())
    if errors:
        log.warning("render: %d frame error(s) were skipped", errors)
    return RenderResult(frames=frames, fps=fps, media_duration_s=frames / fps, wall_s=wall,
                        corrupt_frames=capture.corrupt_frames if capture is not None else 0, faceless_frames=faceless[0],
                        metrics=metrics.snapshot())
