"""Scalar clamping for the per-frame path.

`float(np.clip(x, lo, hi))` on one number costs a NumPy dispatch (~5-8 µs on a cold cache); a frame does
dozens of them. `clamp` gives the same number (NaN stays NaN) with two comparisons.
"""

from __future__ import annotations


def clamp(x: float, lo: float, hi: float) -> float:
    """x limited to [lo, hi], as a Python float (the value `float(np.clip(x, lo, hi))` gives)."""
    return float(min(max(x, lo), hi))
