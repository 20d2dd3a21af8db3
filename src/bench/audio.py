#!/usr/bin/env python3
"""Audio-side benchmarks and the measuring helpers the tests and scripts/benchmark.py share.

    .venv/bin/python scripts/bench_audio.py                    # short versions of everything
    .venv/bin/python scripts/bench_audio.py --render-seconds 60 --latency-onsets 40 --drift-seconds 60

Importable pieces:
  make_speech_with_pauses(...)  speech from espeak-ng with silences (and optional noise), plus the clean truth
  truth_regions(clean)          where the speech really is (energy on the clean signal)
  lip_sync_timing(open, fps, regions, duration_s)
                                onset error, closing delay and silence opening of a per-frame mouth track
  measure_audio_render_speed(...)  audio seconds processed per wall-clock second (file_mouth_track + AAC mux)
  measure_audio_latency(...)    capture callback -> mouth_at() opening, through the real microphone path
                                (PulseAudio virtual mic); pass `open_times` to measure to the output frames
  measure_playback_drift(...)   a file played in real time: lag of the mouth at the start vs the end
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from src.audio.driver import AudioDriver
from src.audio.io.file_source import decode_audio
from src.audio.lipsync.track import file_mouth_track
from src.core.config import AppConfig, load_config
from src.core.runtime.metrics import percentiles

SR = 16000
PHRASES = (
    "Hello there, how are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Six spoons of fresh snow peas, five thick slabs of blue cheese.",
    "We also need a small plastic snake and a big toy frog for the kids.",
    "She can scoop these things into three red bags.",
)
OpenTimes = Callable[[AudioDriver, threading.Event], list[float]]


# -- test material ---------------------------------------------------------------------------------
def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def write_wav(path: Path, samples: np.ndarray, rate_hz: int = SR, channels: int = 1) -> Path:
    """16-bit PCM wav (samples: (n,) or (n, channels) float in [-1, 1])."""
    data = np.clip(np.asarray(samples, np.float64), -1.0, 1.0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate_hz)
        w.writeframes((data * 32767.0).round().astype("<i2").tobytes())
    return path


def speak(text: str, path: Path, voice: str = "en-us", speed_wpm: int = 160) -> np.ndarray:
    """Speech from espeak-ng as 16 kHz mono float32, digital silence trimmed from both ends."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(path), text], check=True, capture_output=True)
    x = decode_audio(path)
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    return x[nz[0] : nz[-1] + 1] if nz.size else x


def make_speech_with_pauses(
    workdir: Path,
    phrases: Sequence[str] = PHRASES[:3],
    gap_s: float = 0.8,
    lead_s: float = 0.6,
    voice: str = "en-us",
    noise_dbfs: float | None = None,
    seed: int = 0,
    name: str = "speech.wav",
) -> tuple[Path, np.ndarray, np.ndarray]:
    """Phrases separated by silence (optionally under white noise at `noise_dbfs` RMS), as a 16 kHz wav.

    Returns (path, clean speech, what was written)."""
    parts = [np.zeros(int(lead_s * SR), np.float32)]
    for i, text in enumerate(phrases):
        parts.append(speak(text, workdir / f"_phrase{i}.wav", voice))
        parts.append(np.zeros(int(gap_s * SR), np.float32))
    clean = np.concatenate(parts)
    mixed = clean.copy()
    if noise_dbfs is not None:
        rng = np.random.default_rng(seed)
        noise = rng.standard_normal(len(clean))
        mixed = clean + (noise * 10 ** (noise_dbfs / 20.0) / np.sqrt(np.mean(noise**2))).astype(np.float32)
    path = write_wav(workdir / name, mixed)
    return path, clean, mixed


def truth_regions(
    clean: np.ndarray, threshold_dbfs: float = -50.0, min_gap_s: float = 0.3, hop_s: float = 0.005
) -> list[tuple[float, float]]:
    """Speech regions of a clean (noise-free) signal: 5 ms hops above `threshold_dbfs`, gaps < min_gap_s bridged."""
    hop = int(hop_s * SR)
    n = len(clean) // hop
    rms = np.sqrt(np.mean(clean[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1))
    loud = 20 * np.log10(rms + 1e-12) > threshold_dbfs
    regions: list[list[float]] = []
    for i in np.flatnonzero(loud):
        t = i * hop_s
        if regions and t - regions[-1][1] < min_gap_s:
            regions[-1][1] = t + hop_s
        else:
            regions.append([t, t + hop_s])
    return [(a, b) for a, b in regions]


def lip_sync_timing(open_values: np.ndarray, fps: float, regions: list[tuple[float, float]], duration_s: float,
                    frac: float = 0.1) -> dict[str, Any]:
    """Compare a per-frame mouth-open series (frame k shown at k / fps) with true speech regions.

    onset_errors_ms: for each region, first frame (from 150 ms before it) whose opening reaches `frac` of
    the range, minus the speech onset. close_delays_ms: for each region followed by >= 350 ms of silence,
    first frame after the end at or below `frac` of the range, minus the end. silence_max_frac: the
    widest opening (as a share of the range) over silences, 150 ms after an end to 50 ms before an onset.
    """
    o = np.asarray(open_values, np.float64)
    rng = float(o.max() - min(0.0, o.min())) if o.size else 0.0
    thr = frac * rng
    t = np.arange(len(o)) / fps
    onset_err, close_delay, silence = [], [], 0.0
    for i, (s, e) in enumerate(regions):
        win = np.flatnonzero((t >= s - 0.15) & (t <= e))
        hit: np.ndarray | list[int] = win[o[win] >= thr] if rng > 0 else []
        onset_err.append(1000.0 * (t[hit[0]] - s) if len(hit) else float("inf"))
        nxt = regions[i + 1][0] if i + 1 < len(regions) else duration_s
        if nxt - e >= 0.35:
            after = np.flatnonzero((t >= e) & (o <= thr))
            close_delay.append(1000.0 * (t[after[0]] - e) if len(after) else float("inf"))
    bounds = [(0.0, regions[0][0] if regions else duration_s)] + [
        (regions[i][1] + 0.15, (regions[i + 1][0] if i + 1 < len(regions) else duration_s)) for i in range(len(regions))
    ]
    for a, b in bounds:
        sel = (t >= a) & (t <= b - 0.05)
        if sel.any() and rng > 0:
            silence = max(silence, float(o[sel].max() / rng))
    finite = [abs(x) for x in onset_err if math.isfinite(x)]
    return {
        "range": rng,
        "onset_errors_ms": [round(x, 1) for x in onset_err],
        "onset_abs_median_ms": round(float(np.median(finite)), 1) if finite else float("inf"),
        "onset_misses": sum(1 for x in onset_err if not math.isfinite(x)),
        "close_delays_ms": [round(x, 1) for x in close_delay],
        "close_max_ms": round(max(close_delay), 1) if close_delay else 0.0,
        "silence_max_frac": round(silence, 3),
    }


# -- render speed ----------------------------------------------------------------------------------
def long_speech(workdir: Path, seconds: float = 60.0) -> tuple[Path, np.ndarray]:
    """About `seconds` of espeak-ng speech with pauses (phrases repeated)."""
    parts: list[np.ndarray] = [np.zeros(int(0.3 * SR), np.float32)]
    cache: dict[int, np.ndarray] = {}
    total, i = 0.3, 0
    while total < seconds:
        k = i % len(PHRASES)
        if k not in cache:
            cache[k] = speak(PHRASES[k], workdir / f"_long{k}.wav")
        seg = np.concatenate([cache[k], np.zeros(int(0.5 * SR), np.float32)])
        parts.append(seg)
        total += len(seg) / SR
        i += 1
    audio = np.concatenate(parts)[: int(seconds * SR)]
    return write_wav(workdir / "long_speech.wav", audio), audio


def measure_audio_render_speed(path: str | Path | None = None, seconds: float = 60.0, config: AppConfig | None = None,
                         fps: float = 30.0, method: str | None = None) -> dict[str, Any]:
    """Audio seconds processed per wall-clock second for the audio side of a render:
    the per-frame mouth track (decode, analysis, phone recognition, visemes) and the AAC mux."""
    import av

    from src.output.audio_mux import AudioFileMux

    config = config or load_config()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(path) if path else long_speech(Path(tmp), seconds)[0]
        t0 = time.perf_counter()
        track = file_mouth_track(src, fps, config, method=method)
        t_track = time.perf_counter() - t0
        out = Path(tmp) / "audio_only.mp4"
        t1 = time.perf_counter()
        container = av.open(str(out), mode="w")
        mux = AudioFileMux(src)
        mux.open(container)
        for k in range(track.n_frames):
            mux.mux_until(container, Fraction(k, 1) / Fraction(fps).limit_denominator(1001))
        mux.finish(container)
        container.close()
        t_mux = time.perf_counter() - t1
    dur = track.duration_s
    return {
        "audio_s": round(dur, 2),
        "method": track.method,
        "track_s": round(t_track, 3),
        "mux_s": round(t_mux, 3),
        "track_x_realtime": round(dur / t_track, 1),
        "audio_x_realtime": round(dur / (t_track + t_mux), 1),
        "frames": track.n_frames,
    }


# -- live latency through the real microphone path ------------------------------------------------
def burst_signal(n_onsets: int, rate_hz: int = 48000, on_s: float = 0.3, off_s: float = 0.7, lead_s: float = 0.5) -> np.ndarray:
    """Voiced, vowel-like tone bursts (150 Hz harmonics, 5 ms fade-in) after silences."""
    t = np.arange(int(on_s * rate_hz)) / rate_hz
    buzz = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 15)) * 0.3
    buzz *= np.minimum(1.0, np.arange(len(t)) / (0.005 * rate_hz)) * np.minimum(1.0, (len(t) - np.arange(len(t))) / (0.005 * rate_hz))
    gap = np.zeros(int(off_s * rate_hz))
    return np.concatenate([np.zeros(int(lead_s * rate_hz))] + [np.concatenate([buzz, gap]) for _ in range(n_onsets)])


def poll_mouth_open(threshold: float, poll_s: float = 0.001) -> OpenTimes:
    """Default observer: polls driver.mouth_at(now) and records when the opening crosses `threshold`."""

    def run(driver: AudioDriver, stop: threading.Event) -> list[float]:
        times: list[float] = []
        was = False
        while not stop.is_set():
            now = time.monotonic()
            is_open = driver.mouth_at(now).open >= threshold
            if is_open and not was:
                times.append(now)
            was = is_open
            time.sleep(poll_s)
        return times

    return run


class OnsetDetector:
    """Block listener: where sound starts after >= `quiet_s` of digital quiet in the captured audio,
    with the time that sample reached the capture callback and its capture time."""

    def __init__(self, level: float = 0.01, quiet_level: float = 0.003, quiet_s: float = 0.3) -> None:
        self.level = level
        self.quiet_level = quiet_level
        self.quiet_samples = int(quiet_s * SR)
        self._quiet = 0
        self.onsets: list[tuple[float, float]] = []  # (arrival at the callback, capture time)

    def __call__(self, block: Any) -> None:
        x = np.abs(block.samples)
        loud = np.flatnonzero(x > self.level)
        if loud.size and self._quiet + loud[0] >= self.quiet_samples:
            i = int(loud[0])
            arrival = block.arrival_of(i)
            self.onsets.append((arrival if arrival is not None else block.end_ts, block.capture_ts + i / SR))
        above = np.flatnonzero(x > self.quiet_level)
        self._quiet = len(x) - 1 - int(above[-1]) if above.size else self._quiet + len(x)


def measure_audio_latency(config: AppConfig | None = None, n_onsets: int = 20, open_times: OpenTimes | None = None,
                          device: str | None = None) -> dict[str, Any]:
    """Latency from a sound onset reaching the capture callback to the mouth opening, through a
    PulseAudio virtual microphone recorded by sounddevice (the real capture path).

    `open_times(driver, stop)` runs on its own thread until `stop` is set and returns the monotonic
    times the mouth was seen opening; the default polls `driver.mouth_at(now)`. The lead passes one
    that builds the pipeline around `driver` and reports when output frames show the opening.
    Raises tests.support.vmic.VirtualMicUnavailable when PulseAudio cannot run here.
    """
    from tests.support.vmic import VirtualMic

    config = config or load_config()
    threshold = 0.1 * config.audio.mouth.max_open
    observer = open_times or poll_mouth_open(threshold)
    with tempfile.TemporaryDirectory() as tmp, VirtualMic() as vmic:
        wav = write_wav(Path(tmp) / "bursts.wav", burst_signal(n_onsets), 48000)
        driver = AudioDriver(f"mic:{device}" if device else "mic", config)
        detector = OnsetDetector()
        driver.add_block_listener(detector)
        stop = threading.Event()
        result: dict[str, list[float]] = {}
        driver.start()
        try:
            deadline = time.monotonic() + 10.0
            while driver.mic is not None and driver.mic.callbacks == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # a new PulseAudio stream takes ~2 s to deliver its first block
            time.sleep(0.3)
            th = threading.Thread(target=lambda: result.update(times=observer(driver, stop)), name="latency-observer")
            th.start()
            vmic.play(wav, wait=True)
            time.sleep(0.5)
            stop.set()
            th.join(timeout=10)
            stats = driver.stats()
        finally:
            stop.set()
            driver.stop()
    opens = sorted(result.get("times", []))
    lat_arrival, lat_capture = [], []
    for k, (arrival, capture) in enumerate(detector.onsets):
        nxt = detector.onsets[k + 1][0] if k + 1 < len(detector.onsets) else math.inf
        hit = [t for t in opens if arrival - 0.05 <= t < min(nxt, arrival + 0.9)]  # late counts as late, not missed
        if hit:
            lat_arrival.append(1000.0 * (hit[0] - arrival))
            lat_capture.append(1000.0 * (hit[0] - capture))
    return {
        "audio_latency_ms": _pct(lat_arrival),
        "capture_to_open_ms": _pct(lat_capture),
        "onsets_played": n_onsets,
        "onsets_captured": len(detector.onsets),
        "onsets_opened": len(lat_arrival),
        "mic": stats.get("mic", {}),
    }


def _pct(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and max in ms, rounded to 0.1 (None each when there are no values)."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    return {**{k: round(v, 1) for k, v in percentiles(values).items()}, "max": round(float(np.max(values)), 1)}


# -- file playback drift ---------------------------------------------------------------------------
def measure_playback_drift(seconds: float = 60.0, config: AppConfig | None = None) -> dict[str, Any]:
    """Play a file of tone bursts (one per second) in real time; for each burst, when the mouth opened
    minus when the burst is due on the playback clock. Drift = last minus first (and the slope)."""
    config = config or load_config()
    n = max(2, int(seconds) - 1)
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "bursts.wav", burst_signal(n, SR, lead_s=0.5), SR)
        driver = AudioDriver(str(wav), config, realtime=True)
        stop = threading.Event()
        out: dict[str, list[float]] = {}
        driver.start()
        assert driver.player is not None
        t0 = driver.player.t0
        th = threading.Thread(target=lambda: out.update(t=poll_mouth_open(0.1 * config.audio.mouth.max_open)(driver, stop)))
        th.start()
        driver.ended.wait(seconds + 30)
        stop.set()
        th.join(5)
        lag_stats = driver.stats()["file"]["lag_ms"]
        driver.stop()
    opens = out.get("t", [])
    due = [t0 + 0.5 + k * 1.0 for k in range(n)]
    lags = [1000.0 * (min((o for o in opens if d - 0.05 <= o < d + 0.5), default=math.nan) - d) for d in due]
    ok = [(k, x) for k, x in enumerate(lags) if math.isfinite(x)]
    if len(ok) < 2:
        return {"bursts": n, "opened": len(ok)}
    k, x = np.array(ok).T
    slope_ms_per_min = float(np.polyfit(k, x, 1)[0]) * 60.0
    head, tail = x[: max(1, len(x) // 10)], x[-max(1, len(x) // 10) :]
    return {
        "bursts": n,
        "opened": len(ok),
        "lag_first_ms": round(float(np.median(head)), 1),
        "lag_last_ms": round(float(np.median(tail)), 1),
        "drift_ms": round(float(np.median(tail) - np.median(head)), 1),
        "drift_ms_per_10min": round(slope_ms_per_min * 10.0, 1),
        "delivery_lag_ms": lag_stats,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description="audio benchmarks (short by default)")
    ap.add_argument("--render-seconds", type=float, default=20.0, help="0 = skip")
    ap.add_argument("--latency-onsets", type=int, default=10, help="0 = skip")
    ap.add_argument("--drift-seconds", type=float, default=0.0, help="0 = skip (it runs in real time)")
    ap.add_argument("--json", help="also write the report to this file")
    args = ap.parse_args()
    report: dict[str, Any] = {}
    if args.render_seconds > 0:
        if have_espeak():
            report["render_speed"] = measure_audio_render_speed(seconds=args.render_seconds)
        else:
            report["render_speed"] = "skipped: espeak-ng missing"
    if args.latency_onsets > 0:
        try:
            report["latency"] = measure_audio_latency(n_onsets=args.latency_onsets)
        except RuntimeError as exc:  # VirtualMicUnavailable
            report["latency"] = f"skipped: {exc}"
    if args.drift_seconds > 0:
        report["drift"] = measure_playback_drift(args.drift_seconds)
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
