"""`python main.py serve`: starts, prints its address, answers, stops on SIGINT; user mistakes are one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.paths import ROOT


def _serve(cache_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ}
    env.pop("PYTHONPATH", None)
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "serve", "--set", f"cache.dir={cache_dir}", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_starts_answers_and_stops_on_sigint(cache_dir: Path) -> None:
    proc = _serve(cache_dir, "--port", "0", "--max-sessions", "2")
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "puppetcam serve (local engine, up to 2 sessions): http://127.0.0.1:" in line, line
        base = line.split(": ", 1)[1].strip().rstrip("/")
        with urllib.request.urlopen(f"{base}/health", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        req = urllib.request.Request(f"{base}/api/sessions", data=b'{"driver": "none"}', method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            assert resp.status == 201
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "session" in err and "stopped" in err  # the session was ended on the way out


def test_busy_port_and_unknown_engine_are_one_line_errors(cache_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _serve(cache_dir, "--port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().splitlines()[-1].startswith(f"error: --port {port}: already in use")
    proc = _serve(cache_dir, "--engine", "warp-drive")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--engine 'warp-drive': unknown session engine; known: local" in err
