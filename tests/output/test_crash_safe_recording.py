"""Recordings survive a crash (issue 14): a live `file:` output and a render killed with SIGKILL
leave a playable file holding everything up to about a second before the kill, audio included;
a clean stop leaves a plain MP4 (src/output/crash_safe_mp4.py)."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np

from src.output.crash_safe_mp4 import span_s

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "assets" / "speech_en.wav"
PORTRAIT = ROOT / "assets" / "portrait.png"
LOSS_S = 1.0  # the bound on what a kill may lose
START_SLACK_S = 0.5  # the 'running' line is logged a little before the first frame is captured


def _top_level_boxes(path: Path) -> list[str]:
    names = []
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                return names
            size, name = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            names.append(name.decode("latin-1"))
            if size < 8:
                return names
            f.seek(size - 8, os.SEEK_CUR)


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


def _audio_rms(path: Path) -> float:
    with av.open(str(path)) as c:
        x = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])])
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _start(args: list[str], cache: Path) -> tuple[subprocess.Popen[str], threading.Event, list[str]]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, str(ROOT / "main.py"), args[0], "--set", f"cache.dir={cache}", *args[1:]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    running = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "running (" in line or "pipeline started" in line:
                running.set()

    threading.Thread(target=read, daemon=True).start()
    return proc, running, lines


def test_live_file_killed_with_sigkill_keeps_all_but_the_last_second(tmp_path: Path) -> None:
    out = tmp_path / "live.mp4"
    proc, running, lines = _start(["run", "--source", str(PORTRAIT), "--audio", str(SPEECH),
                                   "--output", f"file:{out}", "--duration", "60"], tmp_path / "cache")
    try:
        assert running.wait(120), "the run never started:\n" + "".join(lines[-20:])
        t0 = time.monotonic()
        time.sleep(4.3)  # not on a fragment boundary (fragments are 0.5 s)
        assert proc.poll() is None, "the run ended early:\n" + "".join(lines[-20:])
        proc.send_signal(signal.SIGKILL)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    spans = span_s(out)  # opens with PyAV: the file is playable
    assert spans.get("video", 0.0) >= elapsed - LOSS_S - START_SLACK_S, (spans, elapsed)
    assert spans.get("audio", 0.0) >= elapsed - LOSS_S - START_SLACK_S, (spans, elapsed)
    assert abs(spans["audio"] - spans["video"]) < 0.5, spans
    n = _decoded_frames(out)
    assert n >= 25 * spans["video"], f"{n} frames decoded in {spans['video']:.2f} s"
    assert _audio_rms(out) > 0.01, "the speech is there, not silence"


def test_render_killed_is_playable_and_a_rerun_overwrites_it(tmp_path: Path) -> None:
    out = tmp_path / "render.mp4"
    args = ["render", "--source", str(PORTRAIT), "--audio", str(SPEECH), "--output", str(out)]
    proc, _, lines = _start(args, tmp_path / "cache")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.stat().st_size > 200_000:  # a few seconds rendered
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the render finished before it could be killed:\n" + "".join(lines[-20:])
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    partial = span_s(out)
    assert partial["video"] > 1.0 and partial["audio"] > 1.0, partial
    assert _decoded_frames(out) >= 25 * partial["video"]
    assert "moof" in _top_level_boxes(out)  # it was killed before the clean stop's remux

    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    res = subprocess.run([sys.executable, str(ROOT / "main.py"), *args[:1], "--set", f"cache.dir={tmp_path / 'cache'}", *args[1:]],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    boxes = _top_level_boxes(out)
    assert "moof" not in boxes and boxes.index("moov") < boxes.index("mdat"), boxes  # a plain MP4, index first
    full = span_s(out)
    assert abs(full["video"] - 11.5) < 0.2 and abs(full["audio"] - full["video"]) < 0.1, full
    assert _decoded_frames(out) == round(full["video"] * 30)
    assert not list(tmp_path.glob(".*remux*")), "the remux's temporary file is left behind"
