"""The threaded pipeline: ring buffers, stages, metrics, pacing, live and offline runs."""

from src.pipeline.metrics import PipelineMetrics, StageMetrics
from src.pipeline.pacing import Pacer
from src.pipeline.pipeline import AnimateStage, LandmarkStage, LivePipeline
from src.pipeline.render import RenderResult, render
from src.pipeline.ring_buffer import BufferClosed, RingBuffer
from src.pipeline.stage import EndOfStream, StageThread

__all__ = [
    "AnimateStage",
    "BufferClosed",
    "EndOfStream",
    "LandmarkStage",
    "LivePipeline",
    "Pacer",
    "PipelineMetrics",
    "RenderResult",
    "RingBuffer",
    "StageMetrics",
    "StageThread",
    "render",
]
