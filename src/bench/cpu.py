"""CPU per live session (issue 14): `scripts/benchmark.py --cpu`.

Each case is a real `main.py run` in its own process, the way a user starts it: the bundled
portrait at the configured size (512 px) and rate (30 fps). After it logs that it is running
(and, with a viewer, after the viewer decodes its first frame) the first `warmup_s` are skipped;
then the process's CPU seconds (user + system, every thread, from /proc/PID/stat) are divided by
the wall seconds of the window. A WebRTC viewer is headless Chromium (scripts/bench_outputs.py's
ChromiumViewers); its own CPU is the viewer's, not the session's, and is not counted.

`audio_sessions_in_85pct` = floor(0.85 x CPUs / cores of one audio-driven session), from the
null-output case (`audio_webrtc_sessions_in_85pct`: with one viewer each). It is an estimate
from one session's cost, not a run of that many sessions.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from src.core.config import PROJECT_ROOT
from src.core.runtime.threads import cpu_count, process_cpu_seconds, thread_cpu_seconds

PORTRAIT = PROJECT_ROOT / "assets" / "portrait.png"
SPEECH = PROJECT_ROOT / "assets" / "speech_en.wav"
SHARE_OF_MACHINE = 0.85
GOALS = {"audio": 0.10, "audio+webrtc": 0.20, "video": 0.45}  # cores per session (issue 14)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def case_args(case: str, driver_video: str, audio: str) -> list[str]:
    """main.py run arguments for a case name: none | audio | video."""
    if case == "none":
        return ["--driver", "none", "--audio", "none"]
    if case == "audio":  # looped, like the video: the window is all steady speech, not the file's end and silence
        return ["--driver", "none", "--audio", audio, "--set", "audio.loop=true"]
    if case == "video":
        return ["--driver", driver_video, "--loop", "--audio", "none"]
    raise ValueError(f"unknown case {case!r}")


class Session:
    """A `main.py run` subprocess; `wait_running()` returns once it logs that it runs."""

    def __init__(self, args: list[str], overrides: list[str]) -> None:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        sets = [x for o in overrides for x in ("--set", o)]
        cmd = [sys.executable, str(PROJECT_ROOT / "main.py"), "run", *sets, "--source", str(PORTRAIT), *args, "--duration", "3600"]
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._running = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines = [*self.lines[-50:], line]
            if "running (" in line:
                self._running.set()

    def wait_running(self, timeout_s: float = 180.0) -> None:
        if not self._running.wait(timeout_s) or self.proc.poll() is not None:
            raise RuntimeError("session did not start: " + "".join(self.lines[-10:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def sample_cpu(pid: int, seconds: float) -> dict[str, Any]:
    """CPU of process `pid` over the next `seconds`: cores (user, system, total) and the busiest threads."""
    u0, s0 = process_cpu_seconds(pid)
    th0 = thread_cpu_seconds(pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    u1, s1 = process_cpu_seconds(pid)
    th1 = thread_cpu_seconds(pid)
    wall = time.monotonic() - t0
    threads = sorted(((sum(th1[k]) - sum(th0.get(k, (0.0, 0.0)))) / wall, k) for k in th1)
    return {
        "cpu_cores": round((u1 - u0 + s1 - s0) / wall, 4),
        "user_cores": round((u1 - u0) / wall, 4),
        "system_cores": round((s1 - s0) / wall, 4),
        "wall_s": round(wall, 2),
        "machine_load_1min": round(os.getloadavg()[0], 2),  # other processes share the cores: read the figure with it
        "busiest_threads": {k: round(c, 4) for c, k in reversed(threads[-12:]) if c > 0.001},
    }


def measure_case(case: str, viewer: bool, driver_video: str, audio: str, warmup_s: float, seconds: float,
                 overrides: list[str]) -> dict[str, Any]:
    args = case_args(case, driver_video, audio)
    port = _free_port()
    args += ["--output", f"webrtc:127.0.0.1:{port}" if viewer else "null"]
    session = Session(args, overrides)
    try:
        session.wait_running()
        if not viewer:
            time.sleep(warmup_s)
            result = sample_cpu(session.proc.pid, seconds)
        else:
            from src.bench.outputs import ChromiumViewers, chromium_missing

            reason = chromium_missing()
            if reason:
                return {"skipped": reason}
            with ChromiumViewers(f"http://127.0.0.1:{port}/", 1) as browsers:
                browsers.wait_decoding()
                time.sleep(warmup_s)
                page = browsers.pages[0]
                f0 = browsers.frames_decoded(page)
                result = sample_cpu(session.proc.pid, seconds)
                result["viewer_fps"] = round((browsers.frames_decoded(page) - f0) / result["wall_s"], 1)
        if session.proc.poll() is not None:
            raise RuntimeError(f"session {case} ended during the measurement: " + "".join(session.lines[-10:]))
    finally:
        session.stop()
    result["args"] = args
    return result


def measure_cpu(driver_video: str, audio: str | None = None, warmup_s: float = 3.0, seconds: float = 10.0,
                overrides: list[str] | None = None, cases: list[str] | None = None) -> dict[str, Any]:
    """Every case (none, audio, video; each alone and with one WebRTC viewer): the --cpu report."""
    audio = audio or str(SPEECH)
    names = cases or ["none", "audio", "video", "none+webrtc", "audio+webrtc", "video+webrtc"]
    per: dict[str, Any] = {}
    for name in names:
        base, _, extra = name.partition("+")
        per[name] = measure_case(base, extra == "webrtc", driver_video, audio, warmup_s, seconds, overrides or [])
    cpus = cpu_count()
    report: dict[str, Any] = {
        "cpus": cpus,
        "warmup_s": warmup_s,
        "window_s": seconds,
        "cases": per,
        "cpu_cores_per_session": {k: v.get("cpu_cores") for k, v in per.items()},
        "goals_cores": GOALS,
        "meets_goal": {k: per[k]["cpu_cores"] <= g for k, g in GOALS.items() if k in per and "cpu_cores" in per[k]},
    }
    for key, case in (("audio_sessions_in_85pct", "audio"), ("audio_webrtc_sessions_in_85pct", "audio+webrtc")):
        cores = per.get(case, {}).get("cpu_cores")
        if cores:
            report[key] = int(math.floor(SHARE_OF_MACHINE * cpus / cores))
    return report
