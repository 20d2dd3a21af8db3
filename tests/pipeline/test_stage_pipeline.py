"""The live pipeline's core: named threads, newest-frame-wins under slow stages, capture time to the output,
metrics at any time, stopping, and faults (a throwing animator, a corrupt frame, frames with no face)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from src.animation.base import AnimationInput, BaseAnimationModel
from src.capture import CaptureSource, open_capture
from src.core.frames import RenderedFrame, VideoFrame
from src.core.runtime import StageThread
from src.core.runtime.metrics import StageMetrics
from src.core.runtime.ring_buffer import RingBuffer
from src.core.runtime.stage import EndOfStream
from src.output.base import Output
from src.pipeline import LivePipeline
from tests.support.waiting import wait_until

OUR_THREADS = {"capture", "landmarks", "animate"}


# -- doubles -----------------------------------------------------------------------------------------------------


class ConstAnimator(BaseAnimationModel):
    """A 64 px animator double: a flat frame per input; optionally slow, optionally throws once."""

    name = "test-const"

    def __init__(self, config, delay_s: float = 0.0, fail_on_call: int | None = None) -> None:
        super().__init__(config)
        self.output_size = 64
        self.delay_s = delay_s
        self.fail_on_call = fail_on_call
        self.calls = 0
        self.failed_index: int | None = None

    def load_model(self) -> None:
        self.loaded = True

    def preprocess_source_image(self, image_path) -> None:
        pass

    def animate(self, inp: AnimationInput) -> np.ndarray:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.calls == self.fail_on_call:
            self.failed_index = inp.index
            raise RuntimeError("animator double: fails once")
        return np.full((64, 64, 3), inp.index % 256, np.uint8)


class Recorder(Output):
    """Records what arrives and when; optionally slow."""

    def __init__(self, name: str = "rec", realtime: bool = True, delay_s: float = 0.0) -> None:
        self.name = name
        self.realtime = realtime
        self.delay_s = delay_s
        self.frames: list[RenderedFrame] = []
        self.arrived: list[float] = []
        self.opened = self.closed = False
        self.thread_names: set[str] = set()

    def open(self, width: int, height: int, fps: float) -> None:
        self.opened = True
        self.size = (width, height)

    def write(self, frame: RenderedFrame) -> None:
        self.arrived.append(time.monotonic())
        self.frames.append(frame)
        self.thread_names.add(threading.current_thread().name)
        if self.delay_s:
            time.sleep(self.delay_s)

    def close(self) -> None:
        self.closed = True

    def latencies(self) -> np.ndarray:
        return np.array([t - f.capture_ts for f, t in zip(self.frames, self.arrived, strict=True)])


class TappedCapture(CaptureSource):
    """Wraps a real capture source; remembers each frame's capture time; can hand out one corrupt frame."""

    def __init__(self, inner: CaptureSource, corrupt_at: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.fps, self.size = inner.fps, inner.size
        self.live = inner.live
        self.stamps: dict[int, float] = {}
        self.corrupt_at = corrupt_at
        self.corrupted = 0  # corrupt frames handed out

    def read(self) -> VideoFrame | None:
        f = self.inner.read()
        if f is None:
            return None
        if f.index == self.corrupt_at:
            f = VideoFrame(image=np.zeros((0, 7), np.uint8), capture_ts=f.capture_ts, index=f.index)
            self.corrupted += 1
        self.stamps[f.index] = f.capture_ts
        return f

    def close(self) -> None:
        self.inner.close()


def _ours_alive(extra: set[str] = frozenset()) -> list[str]:
    names = OUR_THREADS | set(extra)
    return [t.name for t in threading.enumerate() if t.name in names or t.name.startswith("output:")]


@pytest.fixture
def live_video(make_config, face_video: Path):
    """The face video as a live, looping, real-time driver."""
    src = open_capture(str(face_video), make_config(), realtime=True, loop=True)
    yield src
    src.close()


@pytest.fixture(autouse=True)
def _no_threads_left_behind():
    yield
    assert wait_until(lambda: not _ours_alive(), 3.0), f"threads left running: {_ours_alive()}"


# -- threads and stopping -----------------------------------------------------------------------------------------


def test_one_named_thread_per_stage_and_stop_joins_them_all(make_config, live_video) -> None:
    rec = Recorder("rec")
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=live_video)
    pipe.start()
    try:
        assert wait_until(lambda: len(rec.frames) >= 5, 20.0)
        names = {t.name for t in threading.enumerate()}
        assert {"capture", "landmarks", "animate", "output:rec"} <= names
        assert rec.thread_names == {"output:rec"}
        assert [t.name for t in pipe.threads] == ["capture", "landmarks", "animate"]
    finally:
        t0 = time.monotonic()
        alive = pipe.stop()
        elapsed = time.monotonic() - t0
    assert alive == []
    # bounded: stop returns by its deadline (pipeline.stop_timeout_s) with every thread joined; how fast is the benchmark's
    assert elapsed <= make_config().pipeline.stop_timeout_s + 1.0, f"stop took {elapsed:.2f} s"
    assert not _ours_alive()
    assert rec.opened and rec.closed


def test_run_with_duration_stops_everything(make_config, live_video) -> None:
    rec = Recorder("rec")
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=live_video)
    pipe.start()
    t0 = time.monotonic()
    pipe.run(duration_s=1.0)
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 1.0 + 2.0
    assert not _ours_alive()
    assert len(rec.frames) > 5
    assert pipe.errors() == []


def test_without_a_driver_the_animate_stage_ticks_at_the_target_fps(make_config) -> None:
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config("pipeline.fps=20"), ConstAnimator(make_config()), [rec])
    assert [t.name for t in pipe.threads] == ["animate"]
    pipe.start()
    pipe.run(duration_s=1.5)
    # Paced: about 30 frames in 1.5 s at 20 fps (loose bounds), every tick in order.
    assert 10 <= len(rec.frames) <= 40
    idx = [f.index for f in rec.frames]
    assert idx == list(range(len(idx)))


def test_stop_from_an_output_ends_the_run(make_config) -> None:
    class StopAfter(Recorder):
        def bind_controls(self, controls) -> None:
            self.controls = controls

        def write(self, frame: RenderedFrame) -> None:
            super().write(frame)
            if len(self.frames) == 5:
                self.controls.request_stop()  # what the window's q key does

    out = StopAfter("stopper", realtime=False)
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [out])
    pipe.start()
    t0 = time.monotonic()
    pipe.run(duration_s=20.0)
    assert time.monotonic() - t0 < 5.0
    assert not _ours_alive()


def test_ctrl_c_stops_the_run_and_a_second_one_raises(make_config) -> None:
    """SIGINT during run() sets the stop event (no KeyboardInterrupt at a random line); the handler is put back."""
    before = signal.getsignal(signal.SIGINT)
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec])
    pipe.start()
    kill = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    kill.start()
    t0 = time.monotonic()
    pipe.run(duration_s=30.0)
    kill.join()
    assert time.monotonic() - t0 < 15.0, "Ctrl+C ended the run"
    assert pipe.stop_event.is_set() and not _ours_alive() and pipe.errors() == []
    assert signal.getsignal(signal.SIGINT) is before
    # the handler itself: the first press asks for a stop, a second one (already stopping) raises as before
    pipe2 = LivePipeline(make_config(), ConstAnimator(make_config()), [Recorder("rec2", realtime=False)])
    restore = pipe2._ctrl_c_requests_stop()
    try:
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        handler(signal.SIGINT, None)
        assert pipe2.stop_event.is_set()
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
    finally:
        restore()
    assert signal.getsignal(signal.SIGINT) is before


def test_driver_end_finishes_the_run(make_config, face_video: Path) -> None:
    src = open_capture(str(face_video), make_config(), realtime=False)
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=src)
    pipe.start()
    t0 = time.monotonic()
    pipe.run(duration_s=30.0)
    assert time.monotonic() - t0 < 15.0  # ended with the file, not the duration
    assert 0 < len(rec.frames) <= 30


# -- newest frame wins -------------------------------------------------------------------------------------------------


def test_slow_output_skips_frames_and_does_not_hold_up_the_rest(make_config, live_video) -> None:
    slow = Recorder("slow", realtime=True, delay_s=0.25)
    fast = Recorder("fast", realtime=False)
    cfg = make_config("pipeline.fps=5")
    pipe = LivePipeline(cfg, ConstAnimator(cfg), [slow, fast], capture=live_video)
    pipe.start()
    pipe.run(duration_s=3.0)
    snap = pipe.metrics.snapshot()
    print({k: (v["frames"], v["dropped"]) for k, v in snap.items()})
    # The other stages kept going at the driver's pace.
    assert snap["capture"]["frames"] >= 20
    assert len(fast.frames) >= 2 * len(slow.frames)
    assert len(slow.frames) <= 3.0 / 0.25 + 2
    # The slow one got the newest frames (drops counted) and saw a bounded latency.
    assert snap["output:slow"]["dropped"] > 0
    assert slow.latencies().max() < 1.0, slow.latencies()
    idx = [f.index for f in slow.frames]
    assert idx == sorted(idx)


def test_slow_animator_drops_old_frames_and_latency_stays_bounded(make_config, live_video) -> None:
    rec = Recorder("rec", realtime=False)
    anim = ConstAnimator(make_config(), delay_s=0.15)
    pipe = LivePipeline(make_config(), anim, [rec], capture=live_video)
    pipe.start()
    pipe.run(duration_s=3.0)
    snap = pipe.metrics.snapshot()
    print({k: (v["frames"], v["dropped"]) for k, v in snap.items()})
    # Capture kept its 15 fps (45 frames in 3 s; loose bound) while animation ran at ~6.
    assert snap["capture"]["frames"] >= 30 and snap["capture"]["frames"] >= 2 * snap["animate"]["frames"]
    assert snap["animate"]["frames"] <= 3.0 / 0.15 + 2
    assert snap["animate"]["dropped"] + snap["landmarks"]["dropped"] > 0
    lat = rec.latencies()
    assert len(lat) >= 5
    assert lat.max() < 1.0, lat  # newest-wins: a frame never waits behind a backlog
    assert lat[-5:].mean() < 1.0


# -- capture time, metrics -------------------------------------------------------------------------------------------


def test_every_frame_carries_its_capture_time_to_the_output(make_config, live_video) -> None:
    """After start-up every output frame is a driver frame, and it reaches the output with the capture
    stage's own time stamp. (pipeline.fps 5: the animate stage only ticks on its own after 0.4 s without a
    driver frame, so no idle tick mixes in even on a loaded machine.)"""
    cap = TappedCapture(live_video)
    rec = Recorder("rec", realtime=False)
    cfg = make_config("pipeline.fps=5")
    pipe = LivePipeline(cfg, ConstAnimator(cfg), [rec], capture=cap)
    pipe.start()
    pipe.run(duration_s=2.0)
    assert len(rec.frames) >= 10
    lat = rec.latencies()
    assert np.all(lat > 0)
    settled = [f for f, t in zip(rec.frames, rec.arrived, strict=True) if t - rec.arrived[0] > 0.5]
    assert len(settled) >= 5
    for f in settled:
        assert f.capture_ts == cap.stamps[f.index]  # the capture stage's own stamp, unchanged
        assert "animate" in f.stage_ts and f.capture_ts < f.stage_ts["animate"]
    out_lat = pipe.metrics.snapshot()["output:rec"]["latency_ms"]
    assert 0 < out_lat["p50"] <= out_lat["p95"] < 1000


def test_output_indices_never_repeat_with_a_slower_driver(make_config, live_video) -> None:
    cap = TappedCapture(live_video)
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=cap)  # pipeline 30 fps, driver 15
    pipe.start()
    pipe.run(duration_s=2.0)
    idx = [f.index for f in rec.frames]
    assert len(idx) >= 10
    assert all(b > a for a, b in zip(idx, idx[1:], strict=False)), idx
    ts = [f.capture_ts for f in rec.frames]
    assert ts == sorted(ts)


def test_metrics_are_readable_at_any_time(make_config, live_video) -> None:
    rec = Recorder("rec")
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=live_video)
    snaps: list[dict] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            try:
                snaps.append(pipe.metrics.snapshot())
                pipe.metrics.summary_line()
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)
            time.sleep(0.005)

    t = threading.Thread(target=reader, name="test-metrics-reader")
    t.start()
    pipe.start()
    pipe.run(duration_s=1.5)
    done.set()
    t.join(2)
    assert not errors
    assert len(snaps) > 50
    final = pipe.metrics.snapshot()
    assert set(final) == {"capture", "landmarks", "animate", "output:rec"}
    for stage in final.values():
        assert {"fps", "ms", "frames", "dropped", "errors", "skipped", "queue_depth"} <= set(stage)
    for name in final:  # counters never go backwards
        counts = [s[name]["frames"] for s in snaps if name in s]
        assert counts == sorted(counts)
    assert final["animate"]["frames"] > 0 and final["animate"]["ms"]["p50"] >= 0


# -- faults ----------------------------------------------------------------------------------------------------------------


def test_an_animator_that_throws_once_does_not_end_the_stream(make_config, caplog) -> None:
    rec = Recorder("rec", realtime=False)
    anim = ConstAnimator(make_config(), fail_on_call=5)
    pipe = LivePipeline(make_config(), anim, [rec])
    pipe.start()
    pipe.run(duration_s=1.5)
    assert anim.failed_index is not None
    after = [f.index for f in rec.frames if f.index > anim.failed_index]
    assert len(after) >= 5  # frames kept coming after the failure
    assert anim.failed_index not in [f.index for f in rec.frames]
    assert pipe.metrics.snapshot()["animate"]["errors"] == 1
    assert pipe.errors() == []
    assert "fails once" in caplog.text  # logged once


def test_stage_thread_counts_each_error_and_logs_a_kind_once(caplog) -> None:
    stop = threading.Event()
    inbox: RingBuffer[int] = RingBuffer(16, "lossless")
    out: RingBuffer[int] = RingBuffer(16, "lossless")
    metrics = StageMetrics("double")

    def fn(items: list[int]) -> list[int]:
        if items[0] % 3 == 0:
            raise ValueError("multiple of three")
        return items

    stage = StageThread("test-double", fn, metrics, stop, inbox=inbox, outboxes=[out])
    stage.start()
    for i in range(10):
        inbox.put(i)
    inbox.close()
    assert stage.join(5)
    got = []
    while True:
        try:
            item = out.get(timeout=0)
        except Exception:  # noqa: BLE001 - BufferClosed: the stage closed its outbox
            break
        if item is None:
            break
        got.append(item)
    assert got == [1, 2, 4, 5, 7, 8]
    assert metrics.errors == 4 and metrics.frames == 6
    assert caplog.text.count("multiple of three") == 1
    assert out.closed and stage.finished.is_set()


def test_a_producer_stage_ends_on_end_of_stream() -> None:
    stop = threading.Event()
    out: RingBuffer[int] = RingBuffer(16, "lossless")
    items = iter(range(5))

    def produce() -> int:
        i = next(items, None)
        if i is None:
            raise EndOfStream
        return i

    stage = StageThread("test-producer", produce, StageMetrics("p"), stop, outboxes=[out])
    stage.start()
    assert stage.join(5)
    assert out.get_batch(10, timeout=1) == [0, 1, 2, 3, 4]


def test_a_corrupt_frame_is_skipped_and_the_stream_goes_on(make_config, live_video) -> None:
    cap = TappedCapture(live_video, corrupt_at=6)
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=cap)
    pipe.start()
    pipe.run(duration_s=2.0)
    assert pipe.errors() == []
    assert max(f.index for f in rec.frames) > 12  # frames after the corrupt one arrived
    assert not _ours_alive()


def test_a_corrupt_frame_is_counted(make_config, live_video) -> None:
    cap = TappedCapture(live_video, corrupt_at=6)
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [rec], capture=cap)
    pipe.start()
    assert wait_until(lambda: 6 in cap.stamps and len(rec.frames) > 0, 20.0)
    time.sleep(0.5)
    pipe.stop()
    snap = pipe.metrics.snapshot()
    # the landmark stage skips it and counts it as skipped: not an error, and capture delivered it
    assert 1 <= snap["landmarks"]["skipped"] <= cap.corrupted
    assert snap["landmarks"]["errors"] == 0 and snap["capture"]["skipped"] == 0


def test_frames_without_a_face_go_to_idle(make_config, portrait_animator, noface_video: Path) -> None:
    """A driver with no face: the real animator keeps rendering idle motion; nothing crashes."""
    src = open_capture(str(noface_video), make_config(), realtime=True, loop=True)
    rec = Recorder("rec", realtime=False)
    pipe = LivePipeline(make_config("idle.seed=1"), portrait_animator, [rec], capture=src)
    pipe.start()
    pipe.run(duration_s=2.0)
    assert pipe.errors() == []
    snap = pipe.metrics.snapshot()
    assert snap["animate"]["errors"] == 0 and snap["landmarks"]["errors"] == 0
    assert len(rec.frames) >= 10
    images = np.stack([f.image for f in rec.frames]).astype(np.int16)
    assert images.shape[1:] == (256, 256, 3)
    moving = np.abs(np.diff(images, axis=0)).reshape(len(images) - 1, -1).max(axis=1) > 0
    assert moving.mean() > 0.8  # idle motion, not a frozen frame


def test_an_output_that_cannot_open_closes_the_others(make_config) -> None:
    from src.core.errors import OutputError

    class Broken(Recorder):
        def open(self, width: int, height: int, fps: float) -> None:
            raise OutputError("broken output double: cannot open")

    good = Recorder("good")
    pipe = LivePipeline(make_config(), ConstAnimator(make_config()), [good, Broken("broken")])
    with pytest.raises(OutputError):
        pipe.start()
    assert good.opened and good.closed
    assert pipe.stop() == []


def test_controls_reset_neutral_and_toggle_motion_mode(make_config, live_video) -> None:
    """What the window's n and r keys call: the neutral face is re-taken from the next frames; the mode flips."""
    cfg = make_config()
    rec = Recorder("rec", realtime=False)
    anim = ConstAnimator(cfg)
    anim.load_model()
    pipe = LivePipeline(cfg, anim, [rec], capture=live_video)
    pipe.start()
    try:
        ext = pipe.animate.motion
        assert wait_until(lambda: ext.has_neutral, 20.0)
        before = ext.neutral
        pipe.controls.reset_neutral()
        assert wait_until(lambda: ext.neutral is not before and ext.has_neutral, 20.0)
        assert pipe.controls.toggle_motion_mode() == "absolute" and pipe.state.motion_mode == "absolute"
        assert cfg.animation.motion_mode == "relative", "the config is read-only while running: the toggle lives in RunState"
        assert pipe.controls.toggle_motion_mode() == "relative"
        assert wait_until(lambda: pipe.controls.ready(), 20.0)
    finally:
        assert pipe.stop() == []


class StepMouth:
    """An audio driver double: the mouth opens at `open_at` (monotonic) and stays open."""

    def __init__(self, open_at: float) -> None:
        self.open_at = open_at

    def mouth_at(self, t: float):
        from src.core.frames import MouthShape

        return MouthShape(open=0.3 if t >= self.open_at else 0.0)


@pytest.mark.parametrize("after_tick_s", [0.005, 0.2])
def test_an_audio_onset_renders_at_once_instead_of_at_the_next_tick(make_config, after_tick_s: float) -> None:
    """At 2 fps ticks are 500 ms apart; a mouth opening between two ticks, even right after one, is shown
    within a few polls of the onset (loose bound: 200 ms), not at the next tick."""
    rec = Recorder("rec", realtime=False)
    cfg = make_config("pipeline.fps=2")
    mouth = StepMouth(open_at=float("inf"))
    pipe = LivePipeline(cfg, ConstAnimator(cfg), [rec], mouth=mouth)
    pipe.start()
    try:
        assert wait_until(lambda: len(rec.frames) >= 2, 20.0)  # the cadence is running
        onset = rec.arrived[-1] + after_tick_s  # just after (or well after) a tick
        mouth.open_at = onset
        assert wait_until(lambda: any(t >= onset for t in rec.arrived), 2.0)
        first_open = min(t for t in rec.arrived if t >= onset)
        assert first_open - onset < 0.2, f"shown {1000 * (first_open - onset):.0f} ms after the onset"
        shown = [f for f, t in zip(rec.frames, rec.arrived, strict=True) if t >= onset]
        assert shown[0].meta["mouth_open"] > 0.2
    finally:
        pipe.stop()
