"""`python main.py serve --engine ray`: a one-line hint (exit 2) without Ray; with Ray, a local Ray instance on
loopback that serves sessions and is shut down with the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def _serve(cache_dir: Path, *args: str, pythonpath: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--set", f"cache.dir={cache_dir}", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_without_ray_the_error_names_the_requirements_file(cache_dir: Path, tmp_path: Path) -> None:
    fake = tmp_path / "ray"  # a `ray` that cannot be imported, as on a machine without it
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    proc = _serve(cache_dir, "--engine", "ray", "--port", "0", pythonpath=str(tmp_path))
    _, err = proc.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, err
    assert "requirements-ray.txt" in lines[0] and "--engine ray" in lines[0]


def test_ray_address_needs_the_ray_engine(cache_dir: Path) -> None:
    proc = _serve(cache_dir, "--ray-address", "auto", "--port", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--ray-address auto: only with --engine ray" in err.strip().splitlines()[-1]


def test_serve_with_a_local_ray_instance(cache_dir: Path) -> None:
    pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
    proc = _serve(cache_dir, "--engine", "ray", "--port", "0", "--max-sessions", "2")
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "puppetcam serve (ray engine, up to 2 sessions): http://127.0.0.1:" in line, line
        base = line.split(": ", 1)[1].strip().rstrip("/")
        with urllib.request.urlopen(f"{base}/health", timeout=10) as resp:
            assert json.loads(resp.read())["engine"] == "ray"
        req = urllib.request.Request(f"{base}/api/sessions", data=b'{"driver": "none", "output_size_px": 128}',
                                     method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            assert resp.status == 201
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
