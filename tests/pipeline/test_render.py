"""Offline render: every driver frame, in order, at the driver's fps, into a real H.264 mp4."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from src.capture import open_capture
from src.core.frames import RenderedFrame
from src.output import FileOutput, NullOutput
from src.output.base import Output
from src.pipeline import render


class Keep(Output):
    """Keeps every frame; optionally slow (a lossless render must still deliver everything)."""

    name = "keep"
    realtime = False

    def __init__(self, delay_s: float = 0.0) -> None:
        self.frames: list[RenderedFrame] = []
        self.delay_s = delay_s

    def open(self, width: int, height: int, fps: float) -> None:
        self.size, self.fps = (width, height), fps

    def write(self, frame: RenderedFrame) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.frames.append(frame)


def probe(path: Path) -> dict:
    """Decode an mp4 with PyAV: codec, pixel format, fps, frame count, pts in seconds, duration."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "fps": float(s.average_rate),
                "width": s.codec_context.width, "height": s.codec_context.height}
        pts, images = [], []
        for frame in c.decode(s):
            pts.append(float(frame.pts * s.time_base))
            images.append(frame.to_ndarray(format="bgr24"))
        info["pts"] = pts
        info["frames"] = len(pts)
        info["images"] = images
        info["duration"] = float(s.duration * s.time_base) if s.duration else None
    return info


def test_render_api_every_frame_in_order(make_config, portrait_animator, face_video: Path) -> None:
    cfg = make_config()
    keep = Keep(delay_s=0.01)  # a slow consumer: lossless buffers make the whole render wait, nothing drops
    cap = open_capture(str(face_video), cfg, realtime=False)
    result = render(cfg, portrait_animator, [keep], capture=cap)
    assert result.frames == 30 and len(keep.frames) == 30
    assert [f.index for f in keep.frames] == list(range(30))
    assert [f.media_time_s for f in keep.frames] == pytest.approx([i / 15 for i in range(30)])
    assert result.fps == pytest.approx(15.0) and keep.fps == pytest.approx(15.0)
    assert result.media_duration_s == pytest.approx(2.0)
    assert result.faceless_frames == 0 and result.corrupt_frames == 0
    assert all(s["dropped"] == 0 for s in result.metrics.values())
    assert all(f.image.shape == (256, 256, 3) for f in keep.frames)


def test_render_follows_the_driver(make_config, portrait_animator, face_video: Path) -> None:
    """The driver tilts its head back and forth: the rendered frames change with it."""
    cfg = make_config("idle.seed=1")
    keep = Keep()
    render(cfg, portrait_animator, [keep], capture=open_capture(str(face_video), cfg, realtime=False))
    src = portrait_animator.source.avatar.image.astype(np.int16)
    diffs = [np.abs(f.image.astype(np.int16) - src).mean() for f in keep.frames]
    assert max(diffs) > 2.0 and min(diffs) < max(diffs) / 2


def test_batched_render_equals_unbatched(make_config, portrait_animator, face_video: Path) -> None:
    """Motion runs on media time: batch size (and machine speed) do not change a single pixel."""
    outs = []
    for batch in (1, 4):
        cfg = make_config("idle.seed=2")
        keep = Keep()
        render(cfg, portrait_animator, [keep], capture=open_capture(str(face_video), cfg, realtime=False), batch_size=batch)
        outs.append(keep.frames)
    assert len(outs[0]) == len(outs[1]) == 30
    for a, b in zip(*outs, strict=True):
        assert a.index == b.index and np.array_equal(a.image, b.image)


def test_render_without_driver_makes_n_frames(make_config, portrait_animator) -> None:
    keep = Keep()
    result = render(make_config(), portrait_animator, [keep], n_frames=24, fps=12.0)
    assert result.frames == 24 and [f.index for f in keep.frames] == list(range(24))
    assert [f.media_time_s for f in keep.frames] == pytest.approx([i / 12 for i in range(24)])
    with pytest.raises(ValueError):
        render(make_config(), portrait_animator, [keep])


def test_render_several_outputs_get_every_frame(make_config, portrait_animator, face_video: Path, tmp_path: Path) -> None:
    cfg = make_config()
    f_out = FileOutput(str(tmp_path / "both.mp4"), cfg)
    null = NullOutput()
    keep = Keep()
    result = render(cfg, portrait_animator, [f_out, null, keep], capture=open_capture(str(face_video), cfg, realtime=False))
    assert result.frames == 30 and null.frames == 30 and len(keep.frames) == 30 and f_out.frames == 30
    assert probe(tmp_path / "both.mp4")["frames"] == 30


def test_render_faceless_driver_idles(make_config, portrait_animator, noface_video: Path) -> None:
    cfg = make_config("idle.seed=3")
    keep = Keep()
    result = render(cfg, portrait_animator, [keep], capture=open_capture(str(noface_video), cfg, realtime=False))
    assert result.frames == 30 and result.faceless_frames == 30
    images = np.stack([f.image for f in keep.frames]).astype(np.int16)
    assert (np.abs(np.diff(images, axis=0)).reshape(29, -1).max(axis=1) > 0).all()


def test_render_skips_corrupt_driver_frames(make_config, portrait_animator, mjpeg_with_corrupt_frames) -> None:
    path, total, corrupt = mjpeg_with_corrupt_frames
    cfg = make_config()
    keep = Keep()
    result = render(cfg, portrait_animator, [keep], capture=open_capture(str(path), cfg, realtime=False))
    assert result.frames == total - corrupt
    assert result.corrupt_frames == corrupt  # counted exactly
    times = [f.media_time_s for f in keep.frames]
    assert times == sorted(times) and times[10] == pytest.approx(15 / 15)  # the gap keeps its place in time


# -- through the command line, into a real mp4 -----------------------------------------------------------------


def test_cli_render_with_driver_writes_h264_at_driver_fps(run_cli, face_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    r = run_cli("render", "--driver", str(face_video), "--output", str(out))
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert (info["width"], info["height"]) == (256, 256)
    assert info["frames"] == 30
    assert info["fps"] == pytest.approx(15.0, abs=0.01)
    pts = info["pts"]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))
    assert np.diff(pts) == pytest.approx(np.full(29, 1 / 15), abs=1e-3)
    assert pts[-1] + 1 / 15 == pytest.approx(2.0, abs=0.01)


def test_cli_render_real_clip_every_frame(run_cli, carphone: Path, tmp_path: Path) -> None:
    out = tmp_path / "carphone_out.mp4"
    r = run_cli("render", "--driver", str(carphone), "--output", str(out), "--batch", "4")
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert info["frames"] == 120
    assert info["fps"] == pytest.approx(30000 / 1001, abs=0.01)
    assert info["pts"][-1] == pytest.approx(119 * 1001 / 30000, abs=2e-3)
    assert "rendered 120 frames" in r.stderr


def test_cli_render_duration_and_fps_without_driver(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "idle.mp4"
    r = run_cli("render", "--duration", "1", "--fps", "12", "--output", str(out))
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert info["frames"] == 12 and Fraction(info["fps"]).limit_denominator(100) == 12


def test_cli_render_duration_limits_a_driver(run_cli, face_video: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.mp4"
    r = run_cli("render", "--driver", str(face_video), "--duration", "1", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert probe(out)["frames"] == 15


def test_cli_render_output_size(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "big.mp4"
    r = run_cli("render", "--duration", "0.2", "--output", str(out), size=384)
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert (info["width"], info["height"]) == (384, 384)
