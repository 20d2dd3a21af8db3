"""Offline rendering: every frame, in order, as fast as the machine allows.

The same stages as live (capture -> landmarks -> animate -> outputs), each in
its own thread, with lossless buffers, so decoding, tracking, animation and
encoding overlap. Motion runs on media time (frame index / fps), so the result
does not depend on how fast the machine is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.animation.base import BaseAnimationModel
from src.capture.sources import CaptureSource
from src.core.config import AppConfig
from src.core.errors import OutputError
from src.core.frames import MouthShape, RenderedFrame, TrackedFrame, VideoFrame
from src.core.runtime.metrics import PipelineMetrics
from src.core.runtime.stage import EndOfStream
from src.output.base import Output, PipelineControls
from src.pipeline.graph import StageGraph, frames_written
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
    rate = capture.fps if capture is not None else fps
    assert rate is not None
    fps = float(rate)
    batch = batch_size or config.pipeline.batch_size
    metrics = PipelineMetrics()
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

    def animate_batch(frames: list[TrackedFrame]) -> list[RenderedFrame]:
        return animate.render(frames, clock=clock)

    if capture is not None:
        landmarks = LandmarkStage(config)
        source = capture

        def read() -> VideoFrame:
            if n_frames is not None and source.index >= n_frames:
                raise EndOfStream
            f = source.read()
            if f is None:
                raise EndOfStream
            return f

        def track_faces(frames: list[VideoFrame]) -> list[TrackedFrame]:
            out = landmarks.process(frames, clock=clock)
            faceless[0] += sum(1 for tf in out if tf.face is None)
            return out

        graph = StageGraph(config, outputs, metrics, live=False, animate=animate_batch, read=read, track=track_faces,
                           on_track_exit=landmarks.close, batch_size=batch)
    else:
        counter = iter(range(n_frames or 0))

        def tick() -> TrackedFrame:
            i = next(counter, None)
            if i is None:
                raise EndOfStream
            return TrackedFrame(frame=None, capture_ts=time.monotonic(), index=i, media_time_s=i / fps)

        graph = StageGraph(config, outputs, metrics, live=False, animate=animate_batch, ticks=tick, batch_size=batch)
    graph.open_outputs(animator.output_size, fps, PipelineControls(stop_event=graph.stop_event, metrics=metrics))
    freeze_startup_objects()
    t0 = time.perf_counter()
    graph.start()
    try:
        graph.wait()
    finally:
        if capture is not None:
            capture.close()
    wall = time.perf_counter() - t0
    graph.raise_errors()
    frames = frames_written(graph)
    for out, t in graph.output_frames():
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
