"""Thread pools are sized where they are used and do not spin (src/core/runtime/threads.py, issue 14).

The live test counts a real audio-driven run's system time from /proc: before the pools were
sized, OpenBLAS's idle workers burned ~0.9 of a core in `sched_yield` between the audio
analysis' small products. The bound is loose on purpose (the figure is the benchmark's).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _fresh_python(code: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_importing_the_analysis_limits_every_blas_library() -> None:
    """A program that imports the package (not main.py) gets the sizing too: NumPy's and SciPy's
    OpenBLAS (SciPy loaded by the program itself) both run on one thread once the audio analysis exists."""
    out = _fresh_python(
        "import json, numpy, threadpoolctl, scipy.linalg\n"
        "before = [i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas']\n"
        "from src.audio.lipsync.analysis import FrameAnalyzer\n"
        "FrameAnalyzer()\n"
        "after = {i['filepath']: i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}\n"
        "print(json.dumps({'before': before, 'after': after}))\n"
    )
    import json

    got = json.loads(out.strip().splitlines()[-1])
    assert got["after"], "no BLAS library found loaded"
    assert all(n == 1 for n in got["after"].values()), got
    assert any("scipy" in p for p in got["after"]), f"SciPy's own BLAS not seen: {got}"


def test_onnx_options_do_not_spin() -> None:
    ort = pytest.importorskip("onnxruntime")
    from src.core.runtime.threads import cpu_count, onnx_session_options

    opts = onnx_session_options(ort.SessionOptions(), 0)
    assert opts.intra_op_num_threads == cpu_count()
    assert opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert onnx_session_options(ort.SessionOptions(), 3).intra_op_num_threads == 3


def test_numba_pool_is_not_started_by_the_sizing() -> None:
    """numba.set_num_threads would launch a threading layer; the warp's kernels need none."""
    out = _fresh_python(
        "from src.core.runtime.threads import configure\n"
        "configure()\n"
        "from numba.np.ufunc import parallel\n"
        "print(parallel._is_initialized)\n"
    )
    assert out.strip().splitlines()[-1] == "False"


def test_live_audio_run_does_not_burn_system_time(tmp_path: Path) -> None:
    """A live audio-driven run with a null output: system CPU time per wall second over 4 s of
    steady state stays under a quarter of a core (it was ~0.9 with spinning BLAS workers)."""
    from src.core.runtime.threads import process_cpu_seconds

    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, str(ROOT / "main.py"), "run", "--set", f"cache.dir={tmp_path}", "--source",
           str(ROOT / "assets" / "portrait.png"), "--audio", str(ROOT / "assets" / "speech_en.wav"),
           "--output", "null", "--duration", "60"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    running = threading.Event()
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "running (" in line:
                running.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert running.wait(120), "the run never started:\n" + "".join(lines[-20:])
        time.sleep(1.0)  # past the first frames
        u0, s0 = process_cpu_seconds(proc.pid)
        t0 = time.monotonic()
        time.sleep(4.0)
        u1, s1 = process_cpu_seconds(proc.pid)
        wall = time.monotonic() - t0
        assert proc.poll() is None, "the run ended early:\n" + "".join(lines[-20:])
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    system = (s1 - s0) / wall
    assert system <= 0.25, f"system time {system:.2f} of a core (user {(u1 - u0) / wall:.2f}): a pool is spinning"


def test_a_serve_speaker_limits_scipys_blas_it_loads() -> None:
    """The TTS thread of a serve session imports scipy.signal in the background: SciPy's OpenBLAS runs on one thread."""
    out = _fresh_python(
        "import json, sys, time, threadpoolctl\n"
        "from src.core.config import load_config\n"
        "from src.serve.speech import Speaker\n"
        "s = Speaker(load_config())\n"
        "s.start()\n"
        "t = time.monotonic()\n"
        "while time.monotonic() - t < 60 and not any('scipy' in i['filepath'] and i['num_threads'] == 1\n"
        "        for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'):\n"
        "    time.sleep(0.05)\n"
        "print(json.dumps({i['filepath']: i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}))\n"
    )
    import json

    got = json.loads(out.strip().splitlines()[-1])
    assert any("scipy" in p for p in got), f"SciPy's BLAS was not loaded: {got}"
    assert all(n == 1 for n in got.values()), got


def test_stage_threads_carry_their_names_to_the_os() -> None:
    """`top -H` and the per-thread CPU figures name a stage ('animate'), not 'python'."""
    from src.core.runtime.metrics import StageMetrics
    from src.core.runtime.stage import StageThread
    from src.core.runtime.threads import thread_cpu_seconds

    seen, stop = threading.Event(), threading.Event()

    def work() -> int:
        seen.set()
        time.sleep(0.01)
        return 0

    stage = StageThread("animate-test-stage-long-name", work, StageMetrics("animate"), stop)
    stage.start()
    try:
        assert seen.wait(5.0)
        tid = stage._thread.native_id
        with open(f"/proc/self/task/{tid}/comm") as f:
            assert f.read().strip() == "animate-test-st"  # Linux keeps 15 bytes
        assert f"animate-test-st/{tid}" in thread_cpu_seconds()
    finally:
        stop.set()
        assert stage.join(5.0)
    # the main thread's OS name is left alone
    with open(f"/proc/self/task/{threading.main_thread().native_id}/comm") as f:
        assert f.read().strip() != "animate-test-st"
