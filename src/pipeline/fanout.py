"""Fan-out: every output gets its own bounded buffer and thread.

A real-time output (window, virtual camera, browser) reads the newest frame, so
a slow one skips frames instead of slowing the pipeline or the others. A
recording output (file) reads in order; live, its buffer drops the oldest frame
only if it falls a whole buffer behind; offline, it is lossless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from src.core.frames import RenderedFrame
from src.core.runtime.metrics import PipelineMetrics
from src.core.runtime.ring_buffer import RingBuffer
from src.core.runtime.stage import StageThread
from src.output.base import Output, PipelineControls

log = logging.getLogger(__name__)

RECORDING_BUFFER_FRAMES = 120  # a live file output may fall this far behind before dropping


def _latency(frame: RenderedFrame) -> float:
    return time.monotonic() - frame.capture_ts


class OutputFanout:
    def __init__(
        self,
        outputs: Sequence[Output],
        metrics: PipelineMetrics,
        stop: threading.Event,
        live: bool,
        queue_size: int = 2,
        render_queue_size: int = 16,
    ) -> None:
        self.outputs = list(outputs)
        self.buffers: list[RingBuffer[RenderedFrame]] = []
        self.threads: list[StageThread] = []
        names: dict[str, int] = {}
        for out in self.outputs:
            n = names.get(out.name, 0)
            names[out.name] = n + 1
            label = f"output:{out.name}" + (f"#{n + 1}" if n else "")
            if not live:
                buf: RingBuffer[RenderedFrame] = RingBuffer(render_queue_size, "lossless", label)
            elif out.realtime:
                buf = RingBuffer(queue_size, "newest", label)
            else:
                buf = RingBuffer(RECORDING_BUFFER_FRAMES, "fifo", label)
            m = metrics.stage(label, depth=buf.__len__)

            def dropped(b: RingBuffer[RenderedFrame] = buf) -> int:
                return b.dropped

            m.add_drop_source(dropped)
            self.buffers.append(buf)
            self.threads.append(
                StageThread(
                    label,
                    self._writer(out),
                    m,
                    stop,
                    inbox=buf,
                    latency_of=_latency,
                    on_exit=out.close,
                )
            )

    @staticmethod
    def _writer(out: Output):
        def write(frames: list[RenderedFrame]) -> list[RenderedFrame]:
            for f in frames:
                out.write(f)
            return frames

        return write

    def open(self, width: int, height: int, fps: float, controls: PipelineControls) -> None:
        """Open every output; if one fails, close the ones already opened and re-raise."""
        opened: list[Output] = []
        try:
            for out in self.outputs:
                out.bind_controls(controls)
                out.open(width, height, fps)
                opened.append(out)
        except BaseException:
            for out in opened:
                try:
                    out.close()
                except Exception:
                    log.exception("closing %s failed", out.name)
            raise

    def start(self) -> None:
        for t in self.threads:
            t.start()
