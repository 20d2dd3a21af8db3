"""The real pipeline into the network and camera outputs (not a synthetic frame source): the command line
`run --output webrtc` watched by a real aiortc viewer, and a live pipeline (real capture, tracking, meshwarp)
into `--output vcam` with the recording camera backend. Each asserts that the avatar's face arrives."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from src.bench.recording_vcam import register_recording_backend
from src.capture.face_tracker import FaceTracker
from src.capture.sources import open_capture
from src.output.vcam import VirtualCameraOutput
from src.pipeline import LivePipeline
from tests.support.paths import ROOT
from tests.support.waiting import wait_until
from tests.support.webrtc_viewer import ReadingViewer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def _has_face(image: np.ndarray) -> bool:
    with FaceTracker(static_image_mode=True, max_faces=1) as tracker:
        return bool(tracker.process(image))


def test_cli_run_with_webrtc_output_streams_the_avatar_to_a_viewer(cache_dir: Path, portrait_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, str(ROOT / "main.py"), "run", "--set", f"cache.dir={cache_dir}",
           "--set", "animation.output_size_px=256", "--set", "idle.seed=2", "--source", str(portrait_path),
           "--output", f"webrtc:127.0.0.1:{port}", "--duration", "120"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _status(base + "health/ready") == 200 or proc.poll() is not None, 90), \
            "the server never became ready"
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        with ReadingViewer(base) as viewer:
            assert wait_until(lambda: viewer.frames >= 10, 60), f"the viewer got {viewer.frames} frames"
            image = viewer.last_image
        assert image is not None and viewer.sizes == {(256, 256)}
        assert _has_face(image), "the frames the viewer decoded show the avatar's face"
        with urllib.request.urlopen(base + "stats", timeout=5) as r:
            stats = json.loads(r.read())
        assert stats["frames"] >= 10 and stats["viewers_total"] >= 1
        proc.send_signal(signal.SIGINT)  # Ctrl+C: a clean stop
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # the CLI dumps every thread's stack (faulthandler)
            time.sleep(2)
            proc.kill()
            _, err = proc.communicate(timeout=10)
            pytest.fail(f"no exit within 60 s of SIGINT; the threads then:\n{err[-6000:]}")
        assert proc.returncode == 0, err[-6000:]
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def test_live_pipeline_into_the_virtual_camera_sends_the_animated_face(
    make_config: Callable[..., object], portrait_animator: object, face_video: Path
) -> None:
    rec = register_recording_backend("rec-pipeline")
    rec.keep_frames = 3
    cfg = make_config("output.vcam.backend=rec-pipeline", "idle.seed=2")
    capture = open_capture(str(face_video), cfg, realtime=True, loop=True)
    out = VirtualCameraOutput(None, cfg)
    pipe = LivePipeline(cfg, portrait_animator, [out], capture=capture)
    pipe.start()
    try:
        assert wait_until(lambda: bool(rec.instances) and len(rec.instances[-1].send_ts) >= 20, 60)
    finally:
        errors = pipe.stop()
        capture.close()
    assert errors == []
    cam = rec.instances[-1]
    assert (cam.width, cam.height, cam.fourcc) == (256, 256, "24BG") and cam.closed
    snap = pipe.metrics.snapshot()
    assert snap["landmarks"]["frames"] > 0 and snap["animate"]["frames"] > 0, "real capture and tracking ran"
    assert cam.frames and _has_face(cam.frames[-1]), "the camera receives the animated face"
    assert not np.array_equal(cam.frames[0], cam.frames[-1]) or len(cam.frames) == 1
