"""Streaming audio analysis at a 10 ms hop: loudness (dBFS), MFCC and voicing per hop, and
voice activity with hysteresis against an adaptive noise floor.

MFCCs follow uLipSync (ANCHORS.md): pre-emphasis 0.97, Hamming window, 30 mel
channels in dB, DCT, coefficients 1..12. Voicing is the peak of the normalised,
band-limited (60-1000 Hz) autocorrelation over pitch lags 70-400 Hz; breath,
hiss and keyboard clicks score low, vowels high.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from src.audio.lipsync.dc_block import dc_block
from src.audio.lipsync.dc_block import warm_up as warm_up_dc_block
from src.audio.lipsync.mel import dct_matrix, mel_filterbank
from src.core.config import VadConfig

N_MELS = 30
N_MFCC = 12
SILENT_DB = -120.0
WARMUP_MS = 300.0
BACKTRACK_DB = 3.0  # offline: a region's start moves back over hops this far above the floor...
BACKTRACK_MS = 150.0  # ...for at most this long


@dataclass(slots=True)
class FrameFeatures:
    """What one analysis hop (the block just received) sounds like."""

    level_db: float  # RMS of the hop in dBFS (a full-scale square wave is 0)
    mfcc: np.ndarray  # (12,) MFCC 1..12 of the window ending at this hop
    voicing: float  # 0..1 periodicity of the window ending at this hop


def level_dbfs(x: np.ndarray) -> float:
    if len(x) == 0:
        return SILENT_DB
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return max(SILENT_DB, 20.0 * np.log10(rms + 1e-12))


class FrameAnalyzer:
    """Features for each hop from a rolling window of the most recent `window_ms` of audio."""

    def __init__(self, sample_rate_hz: int = 16000, window_ms: float = 32.0) -> None:
        from src.core.runtime.threads import configure

        configure()  # BLAS pools sized before the first hop (the hop's products must not wake a pool)
        warm_up_dc_block()  # and the DC blocker compiled
        self.rate = sample_rate_hz
        self.win = int(round(sample_rate_hz * window_ms / 1000.0))
        self.n_fft = 1 << (self.win - 1).bit_length()
        self._prev = 0.0  # last raw sample, for streaming pre-emphasis
        self._emph = np.zeros(self.win, np.float32)
        self._hamming = np.hamming(self.win).astype(np.float32)
        self._fb = mel_filterbank(sample_rate_hz, self.n_fft, N_MELS)
        self._dct = dct_matrix(N_MELS, N_MFCC + 1)[1:].T.copy()
        # The float64 operands NumPy would cast to on every product (C order, as its cast makes them:
        # the same BLAS call, the same result), made once.
        self._fb_t64 = np.ascontiguousarray(self._fb.T, dtype=np.float64)
        self._dct64 = np.ascontiguousarray(self._dct, dtype=np.float64)
        # Voicing: normalised cross-correlation of the newest `_corr_win` samples with the
        # audio 2.5..14 ms (400..70 Hz) earlier, on DC-blocked audio.
        self._corr_win = int(round(sample_rate_hz * 0.02))
        self._lag_lo = int(sample_rate_hz / 400.0)
        self._lag_hi = int(sample_rate_hz / 70.0)
        self._vbuf = np.zeros(self._corr_win + self._lag_hi, np.float32)
        self._dc_z = 0.0  # state of the DC blocker, carried between hops

    def reset(self) -> None:
        self._vbuf[:] = 0.0
        self._emph[:] = 0.0
        self._prev = 0.0
        self._dc_z = 0.0

    def push(self, block: np.ndarray) -> FrameFeatures:
        """Add one hop of samples and return its features."""
        x = np.asarray(block, dtype=np.float32)
        n = len(x)
        if n == 0:
            return FrameFeatures(SILENT_DB, np.zeros(N_MFCC, np.float32), 0.0)
        emph = np.empty_like(x)
        emph[0] = x[0] - 0.97 * self._prev
        emph[1:] = x[1:] - 0.97 * x[:-1]
        self._prev = float(x[-1])
        _shift_in(self._emph, emph)
        _shift_in(self._vbuf, self._dc_block(x))
        return FrameFeatures(level_dbfs(x), self.mfcc(), self.voicing())

    def push_many(self, blocks: list[np.ndarray]) -> list[FrameFeatures]:
        """`push` on each block in turn, the same features bit for bit, in one vectorised pass over
        the blocks (a file read ahead: the per-hop NumPy calls dominate the cost of one hop)."""
        xs = [np.asarray(b, dtype=np.float32) for b in blocks]
        n = len(xs[0]) if xs else 0
        if len(xs) < 2 or n == 0 or any(len(x) != n for x in xs):
            return [self.push(x) for x in xs]
        k = len(xs)
        x = np.concatenate(xs)
        emph = np.empty_like(x)
        emph[1:] = x[1:] - 0.97 * x[:-1]
        prev = [self._prev, *(float(v) for v in x[n - 1 : -1 : n])]
        for i in range(k):  # a hop's first sample as `push` computes it (in float64, then stored)
            emph[i * n] = x[i * n] - 0.97 * prev[i]
        self._prev = float(x[-1])
        dc = self._dc_block(x)
        # The analysis windows ending at each hop: views into the stream with the state before it.
        ewin = np.lib.stride_tricks.sliding_window_view(np.concatenate([self._emph, emph]), self.win)[n::n]
        vwin = np.lib.stride_tricks.sliding_window_view(np.concatenate([self._vbuf, dc]), len(self._vbuf))[n::n]
        self._emph[:] = ewin[-1]
        self._vbuf[:] = vwin[-1]
        spec = np.fft.rfft(ewin * self._hamming, self.n_fft, axis=-1)
        power = spec.real**2 + spec.imag**2
        # One product per hop: a batched (gemm) product rounds differently from the hop's (gemv).
        mel_db = 10.0 * np.log10(np.maximum(np.stack([p @ self._fb_t64 for p in power]), 1e-10))
        mfcc = np.stack([m @ self._dct64 for m in mel_db]).astype(np.float32)
        ms = np.mean(np.square(x.reshape(k, n), dtype=np.float64), axis=1)
        voicing = _voicing_many(vwin, self._corr_win, self._lag_hi, self._lag_lo)
        out = []
        for i in range(k):
            level = max(SILENT_DB, 20.0 * np.log10(float(np.sqrt(ms[i])) + 1e-12))
            out.append(FrameFeatures(level, mfcc[i], voicing[i]))
        return out

    def mfcc(self) -> np.ndarray:
        spec = np.fft.rfft(self._emph * self._hamming, self.n_fft)
        power = spec.real**2 + spec.imag**2
        mel_db = 10.0 * np.log10(np.maximum(power @ self._fb_t64, 1e-10))
        return (mel_db @ self._dct64).astype(np.float32)

    def _dc_block(self, x: np.ndarray) -> np.ndarray:
        y, self._dc_z = dc_block(x, self._dc_z)
        return y.astype(np.float32)

    def voicing(self) -> float:
        return _voicing(self._vbuf, self._corr_win, self._lag_hi, self._lag_lo)


def _voicing(x: np.ndarray, w: int, lag_hi: int, lag_lo: int) -> float:
    """Peak normalised cross-correlation of the newest `w` samples of `x` with the audio lag_lo..lag_hi earlier."""
    a = x[-w:]
    e0 = float(np.dot(a, a))
    if e0 <= 1e-10:
        return 0.0
    c = np.correlate(x[: w + lag_hi - lag_lo], a, mode="valid")  # c[k]: a against x[k:k+w]
    sq = np.concatenate([[0.0], np.cumsum(np.square(x, dtype=np.float64))])
    k = np.arange(len(c))
    ek = sq[k + w] - sq[k]
    nccf = c / np.sqrt(np.maximum(e0 * ek, 1e-20))
    return float(np.clip(nccf.max(), 0.0, 1.0))


def _voicing_many(xs: np.ndarray, w: int, lag_hi: int, lag_lo: int) -> list[float]:
    """`_voicing` of each row of `xs`, the same values: the products stay per row (BLAS dot), the
    element-wise parts and the running energies (sequential sums either way) are done for all rows."""
    a = xs[:, -w:]
    e0 = np.array([float(np.dot(r, r)) for r in a])
    c = np.stack([np.correlate(x[: w + lag_hi - lag_lo], r, mode="valid") for x, r in zip(xs, a, strict=True)])
    sq = np.zeros((len(xs), xs.shape[1] + 1))
    np.cumsum(np.square(xs, dtype=np.float64), axis=1, out=sq[:, 1:])
    m = c.shape[1]
    ek = sq[:, w : w + m] - sq[:, :m]
    nccf = c / np.sqrt(np.maximum(e0[:, None] * ek, 1e-20))
    peak = np.clip(nccf.max(axis=1), 0.0, 1.0)
    return [0.0 if e <= 1e-10 else float(p) for e, p in zip(e0, peak, strict=True)]


def _shift_in(buf: np.ndarray, x: np.ndarray) -> None:
    n = len(x)
    if n >= len(buf):
        buf[:] = x[-len(buf) :]
    else:
        buf[:-n] = buf[n:]
        buf[-n:] = x


class VoiceActivityDetector:
    """Voice on/off with hysteresis against an adaptive noise floor and minimum durations.

    On: `onset_min_ms` of hops louder than floor + onset_db (and above min_level_dbfs),
    at least one of them voiced. Off: `offset_min_ms` of hops quieter than floor +
    offset_db. The floor is the quietest (3-hop smoothed) level of the last
    `floor_window_ms` (minimum statistics: speech always has dips, steady noise has
    none), so room noise and hum lift it instead of opening the mouth. While voice
    is on it may rise only at `floor_rise_db_per_s` (a held vowel is not noise);
    for the first WARMUP_MS it is at most `initial_floor_dbfs` (a stream that starts
    with speech must not take the speech for the room).
    """

    def __init__(self, cfg: VadConfig, hop_s: float = 0.01, initial_floor_db: float | None = None) -> None:
        self.cfg = cfg
        self.hop_s = hop_s
        self._onset_hops = max(1, round(cfg.onset_min_ms / 1000.0 / hop_s))
        self._offset_hops = max(1, round(cfg.offset_min_ms / 1000.0 / hop_s))
        self._window_hops = max(1, round(cfg.floor_window_ms / 1000.0 / hop_s))
        self._warmup_hops = min(self._window_hops, round(WARMUP_MS / 1000.0 / hop_s))
        self._initial_floor = cfg.initial_floor_dbfs if initial_floor_db is None else initial_floor_db
        self.floor_db: float | None = None
        self._mins: deque[tuple[int, float]] = deque()  # sliding-window minimum (monotonic deque)
        self._recent_power: deque[float] = deque(maxlen=3)
        self.peak_db = -30.0
        self.active = False
        self._above = 0
        self._voiced_in_run = False
        self._below = 0
        self.onsets = 0
        self.hop_index = -1  # hops seen so far - 1
        self._run_start = 0  # first hop of the current loud run
        self._quiet_start = 0  # first hop of the current quiet run
        self.last_onset_hop = -1  # first loud hop of the run that turned voice on
        self.last_offset_hop = -1  # first quiet hop of the run that turned voice off

    @property
    def onset_hops(self) -> int:
        """Hops of sound needed before voice turns on (the detector's decision delay)."""
        return self._onset_hops

    @property
    def offset_hops(self) -> int:
        return self._offset_hops

    def update(self, level_db: float, voicing: float) -> bool:
        """Feed one hop; returns whether voice is on after it."""
        cfg = self.cfg
        self.hop_index += 1
        if self.floor_db is None:
            self.floor_db = min(level_db, self._initial_floor)
        floor = self.floor_db
        onset_thr = max(floor + cfg.onset_db, cfg.min_level_dbfs)
        offset_thr = max(floor + cfg.offset_db, cfg.min_level_dbfs - (cfg.onset_db - cfg.offset_db))
        if self.active:
            if level_db < offset_thr:
                if self._below == 0:
                    self._quiet_start = self.hop_index
                self._below += 1
                if self._below >= self._offset_hops:
                    self.active = False
                    self.last_offset_hop = self._quiet_start
                    self._above = 0
                    self._voiced_in_run = False
            else:
                self._below = 0
        else:
            if level_db >= onset_thr:
                if self._above == 0:
                    self._run_start = self.hop_index
                self._above += 1
                self._voiced_in_run = self._voiced_in_run or voicing >= cfg.voicing_threshold
                if self._above >= self._onset_hops and self._voiced_in_run:
                    self.active = True
                    self._below = 0
                    self.onsets += 1
                    self.last_onset_hop = self._run_start
            else:
                self._above = 0
                self._voiced_in_run = False
        self._track_floor(level_db)
        if self.active:
            self.peak_db = max(self.peak_db, level_db)
        self.peak_db = max(self.peak_db - 1.0 * self.hop_s, (self.floor_db or SILENT_DB) + 20.0)
        return self.active

    def _track_floor(self, level_db: float) -> None:
        self._recent_power.append(10.0 ** (level_db / 10.0))
        smooth = 10.0 * math.log10(max(sum(self._recent_power) / len(self._recent_power), 1e-12))
        i = self.hop_index
        while self._mins and self._mins[-1][1] >= smooth:
            self._mins.pop()
        self._mins.append((i, smooth))
        while self._mins[0][0] <= i - self._window_hops:
            self._mins.popleft()
        target = self._mins[0][1]
        if i < self._warmup_hops:
            target = min(target, self._initial_floor)
        if self.active and self.floor_db is not None:
            target = min(target, self.floor_db + self.cfg.floor_rise_db_per_s * self.hop_s)
        self.floor_db = target

    def loudness(self, level_db: float) -> float:
        """0..1 how loud this hop is between the voice threshold and the recent speech peak."""
        floor = self.floor_db if self.floor_db is not None else SILENT_DB
        lo = max(floor + self.cfg.offset_db, self.peak_db - 30.0)
        hi = max(lo + 6.0, self.peak_db - 4.0)
        return float(np.clip((level_db - lo) / (hi - lo), 0.0, 1.0))


def speech_regions(levels_db: np.ndarray, voicing: np.ndarray, cfg: VadConfig, hop_s: float = 0.01) -> list[tuple[float, float]]:
    """Voice regions (start_s, end_s) of a whole recording, with lookahead: each region starts at the
    first loud hop of the run that turned voice on, moved back over up to BACKTRACK_MS of hops still
    BACKTRACK_DB above the floor (a word's soft start under noise), and ends at the first quiet hop
    of the run that turned voice off. The live detector's decision delays are gone."""
    levels_db = np.asarray(levels_db, np.float64)
    if levels_db.size == 0:
        return []
    floor0 = float(np.percentile(levels_db, 5))  # lookahead: the recording's own quiet level
    vad = VoiceActivityDetector(cfg, hop_s, initial_floor_db=floor0)
    floors = np.empty_like(levels_db)
    regions: list[tuple[float, float]] = []
    start: int | None = None
    back = max(0, round(BACKTRACK_MS / 1000.0 / hop_s))
    for i, (lv, vo) in enumerate(zip(levels_db, voicing, strict=True)):
        floors[i] = vad.floor_db if vad.floor_db is not None else floor0
        was = vad.active
        now = vad.update(float(lv), float(vo))
        if now and not was:
            start = vad.last_onset_hop
            limit = max(start - back, round(regions[-1][1] / hop_s) if regions else 0)
            while start - 1 >= limit and levels_db[start - 1] > floors[start - 1] + BACKTRACK_DB:
                start -= 1
        elif was and not now and start is not None:
            regions.append((start * hop_s, vad.last_offset_hop * hop_s))
            start = None
    if start is not None:
        regions.append((start * hop_s, len(levels_db) * hop_s))
    return regions
