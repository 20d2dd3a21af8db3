"""The stage graph: the one place that wires capture -> landmarks -> animate -> outputs, live or offline.

Live: newest-wins buffers (drops counted); the animate stage is a producer that takes the newest tracked
frame itself, or renders an idle tick when none comes in time. Offline: lossless buffers; with no driver a
tick producer feeds the animate stage, which takes batches. Either way every output has its own buffer
and thread (`OutputFanout`), and the graph owns starting, stopping, draining and re-raising errors.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from src.core.config import AppConfig
from src.core.frames import TrackedFrame, VideoFrame
from src.core.runtime.metrics import PipelineMetrics
from src.core.runtime.ring_buffer import Mode, RingBuffer
from src.core.runtime.stage import StageThread
from src.output.base import Output, PipelineControls
from src.pipeline.fanout import OutputFanout

log = logging.getLogger(__name__)

DRAIN_MARGIN_S = 0.25  # on stop, outputs drain their queues until this long before the stop deadline

ReadFrame = Callable[[], VideoFrame | None]
TrackFrames = Callable[[list[VideoFrame]], list[TrackedFrame]]
NextTick = Callable[[], TrackedFrame]
# Live: `animate()` produces one frame (it reads `StageGraph.animate_in` itself). Offline: `animate(batch)`.
Animate = Callable[..., Any]


def join_started(threads: Sequence[StageThread], until: float) -> None:
    """Join every started thread, giving up at monotonic time `until`."""
    for t in threads:
        if t.started:
            t.join(max(0.0, until - time.monotonic()))


class StageGraph:
    """Stage threads and the buffers between them, for one live run or one render."""

    def __init__(
        self,
        config: AppConfig,
        outputs: Sequence[Output],
        metrics: PipelineMetrics,
        *,
        live: bool,
        animate: Animate,
        read: ReadFrame | None = None,
        track: TrackFrames | None = None,
        on_track_exit: Callable[[], None] | None = None,
        ticks: NextTick | None = None,
        batch_size: int = 1,
    ) -> None:
        pc = config.pipeline
        self.live = live
        self.metrics = metrics
        self.stop_event = threading.Event()
        self._outputs_stop = threading.Event()  # outputs stop after the producers: they drain first
        self._stop_timeout_s = pc.stop_timeout_s
        policy: Mode = "newest" if live else "lossless"
        qsize = pc.queue_size if live else max(pc.render_queue_size, 2 * batch_size)
        self.fanout = OutputFanout(outputs, metrics, self._outputs_stop, live=live, queue_size=config.output.queue_size,
                                   render_queue_size=qsize)
        self.threads: list[StageThread] = []
        self.animate_in: RingBuffer[TrackedFrame] | None = None
        if read is not None:
            if track is None:
                raise ValueError("a graph with a capture stage needs a landmark stage (track)")
            cap_buf: RingBuffer[VideoFrame] = RingBuffer(qsize, policy, "capture->landmarks")
            self.animate_in = RingBuffer(qsize, policy, "landmarks->animate")
            m_lm = metrics.stage("landmarks", depth=cap_buf.__len__)
            m_lm.add_drop_source(lambda: cap_buf.dropped)
            # Live, the capture stage records its own read time (its waits for the camera are not work).
            self.threads.append(StageThread("capture", read, metrics.stage("capture"), self.stop_event, outboxes=[cap_buf],
                                            self_timed=live))
            self.threads.append(StageThread("landmarks", track, m_lm, self.stop_event, inbox=cap_buf, outboxes=[self.animate_in],
                                            on_exit=on_track_exit))
        elif ticks is not None:
            if live:
                raise ValueError("live, the animate stage ticks by itself")
            self.animate_in = RingBuffer(qsize, policy, "ticks->animate")
            self.threads.append(StageThread("ticks", ticks, metrics.stage("ticks"), self.stop_event, outboxes=[self.animate_in]))
        anim_in = self.animate_in
        m_an = metrics.stage("animate", depth=anim_in.__len__ if anim_in is not None else None)
        if anim_in is not None:
            m_an.add_drop_source(lambda: anim_in.dropped)
        if live:  # a producer that pulls the newest tracked frame (or ticks) and times its own work
            self.threads.append(StageThread("animate", animate, m_an, self.stop_event, outboxes=self.fanout.buffers, self_timed=True))
        else:
            if anim_in is None:
                raise ValueError("offline, the animate stage needs a driver (read + track) or ticks")
            self.threads.append(StageThread("animate", animate, m_an, self.stop_event, inbox=anim_in, outboxes=self.fanout.buffers,
                                            batch_size=batch_size))
        self._opened = False

    @property
    def all_threads(self) -> list[StageThread]:
        return self.threads + self.fanout.threads

    def open_outputs(self, size_px: int, fps: float, controls: PipelineControls) -> None:
        """Open every output (a user error if one cannot be opened; the ones opened are closed again)."""
        self.fanout.open(size_px, size_px, fps, controls)
        self._opened = True

    def start(self) -> None:
        self.fanout.start()
        for t in self.threads:
            t.start()

    @property
    def finished(self) -> bool:
        """Every output thread has ended (the stream reached its end)."""
        return all(not t.alive for t in self.fanout.threads)

    def stop(self, deadline: float | None = None) -> list[str]:
        """Stop the producers, let each output write what is already queued for it (the last frame animated
        included), then stop the outputs; returns the names of threads still alive at the deadline."""
        self.stop_event.set()
        deadline = time.monotonic() + self._stop_timeout_s if deadline is None else deadline
        join_started(self.threads, deadline)
        for buf in self.fanout.buffers:
            buf.close()
        join_started(self.fanout.threads, deadline - DRAIN_MARGIN_S)
        self._outputs_stop.set()
        join_started(self.fanout.threads, deadline)
        if self._opened and not any(t.started for t in self.fanout.threads):
            for out in self.fanout.outputs:  # opened but never started: close here
                out.close()
        alive = [t.name for t in self.all_threads if t.alive]
        if alive:
            log.warning("threads still running after %.1f s: %s", self._stop_timeout_s, ", ".join(alive))
        return alive

    def wait(self) -> None:
        """Offline: block until every stage has ended; Ctrl+C stops the graph and re-raises."""
        try:
            for t in self.all_threads:
                while not t.join(0.1):
                    pass
        except KeyboardInterrupt:
            log.info("interrupted; stopping")
            self.stop()
            raise

    def errors(self) -> list[BaseException]:
        return [t.exception for t in self.all_threads if t.exception is not None]

    def raise_errors(self) -> None:
        """Re-raise the first exception that ended a stage (a bug or a user error found mid-run)."""
        for exc in self.errors():
            raise exc

    def output_frames(self) -> list[tuple[Output, StageThread]]:
        return list(zip(self.fanout.outputs, self.fanout.threads, strict=True))


def frames_written(graph: StageGraph) -> int:
    """Frames the first output wrote (every output gets the same frames offline)."""
    threads = graph.fanout.threads
    return graph.metrics.stage(threads[0].name).frames if threads else 0
