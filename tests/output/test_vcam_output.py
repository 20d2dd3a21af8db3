"""Virtual camera output through a recording pyvirtualcam backend (this machine has no v4l2loopback device)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from src.app.devices import describe_vcam_backends
from src.bench.outputs import SyntheticFrameSource, bench_vcam
from src.bench.recording_vcam import RecordingVcamBackend, register_recording_backend
from src.core.config import AppConfig
from src.core.errors import OutputError, UserError
from src.core.frames import RenderedFrame
from src.output import OUTPUTS, create_output
from src.output.vcam import VirtualCameraOutput, no_camera_error

HAS_LOOPBACK = any(Path("/sys/devices/virtual/video4linux").glob("video*"))


_make_config: Callable[..., AppConfig] | None = None


@pytest.fixture(autouse=True)
def _conftest_config(make_config: Callable[..., AppConfig]) -> None:
    global _make_config
    _make_config = make_config


def cfg_for(backend: str | None, *extra: str) -> AppConfig:
    """conftest's make_config (its temporary cache) at the configured 512 px, with that camera backend."""
    assert _make_config is not None
    return _make_config(*([f"output.vcam.backend={backend}"] if backend else []), *extra, size=512)


def run(out: VirtualCameraOutput, seconds: float, fps: float = 30.0) -> SyntheticFrameSource:
    source = SyntheticFrameSource(fps=fps)
    with source([out]):
        time.sleep(seconds)
    return source


def sender_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("output:vcam")]


@pytest.mark.skipif(HAS_LOOPBACK, reason="a v4l2loopback device exists here; the no-camera message cannot be shown")
def test_no_virtual_camera_gives_the_platform_fix() -> None:
    out = create_output("vcam", cfg_for(None))
    with pytest.raises(OutputError) as err:
        out.open(512, 512, 30)
    msg = str(err.value)
    assert isinstance(err.value, UserError) and err.value.exit_code == 2
    assert "\n" not in msg
    assert "sudo modprobe v4l2loopback" in msg and "exclusive_caps=1" in msg and 'card_label="puppetcam"' in msg
    assert not sender_threads()


def test_platform_messages_for_windows_and_macos() -> None:
    for system in ("Windows", "Darwin"):
        msg = str(no_camera_error(system))
        assert "OBS" in msg and "Virtual Camera" in msg and "\n" not in msg
    assert "webrtc" in str(no_camera_error("Plan9"))


def test_a_named_device_that_does_not_exist_is_a_user_error() -> None:
    out = VirtualCameraOutput("/dev/video99", cfg_for("v4l2loopback"))
    with pytest.raises(OutputError, match="/dev/video99"):
        out.open(512, 512, 30)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(OutputError, match="known: .*v4l2loopback"):
        VirtualCameraOutput(None, cfg_for("nosuch")).open(512, 512, 30)


def test_registered_and_described() -> None:
    assert "vcam" in OUTPUTS
    rec = register_recording_backend("rec-describe")
    rows = {r["backend"]: r for r in describe_vcam_backends()}
    assert {"v4l2loopback", "obs", "unitycapture", "rec-describe"} <= set(rows)
    assert rows["rec-describe"]["available"] is True
    assert rows["obs"]["available"] is False and "not for Linux" in rows["obs"]["reason"]
    if not HAS_LOOPBACK:
        assert rows["v4l2loopback"]["available"] is False
        assert "modprobe v4l2loopback" in rows["v4l2loopback"]["reason"]
    assert rec.instances == []


def test_bgr_frames_paced_at_camera_fps_with_low_latency() -> None:
    rec = register_recording_backend("rec-bgr")
    out = VirtualCameraOutput(None, cfg_for("rec-bgr"))
    run(out, 2.0)
    cam = rec.instances[-1]
    assert (cam.width, cam.height, cam.fourcc) == (512, 512, "24BG")
    assert cam.sizes == {512 * 512 * 3}
    assert cam.closed and not sender_threads()
    gaps = np.diff(cam.send_ts)
    assert np.median(gaps) >= 0.8 / 30, "paced: never faster than the camera's 30 fps"
    assert len(cam.send_ts) >= 30, "and continuously (at least half the 60 frames of 2 s)"
    assert len(cam.latency_ms) >= 40
    # a frame waits at most one camera period for its tick, then is sent: typically well under two periods
    # (the p95 figure is the benchmark's job; a loaded machine must not fail this)
    assert np.median(cam.latency_ms) <= 2 * 1000 / 30


def test_late_pipeline_repeats_the_last_frame() -> None:
    rec = register_recording_backend("rec-late")
    out = VirtualCameraOutput(None, cfg_for("rec-late", "output.vcam.fps=30"))
    run(out, 2.0, fps=8.0)
    cam = rec.instances[-1]
    fps = (len(cam.send_ts) - 1) / (cam.send_ts[-1] - cam.send_ts[0])
    assert fps <= 30 * 1.2  # never faster than the camera
    assert out.stats.repeats > out.stats.frames_in  # mostly repeats of 8 fps content: not held to the source's pace
    assert np.median(np.diff(cam.send_ts)) < 0.125 / 2  # the source's 125 ms gaps are filled, not passed on
    # A repeat shows the same picture: consecutive sends carry the same stamp.
    assert sum(a == b for a, b in zip(cam.stamps, cam.stamps[1:], strict=False)) >= out.stats.repeats - 2


def test_fast_pipeline_is_thinned_to_camera_fps() -> None:
    rec = register_recording_backend("rec-fast")
    out = VirtualCameraOutput(None, cfg_for("rec-fast", "output.vcam.fps=20"))
    run(out, 2.0, fps=50.0)
    cam = rec.instances[-1]
    fps = (len(cam.send_ts) - 1) / (cam.send_ts[-1] - cam.send_ts[0])
    assert cam.fps == 20
    assert fps <= 20 * 1.2, "thinned: never faster than the camera's 20 fps"
    assert len(cam.send_ts) >= 20, "and continuously"
    assert out.stats.skipped > 0 and out.stats.repeats <= 3  # a repeat only if the source hiccups


def test_i420_only_backend_gets_converted_frames_and_configured_size() -> None:
    rec = register_recording_backend("rec-i420", accepted=("I420",))
    rec.keep_frames = 1
    out = VirtualCameraOutput(None, cfg_for("rec-i420", "output.vcam.width_px=320", "output.vcam.height_px=240"))
    run(out, 1.0)
    cam = rec.instances[-1]
    assert (cam.width, cam.height, cam.fourcc) == (320, 240, "I420")
    assert cam.sizes == {320 * 240 * 3 // 2}
    assert sum(s is not None for s in cam.stamps) >= len(cam.stamps) - 1  # the Y plane carries the stamp
    assert cam.frames[-1].shape == (240, 320)


def test_mirror_flips_the_picture() -> None:
    rec = register_recording_backend("rec-mirror")
    rec.keep_frames = 1
    out = VirtualCameraOutput(None, cfg_for("rec-mirror", "output.vcam.mirror=true", "output.vcam.pixel_format=bgr"))
    out.open(512, 512, 30)
    image = np.zeros((512, 512, 3), np.uint8)
    image[100:200, :50] = 255  # a white block on the left
    out.write(RenderedFrame(image=image, capture_ts=time.monotonic(), index=0))
    time.sleep(0.2)
    out.close()
    sent = rec.instances[-1].frames[-1]
    assert sent[150, 500].min() == 255 and sent[150, 10].max() == 0


def test_stamp_survives_mirroring() -> None:
    rec = register_recording_backend("rec-mirror-stamp")
    out = VirtualCameraOutput(None, cfg_for("rec-mirror-stamp", "output.vcam.mirror=true"))
    run(out, 0.7)
    cam = rec.instances[-1]
    assert len(cam.latency_ms) >= 10
    assert all(s is not None for s in cam.stamps)  # read from the mirrored picture


class _FlakyBackend(RecordingVcamBackend):
    """A camera whose third send fails (a device hiccup)."""

    instances: list[RecordingVcamBackend] = []

    def send(self, frame: np.ndarray) -> None:
        if len(self.send_ts) == 2 and not getattr(self, "failed", False):
            self.failed = True
            raise OSError("device hiccup")
        super().send(frame)


def test_a_failed_send_does_not_end_the_stream() -> None:
    import pyvirtualcam

    pyvirtualcam.register_backend("rec-flaky", _FlakyBackend)
    out = VirtualCameraOutput(None, cfg_for("rec-flaky"))
    run(out, 1.0)
    assert out.stats.errors == 1
    assert len(_FlakyBackend.instances[-1].send_ts) >= 20


def test_write_never_blocks_the_caller() -> None:
    rec = register_recording_backend("rec-block")
    out = VirtualCameraOutput(None, cfg_for("rec-block"))
    out.open(512, 512, 5)  # a slow camera
    image = np.zeros((512, 512, 3), np.uint8)
    t0 = time.perf_counter()
    for i in range(60):
        out.write(RenderedFrame(image=image, capture_ts=time.monotonic(), index=i))
    elapsed = time.perf_counter() - t0
    out.close()
    assert elapsed < 0.5  # 60 writes into a 5 fps camera return at once
    assert out.stats.skipped >= 50
    assert rec.instances[-1].closed


def test_bench_vcam_reports_fps_and_latency() -> None:
    result = bench_vcam(SyntheticFrameSource(fps=30), duration_s=1.5, warmup_s=0.5)
    assert 0 < result["fps"] <= 30 * 1.2  # reported, and never above the camera's rate (the figure is the benchmark's)
    assert result["glass_to_glass_ms"]["p50"] is not None and result["glass_to_glass_ms"]["p50"] <= 2 * 1000 / 30
    assert result["format"] == "24BG" and result["size"] == [512, 512]
