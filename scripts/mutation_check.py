"""Does the test suite notice when a central behaviour breaks? Apply one mutation at a time to a scratch
copy of the repository, run the tests that guard that behaviour, and report whether they failed.

    python scripts/mutation_check.py                 # every mutation (a few minutes)
    python scripts/mutation_check.py ring mouth      # only the mutations whose name contains a word
    python scripts/mutation_check.py --list          # the table

One line per mutation: `caught` (with the tests that failed) or `SURVIVED`. Exit status 1 when any
mutation survived, 2 when the table is stale (a file or snippet not found, or a test selection that
fails before any mutation). The table is data: when files move, update `path` (and `tests`).
The repository itself is never modified: everything happens in a temporary copy.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    old: str  # must occur exactly once in the file
    new: str
    tests: tuple[str, ...]  # pytest arguments (node ids or files)


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "mouth weight zeroed",
        "src/animation/motion/mixer.py",
        "            out.mouth = audio_mouth\n            out.mouth_weight = 1.0\n",
        "            out.mouth = audio_mouth\n            out.mouth_weight = 0.0\n",
        ("tests/app/test_audio_to_pixels.py",),
    ),
    Mutation(
        "ring order reversed",
        "src/core/runtime/ring_buffer.py",
        "            else:\n                item = self._items.popleft()\n",
        "            else:\n                item = self._items.pop()\n",
        ("tests/core/test_ring_buffer.py",),
    ),
    Mutation(
        "token check always passing (/stats)",
        "src/output/webrtc/server.py",
        "    async def _stats_json(self, request: web.Request) -> web.Response:\n"
        "        if not authorized(request, self.token):\n",
        "    async def _stats_json(self, request: web.Request) -> web.Response:\n"
        "        if False:\n",
        ("tests/output/test_webrtc_server.py::test_configured_token_is_enforced_on_loopback",),
    ),
    Mutation(
        "token check always passing (every route)",
        "src/output/webrtc/auth.py",
        "    return given is not None and hmac.compare_digest(given.encode(), token.encode())\n",
        "    return True\n",
        ("tests/output/test_webrtc_server.py",),
    ),
    Mutation(
        "mic overflow drops the newest audio",
        "src/audio/io/mic.py",
        "                old = self._raw.popleft()\n",
        "                old = self._raw.pop()\n",
        ("tests/audio/test_audio_mic.py::test_ring_overflow_drops_the_oldest_audio_and_counts_it",),
    ),
    Mutation(
        "a stalled mic is closed at once (no resume)",
        "src/audio/io/mic.py",
        'self._mark_lost(reason, stalled=reason.startswith("no audio"))\n',
        "self._mark_lost(reason, stalled=False)\n",
        ("tests/audio/test_audio_mic.py::test_a_stream_that_stalls_and_resumes_is_back_without_a_reopen",),
    ),
    Mutation(
        "calibration never asks for a vowel again",
        "src/audio/lipsync/calibrate.py",
        "MAX_TAKES = 3  # a vowel is asked for again after a dropout or too little voice\n",
        "MAX_TAKES = 1  # a vowel is asked for again after a dropout or too little voice\n",
        ("tests/audio/test_audio_mic.py::test_calibration_asks_again_after_a_dropout_and_stops_when_the_mic_stays_gone",),
    ),
    Mutation(
        "idle blink never fires",
        "src/animation/motion/idle.py",
        "        if self._blink_start is None and t >= self._next_blink:\n",
        "        if False:\n",
        ("tests/animation/test_idle_motion.py",),
    ),
    Mutation(
        "A/V mux offset by 100 ms (render)",
        "src/output/audio_mux.py",
        "            frame.pts = self._samples\n",
        "            frame.pts = self._samples + self.rate_hz // 10\n",
        ("tests/output/test_audio_render.py::test_rendered_mp4_carries_the_audio_in_sync",),
    ),
    Mutation(
        "A/V mux offset by 100 ms (live)",
        "src/output/audio_mux.py",
        "            start = int(round((ts - t0) * RATE_HZ))\n",
        "            start = int(round((ts - t0) * RATE_HZ)) + RATE_HZ // 10\n",
        ("tests/output/test_live_audio_mux.py",),
    ),
    Mutation(
        "fallback never triggers",
        "src/animation/fallback.py",
        "            except Exception as exc:  # noqa: BLE001 - a run-time failure must not end the stream\n"
        "                self._switch(exc, \"animate\")\n",
        "            except Exception:  # noqa: BLE001 - a run-time failure must not end the stream\n"
        "                raise\n",
        ("tests/animation/test_fallback_animator.py",),
    ),
    Mutation(
        "face-lost timeout ignored",
        "src/animation/motion/mixer.py",
        "and t - self._last_face_t < lost_s:\n",
        "and True:\n",
        ("tests/animation/test_idle_motion.py",),
    ),
)


def scratch_copy(dest: Path) -> Path:
    """The tracked and untracked-but-not-ignored files of the repository, copied under `dest/repo`;
    the shared test media (../shared) is linked beside it so that tests needing it run, not skip."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    repo = dest / "repo"
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, repo / rel)
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (dest / "shared").symlink_to(shared)
    return repo


def run_tests(repo: Path, python: str, tests: tuple[str, ...], timeout_s: float) -> tuple[bool, list[str], str]:
    """(passed, failing test ids, output tail) for a pytest run of `tests` in `repo`."""
    cmd = [python, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--tb=line", *tests]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    try:
        res = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return False, [f"(timed out after {timeout_s:.0f} s)"], ""
    out = res.stdout + res.stderr
    failing = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, flags=re.M)
    return res.returncode == 0, failing, out[-1500:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help="run only mutations whose name contains one of these words")
    ap.add_argument("--python", default=sys.executable, help="the interpreter with the test dependencies")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per test run")
    ap.add_argument("--no-baseline", action="store_true", help="skip running each selection unmutated first")
    ap.add_argument("--list", action="store_true", help="print the table and exit")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or any(w.lower() in m.name.lower() for w in args.only)]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.path} -> {' '.join(m.tests)}")
        return 0
    if not chosen:
        print(f"no mutation matches {args.only}", file=sys.stderr)
        return 2
    stale = []
    for m in chosen:
        path = ROOT / m.path
        n = path.read_text().count(m.old) if path.is_file() else -1
        if n != 1:
            stale.append(f"{m.name}: {m.path} " + ("not found" if n < 0 else f"has the snippet {n} times (want 1)"))
    if stale:
        print("stale mutation table (update the paths/snippets):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mutation_check_") as tmp:
        repo = scratch_copy(Path(tmp))
        if not args.no_baseline:
            for tests in dict.fromkeys(m.tests for m in chosen):
                ok, failing, tail = run_tests(repo, args.python, tests, args.timeout)
                if not ok:
                    print(f"baseline fails before any mutation: {' '.join(tests)}: {failing}\n{tail}", file=sys.stderr)
                    return 2
        survived = 0
        for m in chosen:
            target = repo / m.path
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new))
            t0 = time.monotonic()
            try:
                ok, failing, _ = run_tests(repo, args.python, m.tests, args.timeout)
            finally:
                target.write_text(original)
            took = time.monotonic() - t0
            if ok:
                survived += 1
                print(f"SURVIVED  {m.name}  ({m.path}; {' '.join(m.tests)} all pass, {took:.0f} s)", flush=True)
            else:
                names = ", ".join(f.split("::", 1)[-1] for f in failing) or "(collection or run error)"
                print(f"caught    {m.name}  ({took:.0f} s): {names}", flush=True)
    print(f"{len(chosen) - survived}/{len(chosen)} mutations caught")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
