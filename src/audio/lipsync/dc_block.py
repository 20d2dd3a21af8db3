"""The analysis's DC blocker, y[n] = x[n] - x[n-1] + 0.995 y[n-1], as one compiled loop (numba).

It replaces `scipy.signal.lfilter([1, -1], [1, -0.995], x, zi=z)` with the same float64 operations in the same order
(the transposed direct form: y = x + z, then z = 0.995 y - x), so the result is bit for bit lfilter's, whatever the
block sizes. The reason is start-up time: importing `scipy.signal` costs 0.6-0.9 s of every process and every session
that analyses audio (a `serve` session moved to another Ray node pays it again).
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - numba is a pinned dependency; the loop below runs as plain Python then
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        def wrap(fn):
            return fn

        return wrap


POLE = 0.995


@njit(cache=True, nogil=True, fastmath=False)
def _dc_block(x: np.ndarray, z: float, pole: float) -> tuple[np.ndarray, float]:
    y = np.empty(x.shape[0], np.float64)
    for i in range(x.shape[0]):
        xi = float(x[i])
        yi = xi + z
        y[i] = yi
        z = pole * yi - xi
    return y, z


def dc_block(x: np.ndarray, state: float) -> tuple[np.ndarray, float]:
    """(the block filtered, as float64; the filter state to pass with the next block). Start with state 0.0."""
    return _dc_block(np.ascontiguousarray(x), float(state), POLE)


def warm_up() -> None:
    """Compile (or load the cached compilation) for the float32 blocks the analysis passes, before the first hop:
    a first compilation in the audio thread would hold up the first mouth shapes."""
    dc_block(np.zeros(4, np.float32), 0.0)


__all__ = ["POLE", "dc_block", "warm_up"]
