"""Mel filterbanks, spectrograms and MFCCs in NumPy (no librosa, no downloads).

Shared by the live viseme analysis (uLipSync-style MFCCs) and the audio-driven
U-Net (Wav2Lip-style log-mel windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney-style mel scale (linear below 1 kHz, log above), as librosa's default."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, mels)


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    freqs = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), freqs)


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate_hz: int, n_fft: int, n_mels: int, fmin_hz: float = 0.0, fmax_hz: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, Slaney-normalised (area-equal)."""
    fmax = float(fmax_hz) if fmax_hz is not None else sample_rate_hz / 2.0
    fft_freqs = np.linspace(0.0, sample_rate_hz / 2.0, n_fft // 2 + 1)
    mel_pts = mel_to_hz(np.linspace(hz_to_mel(fmin_hz), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_pts)
    ramps = mel_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_pts[2 : n_mels + 2] - mel_pts[:n_mels])
    weights *= enorm[:, None]
    weights.setflags(write=False)
    return weights.astype(np.float32)


def pre_emphasis(x: np.ndarray, coef: float = 0.97, prev: float = 0.0) -> np.ndarray:
    """y[n] = x[n] - coef * x[n-1] (`prev` is the sample before x[0], for streaming)."""
    y = np.empty_like(x, dtype=np.float32)
    y[0] = x[0] - coef * prev
    y[1:] = x[1:] - coef * x[:-1]
    return y


def frame_signal(x: np.ndarray, frame_length: int, hop_length: int, center: bool = True) -> np.ndarray:
    """(n_frames, frame_length) views; with `center` the signal is reflect-padded by frame_length // 2."""
    if center:
        pad = frame_length // 2
        mode: Literal["reflect", "constant"] = "reflect" if len(x) > pad else "constant"
        x = np.pad(x, (pad, pad), mode=mode)
    if len(x) < frame_length:
        x = np.pad(x, (0, frame_length - len(x)))
    n = 1 + (len(x) - frame_length) // hop_length
    return np.lib.stride_tricks.as_strided(x, shape=(n, frame_length), strides=(x.strides[0] * hop_length, x.strides[0]))


def power_spectrogram(x: np.ndarray, n_fft: int, hop_length: int, win_length: int | None = None, center: bool = True) -> np.ndarray:
    """|STFT|^2 with a Hann window: (n_frames, n_fft // 2 + 1)."""
    win_length = win_length or n_fft
    frames = frame_signal(np.asarray(x, dtype=np.float32), n_fft, hop_length, center)
    window = np.zeros(n_fft, np.float32)
    off = (n_fft - win_length) // 2
    window[off : off + win_length] = np.hanning(win_length + 1)[:-1]
    spec = np.fft.rfft(frames * window, n=n_fft, axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


@dataclass(frozen=True)
class MelSettings:
    sample_rate_hz: int = 16000
    n_fft: int = 800
    hop_length: int = 200
    win_length: int = 800
    n_mels: int = 80
    fmin_hz: float = 55.0
    fmax_hz: float = 7600.0
    pre_emphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0


WAV2LIP_MEL = MelSettings()  # the Wav2Lip / SyncTalk_2D settings (ANCHORS.md): 12.5 ms hop, 80 mels


def wav2lip_mel(audio: np.ndarray, settings: MelSettings = WAV2LIP_MEL) -> np.ndarray:
    """Normalised log-mel in [-4, 4] as Wav2Lip computes it: (n_mels, n_frames)."""
    x = pre_emphasis(np.asarray(audio, dtype=np.float32), settings.pre_emphasis)
    mag = np.sqrt(power_spectrogram(x, settings.n_fft, settings.hop_length, settings.win_length))
    fb = mel_filterbank(settings.sample_rate_hz, settings.n_fft, settings.n_mels, settings.fmin_hz, settings.fmax_hz)
    mel = mag @ fb.T
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - settings.ref_level_db
    norm = np.clip((2 * 4.0) * ((db - settings.min_level_db) / -settings.min_level_db) - 4.0, -4.0, 4.0)
    return norm.T.astype(np.float32)


def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix (n_out, n_in)."""
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def mfcc_from_power(power: np.ndarray, sample_rate_hz: int, n_fft: int, n_mels: int = 30, n_mfcc: int = 12) -> np.ndarray:
    """MFCC 1..n_mfcc (coefficient 0, the loudness, is dropped) from power spectra (n_frames, bins)."""
    fb = mel_filterbank(sample_rate_hz, n_fft, n_mels)
    mel_db = 10.0 * np.log10(np.maximum(power @ fb.T, 1e-10))
    return mel_db @ dct_matrix(n_mels, n_mfcc + 1)[1:].T
