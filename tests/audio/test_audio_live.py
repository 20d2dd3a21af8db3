"""The live (low-latency) mouth: speech opens it quickly and it closes when the voice stops; breath,
room noise at -40 dBFS and keyboard clicks leave it closed. Driven by real files through AudioDriver."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, lfilter

from src.audio import AudioDriver
from src.audio.io.blocks import AudioBlock
from src.bench.audio import PHRASES, make_speech_with_pauses, truth_regions, write_wav
from src.core.config import AppConfig
from tests.support.speech import needs_espeak

SR = 16000


@pytest.fixture
def config(make_config: Callable[..., AppConfig], tmp_path: Path) -> AppConfig:
    return make_config(f"audio.voice_profile={tmp_path / 'no_profile.json'}", size=512)


def live_open(path: Path, config: AppConfig) -> tuple[np.ndarray, np.ndarray]:
    """(media time at the end of each 10 ms block, mouth opening there) from a file run as fast as possible."""
    driver = AudioDriver(str(path), config, realtime=False)
    rows: list[tuple[float, float]] = []

    def on_block(b: AudioBlock) -> None:
        rows.append((b.media_time_s + b.duration_s, driver.mouth_at(b.end_ts).open))

    driver.add_block_listener(on_block)
    driver.start()
    assert driver.ended.wait(60), "the file should end"
    driver.stop()
    t, o = np.array(rows).T
    return t, o


def _rng_noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(int(seconds * SR))
    return (x * 10 ** (dbfs / 20) / np.sqrt(np.mean(x**2))).astype(np.float32)


def _breaths(seconds: float = 5.0, dbfs: float = -30.0) -> np.ndarray:
    b, a = butter(2, [300 / 8000, 3000 / 8000], "band")
    out = np.zeros(int(seconds * SR), np.float32)
    rng = np.random.default_rng(1)
    n = int(0.7 * SR)
    for k in range(int(seconds / 1.4)):
        seg = lfilter(b, a, rng.standard_normal(n)) * np.hanning(n)
        seg *= 10 ** (dbfs / 20) / np.sqrt(np.mean(seg[n // 4 : 3 * n // 4] ** 2))
        s0 = int((0.3 + 1.4 * k) * SR)
        out[s0 : s0 + n] += seg.astype(np.float32)
    return out


def _keyboard(seconds: float = 4.0, peak: float = 0.8) -> np.ndarray:
    """Typing: 5-8 ms clicks (a broadband tick, a 2.5 kHz key resonance, a 150 Hz desk thump), 4-8 per second."""
    out = np.zeros(int(seconds * SR), np.float32)
    rng = np.random.default_rng(2)
    t = 0.2
    while t < seconds - 0.1:
        n = int(rng.uniform(0.005, 0.008) * SR)
        tt = np.arange(n) / SR
        click = (rng.standard_normal(n) * 0.5 + np.sin(2 * np.pi * 2500 * tt)) * np.exp(-tt / 0.002)
        click += 0.7 * np.sin(2 * np.pi * 150 * tt) * np.exp(-tt / 0.004)
        s0 = int(t * SR)
        out[s0 : s0 + n] += (peak * click / np.max(np.abs(click))).astype(np.float32)
        t += rng.uniform(0.12, 0.25)
    return out


@needs_espeak
def test_speech_opens_the_mouth_and_silence_closes_it(tmp_path: Path, config: AppConfig) -> None:
    path, clean, _ = make_speech_with_pauses(tmp_path, PHRASES[:3], gap_s=0.8)
    t, o = live_open(path, config)
    max_open = config.audio.mouth.max_open
    regions = truth_regions(clean)
    assert len(regions) == 3
    for s, e in regions:
        inside = o[(t >= s) & (t <= e)]
        assert inside.max() > 0.3 * max_open, "the mouth opens during each phrase"
        # loose: within 100 ms of the onset the mouth is visibly open (the issue asks p95 <= 60 ms live)
        first = t[(t >= s) & (o >= 0.1 * max_open)][0]
        assert first - s < 0.1
        # closes (<= 10% of the range) within 250 ms after the voice stops, and stays closed in the pause
        closed = t[(t > e) & (o <= 0.1 * max_open)]
        assert closed.size and closed[0] - e < 0.25
        pause = o[(t > e + 0.25) & (t < e + 0.75)]
        assert pause.size == 0 or pause.max() <= 0.1 * max_open


@pytest.mark.parametrize(
    "name,make",
    [
        ("silence", lambda: np.zeros(3 * SR, np.float32)),
        ("room noise -40 dBFS", lambda: _rng_noise(4.0, -40.0)),
        ("breaths -30 dBFS", lambda: _breaths(5.0, -30.0)),
        ("keyboard clicks", lambda: _keyboard(4.0)),
    ],
)
def test_non_speech_leaves_the_mouth_closed(tmp_path: Path, config: AppConfig, name: str, make: Callable[[], np.ndarray]) -> None:
    path = write_wav(tmp_path / "sound.wav", make())
    _, o = live_open(path, config)
    assert o.max() <= 0.1 * config.audio.mouth.max_open, f"{name} opened the mouth to {o.max():.3f}"


@needs_espeak
def test_speech_in_room_noise_opens_only_for_speech(tmp_path: Path, config: AppConfig) -> None:
    path, clean, _ = make_speech_with_pauses(tmp_path, PHRASES[:2], gap_s=1.0, lead_s=1.0, noise_dbfs=-40.0)
    t, o = live_open(path, config)
    max_open = config.audio.mouth.max_open
    regions = truth_regions(clean)
    for s, e in regions:
        assert o[(t >= s) & (t <= e)].max() > 0.3 * max_open
    quiet = np.ones_like(t, bool)
    for s, e in regions:
        quiet &= ~((t >= s - 0.02) & (t <= e + 0.25))
    assert o[quiet].max() <= 0.1 * max_open
