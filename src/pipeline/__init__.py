"""The threaded pipeline: ring buffers, stages, metrics, pacing, live and offline runs.

`LivePipeline`, `render` and friends are imported lazily: capture sources use
`Pacer` from this package, and the pipeline itself uses capture sources.
"""

from typing import Any

from src.pipeline.metrics import PipelineMetrics, StageMetrics
from src.pipeline.pacing import Pacer
from src.pipeline.ring_buffer import BufferClosed, RingBuffer
from src.pipeline.stage import EndOfStream, StageThread

_LAZY = {
    "AnimateStage": "src.pipeline.pipeline",
    "LandmarkStage": "src.pipeline.pipeline",
    "LivePipeline": "src.pipeline.pipeline",
    "RenderResult": "src.pipeline.offline",
    "render": "src.pipeline.offline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'src.pipeline' has no attribute {name!r}")


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
