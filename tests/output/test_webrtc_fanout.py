"""Several outputs at once through the real fan-out: null, file, virtual camera, WebRTC (with a real
aiortc viewer reading frames), and a broken output that must not disturb the others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import av

from src.bench.outputs import SyntheticFrameSource
from src.bench.recording_vcam import register_recording_backend
from src.core.config import load_config
from src.core.frames import RenderedFrame
from src.output import FileOutput, NullOutput, Output
from src.output.vcam import VirtualCameraOutput
from src.output.webrtc import WebRTCOutput
from tests.support.webrtc_viewer import ReadingViewer


class _ExplodingOutput(Output):
    """A fault double: every write fails."""

    name = "exploding"
    realtime = True

    def __init__(self) -> None:
        self.closed = False

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, frame: RenderedFrame) -> None:
        raise RuntimeError("boom")

    def close(self) -> None:
        self.closed = True


def test_null_file_vcam_webrtc_and_a_broken_output_together(tmp_path: Path) -> None:
    rec = register_recording_backend("rec-fanout")
    cfg = load_config(overrides=["output.vcam.backend=rec-fanout"])
    null = NullOutput()
    path = tmp_path / "out.mp4"
    file = FileOutput(str(path), cfg)
    vcam = VirtualCameraOutput(None, cfg)
    webrtc = WebRTCOutput("127.0.0.1:0", cfg)
    broken = _ExplodingOutput()
    threads_before = {t.name for t in threading.enumerate()}
    source = SyntheticFrameSource(fps=30)
    with source([null, file, vcam, webrtc, broken]):
        with ReadingViewer(webrtc.url) as viewer:
            time.sleep(3.0)
        produced = source.produced
        snapshot = source.metrics.snapshot()
    # Every output got its frames, in spite of the broken one.
    assert null.frames >= produced - 2
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.width, stream.codec_context.height) == (512, 512)
    assert decoded >= produced - 2
    cam = rec.instances[-1]
    assert len(cam.send_ts) >= 60 and cam.closed
    assert len(cam.latency_ms) >= 60 and sorted(cam.latency_ms)[len(cam.latency_ms) // 2] <= 100
    assert viewer.frames >= 60 and viewer.sizes == {(512, 512)}
    assert len(viewer.g2g_ms) >= 60 and sorted(viewer.g2g_ms)[len(viewer.g2g_ms) // 2] < 200
    assert snapshot["output:exploding"]["errors"] >= produced - 5 and broken.closed
    # Nothing is left running.
    time.sleep(0.2)
    left = {t.name for t in threading.enumerate()} - threads_before
    assert not left, left


def test_two_webrtc_outputs_on_different_ports_with_and_without_the_shared_encoder() -> None:
    outs = [WebRTCOutput("127.0.0.1:0", load_config(overrides=[f"output.webrtc.shared_encoder={shared}"]))
            for shared in ("true", "false")]
    with SyntheticFrameSource(fps=30)(outs):
        ports = {o.port for o in outs}
        with ReadingViewer(outs[0].url) as a, ReadingViewer(outs[1].url) as b:
            time.sleep(1.5)
    assert len(ports) == 2
    assert a.frames >= 25 and b.frames >= 25
    assert a.sizes == b.sizes == {(512, 512)}
    assert len(a.g2g_ms) >= 25 and len(b.g2g_ms) >= 25  # stamps survive both encoders
