"""A streaming polyphase resampler (any rational ratio) and channel down-mixing.

The filter history is carried from one block to the next, so a stream cut into
blocks of any size gives exactly the samples of the whole signal resampled at
once: no clicks at block edges.
"""

from __future__ import annotations

import math
from functools import lru_cache
from math import gcd

import numpy as np

STOPBAND_DB = 80.0


def kaiser_order(ripple_db: float, width: float) -> tuple[int, float]:
    """(taps, Kaiser beta) for a stopband `ripple_db` down and a transition `width` (a fraction of Nyquist): Kaiser's
    formulas, as `scipy.signal.kaiserord` computes them."""
    a = abs(ripple_db)
    if a > 50:
        beta = 0.1102 * (a - 8.7)
    elif a > 21:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    else:
        beta = 0.0
    return int(math.ceil((a - 7.95) / 2.285 / (math.pi * width) + 1)), beta


def kaiser_lowpass(numtaps: int, cutoff_hz: float, beta: float, fs_hz: float) -> np.ndarray:
    """A windowed-sinc low-pass with unit gain at DC, as `scipy.signal.firwin(numtaps, cutoff_hz,
    window=("kaiser", beta), fs=fs_hz)` makes it (the same taps in float32). Written out because importing
    scipy.signal costs 0.6-0.9 s of every process and session that opens a microphone."""
    c = cutoff_hz / (fs_hz / 2.0)
    m = np.arange(numtaps) - 0.5 * (numtaps - 1)
    h = c * np.sinc(c * m) * np.kaiser(numtaps, beta)
    return h / np.sum(h)


@lru_cache(maxsize=8)
def _design(up: int, down: int, low_rate_hz: float, up_rate_hz: float) -> np.ndarray:
    """Kaiser low-pass for the up-sampled rate: stopband from the lower Nyquist, (taps_per_phase, up)."""
    width_hz = 0.1 * low_rate_hz
    numtaps, beta = kaiser_order(STOPBAND_DB, width_hz / (up_rate_hz / 2.0))
    per_phase = max(4, -(-numtaps // up))
    n = per_phase * up
    cutoff_hz = low_rate_hz / 2.0 - width_hz / 2.0
    h = kaiser_lowpass(n, cutoff_hz, beta, up_rate_hz) * up
    # phases[p, k] = h[p + k * up]: the taps that meet input samples for output phase p
    phases = h.reshape(per_phase, up).T.astype(np.float32)
    phases.setflags(write=False)
    return phases


class StreamingResampler:
    """Resamples mono float32 blocks from `in_rate_hz` to `out_rate_hz`, keeping state between blocks.

    Output sample m holds the input signal at input sample position
    `m * in_rate / out_rate - delay_in_samples` (the filter's group delay).
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError(f"sample rates must be > 0, got {in_rate_hz} -> {out_rate_hz}")
        g = gcd(int(in_rate_hz), int(out_rate_hz))
        self.in_rate_hz = int(in_rate_hz)
        self.out_rate_hz = int(out_rate_hz)
        self.up = self.out_rate_hz // g
        self.down = self.in_rate_hz // g
        self.passthrough = self.up == self.down
        if self.passthrough:
            self._phases = np.ones((1, 1), np.float32)
        else:
            low = min(self.in_rate_hz, self.out_rate_hz)
            self._phases = _design(self.up, self.down, float(low), float(self.in_rate_hz * self.up))
        self.taps_per_phase = self._phases.shape[1]
        self.delay_in_samples = 0.0 if self.passthrough else (self.taps_per_phase * self.up - 1) / (2.0 * self.up)
        self._hist = np.zeros(self.taps_per_phase - 1, np.float32)
        self._n_in = 0  # input samples consumed so far
        self._m_next = 0  # index of the next output sample

    @property
    def samples_in(self) -> int:
        return self._n_in

    @property
    def samples_out(self) -> int:
        return self._m_next

    def input_position(self, m: int | float) -> float:
        """The input sample position (may be fractional) that output sample `m` represents."""
        return m * self.down / self.up - self.delay_in_samples

    def process(self, x: np.ndarray) -> np.ndarray:
        """Feed one block (any length, mono float32); returns the output samples it completes."""
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if self.passthrough:
            self._n_in += len(x)
            self._m_next += len(x)
            return x.copy()
        k = self.taps_per_phase
        g0 = self._n_in - (k - 1)  # global index of buf[0]
        buf = np.concatenate([self._hist, x])
        self._n_in += len(x)
        m_end = (self._n_in * self.up + self.down - 1) // self.down
        m = np.arange(self._m_next, m_end, dtype=np.int64)
        self._m_next = m_end
        self._hist = buf[len(buf) - (k - 1) :].copy() if k > 1 else np.zeros(0, np.float32)
        if m.size == 0:
            return np.zeros(0, np.float32)
        pos = m * self.down
        n = pos // self.up
        p = pos % self.up
        idx = (n - g0)[:, None] - np.arange(k)[None, :]
        return np.einsum("ij,ij->i", buf[idx], self._phases[p]).astype(np.float32)

    def reset(self) -> None:
        self._hist[:] = 0.0
        self._n_in = 0
        self._m_next = 0


def downmix(x: np.ndarray) -> np.ndarray:
    """(frames, channels) or (frames,) -> (frames,) float32 mean of the channels."""
    x = np.asarray(x)
    if x.ndim == 1:
        return x.astype(np.float32, copy=False)
    if x.shape[1] == 1:
        return x[:, 0].astype(np.float32, copy=True)
    return x.mean(axis=1, dtype=np.float32)
