"""Sizing of every thread pool the process uses, so that idle workers sleep instead of spinning.

The work here is many small pieces at a fixed rate (a 10 ms audio hop, a 33 ms frame): a BLAS
product of 257x30 floats or a 512x512 remap is done faster on the calling thread than woken
workers could take it, and pools sized for throughput keep their workers busy-waiting between
calls. Measured: a live audio-driven run spent 19 s of system time in 21 s, OpenBLAS's two
workers calling `sched_yield` ~26,000 times a second between the analysis' matrix products.

The sizing is done in code where each pool is first used (not by environment variables alone),
so it also holds when `src` is imported by another program:

* BLAS (NumPy's and SciPy's OpenBLAS): `limit_blas()`, 1 thread, through threadpoolctl.
  A library loaded later (SciPy's own OpenBLAS) is limited when `limit_blas()` runs after it.
* OpenCV: `cv2.setNumThreads(CV_THREADS)`; its pool is kept (remap is parallel) but small.
* numba: the compiled kernels are not `parallel=True`, so it starts no pool; a threading layer
  that something else started is set to one worker.
* ONNX Runtime: `onnx_session_options()` sizes intra/inter-op pools and turns spinning off.
* MediaPipe sizes its own calculator threads; it has no setting for them in 0.10.21.

Every function is idempotent and cheap after the first call.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

BLAS_THREADS = 1
CV_THREADS = 1
NUMBA_THREADS = 1

_lock = threading.Lock()
_blas_limited: set[str] = set()  # filepaths of BLAS libraries already limited
_cv_done = False
_numba_done = False


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def limit_blas(threads: int = BLAS_THREADS) -> None:
    """Limit every BLAS library loaded so far (NumPy's, SciPy's) to `threads` threads."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # pragma: no cover - a pinned dependency
        log.debug("threadpoolctl missing: BLAS pools left as they are")
        return
    with _lock:
        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        new = [i for i in libs if i["filepath"] not in _blas_limited or i["num_threads"] != threads]
        if not new:
            return
        threadpool_limits(limits=threads, user_api="blas")  # not a context: stays for the process
        _blas_limited.update(i["filepath"] for i in libs)


def limit_opencv(threads: int = CV_THREADS) -> None:
    """OpenCV's parallel_for_ pool: `threads` workers (0 would disable it; 1 runs on the caller)."""
    global _cv_done
    with _lock:
        if _cv_done:
            return
        import cv2

        cv2.setNumThreads(threads)
        _cv_done = True


def limit_numba(threads: int = NUMBA_THREADS) -> None:
    """numba's threading layer: `threads` workers if something started it.

    The warp's kernels are not `parallel=True`, so no layer is started; `numba.set_num_threads`
    would start one (it launches the layer first), so it is only called on a running layer.
    """
    global _numba_done
    with _lock:
        if _numba_done:
            return
        try:
            from numba.np.ufunc import parallel
        except ImportError:  # pragma: no cover - numba is pinned
            _numba_done = True
            return
        if not getattr(parallel, "_is_initialized", False):
            return  # not started: nothing to size (checked again on the next call)
        import numba

        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        _numba_done = True


def configure() -> None:
    """Every pool this package uses in a live run: BLAS, OpenCV, numba."""
    limit_blas()
    limit_opencv()
    limit_numba()


def onnx_session_options(opts: Any, intra_op_threads: int = 0) -> Any:
    """Size ONNX Runtime's pools on `opts` and turn its spin-waiting off; returns `opts`.

    `intra_op_threads` 0 means all CPUs this process may use (a network is big enough work);
    the inter-op pool is 1 (sequential execution) and neither pool spins between calls.
    """
    opts.intra_op_num_threads = intra_op_threads or cpu_count()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


_PR_SET_NAME = 15


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread its Python name (or `name`) at the OS level too, so that `top -H`, `ps -L`
    and the per-thread CPU figures (`thread_cpu_seconds`) say 'animate' instead of 'python'. Linux keeps
    15 bytes of it; elsewhere, or if the call fails, nothing happens."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    label = (name or threading.current_thread().name).encode("utf-8", "replace")[:15]
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, ctypes.c_char_p(label), 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl: names stay as they are
        pass


def thread_cpu_seconds(pid: int | None = None) -> dict[str, tuple[float, float]]:
    """Per-thread (user, system) CPU seconds of process `pid` (default: this one), by 'name/tid'."""
    base = f"/proc/{pid or os.getpid()}/task"
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, tuple[float, float]] = {}
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{name}/{tid}"] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return out


def process_cpu_seconds(pid: int | None = None) -> tuple[float, float]:
    """(user, system) CPU seconds of process `pid` (default: this one), all its threads, from /proc."""
    with open(f"/proc/{pid or os.getpid()}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick
