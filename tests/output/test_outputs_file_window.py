"""File (H.264 mp4 through PyAV), null and window outputs; several outputs at once; unwritable paths; no display."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest

from src.core.errors import OutputError, UserError
from src.core.frames import RenderedFrame
from src.output import OUTPUTS, FileOutput, NullOutput, WindowOutput, create_output, parse_output_spec
from src.pipeline import LivePipeline


def _frame(i: int, size: int = 64, capture_ts: float = 0.0, media_time_s: float | None = None) -> RenderedFrame:
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : (i * 7) % size] = (40, 120, 200)  # a moving edge: each frame differs
    return RenderedFrame(image=img, capture_ts=capture_ts, index=i, media_time_s=media_time_s)


def _probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = [float(f.pts * s.time_base) for f in c.decode(s)]
        return {"codec": s.codec_context.name, "pix_fmt": s.codec_context.pix_fmt, "pts": pts, "frames": len(pts),
                "fps": float(s.average_rate) if s.average_rate else None,
                "duration": float(c.duration / av.time_base) if c.duration else None}


# -- file ----------------------------------------------------------------------------------------------------------


def test_file_output_h264_yuv420p_media_time_stamps(tmp_path: Path) -> None:
    p = tmp_path / "media.mp4"
    out = FileOutput(str(p))
    out.open(64, 64, 25.0)
    for i in range(50):
        out.write(_frame(i, media_time_s=i / 25.0))
    out.close()
    info = _probe(p)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["frames"] == 50 and out.frames == 50
    assert info["pts"] == pytest.approx([i / 25.0 for i in range(50)], abs=1e-3)
    assert info["duration"] == pytest.approx(2.0, abs=0.05)
    assert info["fps"] == pytest.approx(25.0, abs=0.01)


def test_file_output_live_frames_keep_their_capture_timing(tmp_path: Path) -> None:
    """Live frames (no media time) are stamped from their capture times: an uneven rate plays back as captured."""
    p = tmp_path / "live.mp4"
    out = FileOutput(str(p))
    out.open(64, 64, 30.0)
    t0 = 1000.0
    gaps = [0.0, 0.033, 0.033, 0.1, 0.02, 0.05, 0.033, 0.2, 0.033, 0.033]
    ts = list(np.cumsum(gaps) + t0)
    for i, t in enumerate(ts):
        out.write(_frame(i, capture_ts=float(t)))
    out.close()
    info = _probe(p)
    assert info["frames"] == len(ts)
    assert info["pts"] == pytest.approx([t - t0 for t in ts], abs=1e-3)


def test_file_output_pts_never_repeat_or_go_back(tmp_path: Path) -> None:
    p = tmp_path / "dup.mp4"
    out = FileOutput(str(p))
    out.open(64, 64, 30.0)
    for i, t in enumerate([5.0, 5.0, 5.01, 5.005, 5.02]):  # a repeated and a backwards capture time
        out.write(_frame(i, capture_ts=t))
    out.close()
    pts = _probe(p)["pts"]
    assert len(pts) == 5 and all(b > a for a, b in zip(pts, pts[1:], strict=False))


def test_file_output_makes_missing_folders(tmp_path: Path) -> None:
    p = tmp_path / "a" / "b" / "c.mp4"
    out = create_output(f"file:{p}", None)  # type: ignore[arg-type]
    out.open(64, 64, 10.0)
    out.write(_frame(0, media_time_s=0.0))
    out.close()
    assert _probe(p)["frames"] == 1


def test_close_without_open_and_twice_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    out = FileOutput(str(path))
    out.close()  # before open: nothing is created
    assert not path.exists()
    out.open(64, 64, 10.0)
    out.write(_frame(0, size=64, media_time_s=0.0))
    out.close()
    written = path.read_bytes()
    out.close()  # a second close changes nothing
    assert path.read_bytes() == written
    info = _probe(path)
    assert info["frames"] == 1 and info["codec"] == "h264"


@pytest.mark.parametrize("case", ["under_a_file", "is_a_folder"])
def test_unwritable_file_path_is_an_output_error(tmp_path: Path, case: str) -> None:
    blocker = tmp_path / "plain.txt"
    blocker.write_text("x")
    path = blocker / "out.mp4" if case == "under_a_file" else tmp_path
    with pytest.raises(OutputError) as e:
        FileOutput(str(path)).open(64, 64, 30.0)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_folder_is_an_output_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="not writable"):
            FileOutput(str(ro / "x.mp4")).open(64, 64, 30.0)
    finally:
        ro.chmod(0o755)


def test_uncreatable_file_fails_at_open() -> None:
    with pytest.raises(OutputError):
        out = FileOutput("/proc/puppetcam_test.mp4")
        out.open(64, 64, 30.0)
        out.close()


def test_odd_frame_size_is_refused_at_open_as_a_user_error(tmp_path: Path) -> None:
    """H.264 in yuv420p needs even sizes: an odd size is refused at open, naming the size and the setting to fix."""
    p = tmp_path / "odd.mp4"
    with pytest.raises(OutputError) as e:
        FileOutput(str(p)).open(257, 256, 30.0)
    msg = str(e.value)
    assert "257x256" in msg and "animation.output_size_px" in msg and "\n" not in msg


def test_output_specs_and_registry() -> None:
    assert parse_output_spec("file:out/x.mp4") == ("file", "out/x.mp4")
    assert parse_output_spec("file:C:/x.mp4") == ("file", "C:/x.mp4")
    assert parse_output_spec("Window") == ("window", None)
    assert {"file", "null", "window"} <= set(OUTPUTS.names())
    with pytest.raises(OutputError, match="missing path"):
        create_output("file", None)  # type: ignore[arg-type]
    with pytest.raises(UserError) as e:
        create_output("teleport", None)  # type: ignore[arg-type]
    assert "teleport" in str(e.value) and "file" in str(e.value) and "window" in str(e.value)
    with pytest.raises(OutputError, match="empty output name"):
        parse_output_spec(":x")


def test_null_output_counts() -> None:
    out = NullOutput()
    out.open(64, 64, 30.0)
    for i in range(7):
        out.write(_frame(i))
    assert out.frames == 7


class _SlowRecorder(NullOutput):
    """A recording output slower than the pipeline: its queue fills while the stream runs."""

    def write(self, frame: RenderedFrame) -> None:
        time.sleep(0.04)
        super().write(frame)


def test_stop_writes_the_frames_already_queued_for_a_recording_output(make_config, portrait_animator) -> None:
    cfg = make_config("pipeline.fps=40")
    slow = _SlowRecorder()
    pipe = LivePipeline(cfg, portrait_animator, [slow])
    pipe.start()
    time.sleep(1.0)
    queued = len(pipe.fanout.buffers[0])
    assert queued >= 3, "the recorder fell behind, as intended"
    assert pipe.stop() == []
    snap = pipe.metrics.snapshot()
    assert snap["output:null"]["dropped"] == 0
    assert slow.frames == snap["animate"]["frames"], "every frame animated before stop was recorded"


def test_live_file_and_null_at_once(make_config, portrait_animator, tmp_path: Path) -> None:
    """Two outputs on one live pipeline: both get every frame; the file plays back at the captured pace."""
    cfg = make_config("pipeline.fps=20")
    p = tmp_path / "live.mp4"
    file_out = FileOutput(str(p), cfg)
    null = NullOutput()
    pipe = LivePipeline(cfg, portrait_animator, [file_out, null])
    pipe.start()
    t0 = time.monotonic()
    pipe.run(duration_s=2.0)
    wall = time.monotonic() - t0
    snap = pipe.metrics.snapshot()
    assert snap["output:file"]["dropped"] == 0 and snap["output:null"]["dropped"] == 0
    # Both outputs get every frame animated, the one animated just as stop is called included (stop drains).
    assert file_out.frames == null.frames == snap["animate"]["frames"] > 10
    info = _probe(p)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["frames"] == file_out.frames
    span = info["pts"][-1] - info["pts"][0]
    assert 0.5 * wall < span <= wall + 0.1
    assert all(b > a for a, b in zip(info["pts"], info["pts"][1:], strict=False))


# -- window ---------------------------------------------------------------------------------------------------------


def test_window_without_display_is_a_one_line_output_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(OutputError) as e:
        WindowOutput().open(64, 64, 30.0)
    msg = str(e.value)
    assert "display" in msg.lower() and "\n" not in msg and "file:" in msg


def test_cli_window_without_display_exits_2(run_cli) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = run_cli("run", "--output", "window", "--duration", "1", env=env, replace_env=True)
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "display" in err[0].lower() and "Traceback" not in r.stderr


# HighGUI (Qt here) binds to the first thread that uses it, so each window scenario runs in its own process.
WINDOW_SCRIPT = r"""
import json, os, subprocess, sys, threading
import numpy as np
sys.path.insert(0, os.getcwd())
from src.core.frames import RenderedFrame
from src.output import WindowOutput

def state(title):
    try:
        r = subprocess.run(["xwininfo", "-name", title], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        return "unknown"
    for line in r.stdout.splitlines():
        if "Map State" in line:
            return line.split(":", 1)[1].strip()
    return "absent"

out = WindowOutput()
out.title = "puppetcam-test-window"
res = {}
def show():
    out.open(96, 96, 30.0)
    for i in range(15):
        out.write(RenderedFrame(np.full((96, 96, 3), i * 10, np.uint8), 0.0, i))
        if i == 10:
            res["during"] = state(out.title)
    out.close()
    res["after"] = state(out.title)
t = threading.Thread(target=show, name="output:window")  # not the main thread, as in the pipeline
t.start()
t.join(60)
res["alive"] = t.is_alive()
res["frames"] = out.frames
print("RESULT " + json.dumps(res))
"""


def test_window_opens_shows_frames_and_closes(xvfb_display: str) -> None:
    import json
    import sys

    env = {**os.environ, "DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb"}
    env.pop("PYTHONPATH", None)
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("RESULT "))
    res = json.loads(line.removeprefix("RESULT "))
    assert res["frames"] == 15 and not res["alive"]
    if res["during"] != "unknown":  # xwininfo (x11-utils) present: the window was really on the display
        assert res["during"] == "IsViewable"
        assert res["after"] in ("IsUnMapped", "absent")


def test_cli_run_with_window_and_null(xvfb_display: str, run_cli) -> None:
    r = run_cli("run", "--set", "pipeline.fps=15", "--output", "window", "--output", "null", "--duration", "1.5",
                env={"DISPLAY": xvfb_display, "QT_QPA_PLATFORM": "xcb"})
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    summary = next(ln for ln in r.stderr.splitlines() if "stopped:" in ln)
    win = summary.split("output:window:")[1].split("|")[0]
    assert float(win.split("fps")[0]) > 0, summary  # frames were shown
