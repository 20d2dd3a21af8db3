"""scripts/benchmark.py --cpu: CPU per live session, measured on a real `main.py run` (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cpu_report_has_its_own_file() -> None:
    from src.bench.benchmark import default_json

    base = dict(lipsync=False, vowels=False, auto_tune=False, unet=False, output=None, viewers=1, audio=None, audio_only=False)
    assert default_json(Namespace(**base, cpu=True)).name == "cpu.json"


def test_cpu_benchmark_measures_a_real_session(tmp_path: Path, cache_dir: Path) -> None:
    """Two cases, 2 s each: the JSON holds each case's cores and the admission figure derived from
    the audio case; the figures are plausible for a 30 fps session (more than nothing, less than
    the machine)."""
    out = tmp_path / "cpu.json"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--cpu", "--cpu-cases", "none,audio",
                          "--cpu-seconds", "2", "--set", f"cache.dir={cache_dir}", "--driver", "none", "--json", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    cpu = report["cpu"]
    assert set(cpu["cases"]) == {"none", "audio"}
    for case in cpu["cases"].values():
        assert 0.005 < case["cpu_cores"] < cpu["cpus"], case
        assert case["wall_s"] >= 1.9
        assert case["busiest_threads"]
    per = report["cpu_cores_per_session"]
    assert report["audio_sessions_in_85pct"] == int(0.85 * cpu["cpus"] / per["audio"])
    assert "audio" in cpu["meets_goal"]
