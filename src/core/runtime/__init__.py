"""Run-time building blocks of every threaded part: ring buffers, stage threads, metrics, pacing."""

from src.core.runtime.metrics import PipelineMetrics, StageMetrics, percentiles
from src.core.runtime.pacing import Pacer
from src.core.runtime.ring_buffer import BufferClosed, RingBuffer
from src.core.runtime.stage import EndOfStream, StageThread

__all__ = ["BufferClosed", "EndOfStream", "Pacer", "PipelineMetrics", "RingBuffer", "StageMetrics", "StageThread",
           "percentiles"]
