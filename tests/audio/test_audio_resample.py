"""The streaming resampler: block edges leave no trace, the signal is right, channels mix down."""

from __future__ import annotations

import numpy as np
import pytest

from src.audio.io.resample import StreamingResampler, downmix


def _tones(rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_blocks_of_any_size_give_the_same_samples_as_one_call(rate: int) -> None:
    x = _tones(rate)
    whole = StreamingResampler(rate, 16000).process(x)
    r = StreamingResampler(rate, 16000)
    rng = np.random.default_rng(rate)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 700))
        parts.append(r.process(x[i : i + n]))
        i += n
    streamed = np.concatenate(parts)
    assert len(streamed) == len(whole) == 16000
    np.testing.assert_array_equal(streamed, whole)


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_output_is_the_input_signal_at_16k(rate: int) -> None:
    r = StreamingResampler(rate, 16000)
    y = np.concatenate([r.process(b) for b in np.array_split(_tones(rate, 2.0), 37)])
    m = np.arange(len(y))
    pos = r.input_position(m) / rate  # seconds each output sample represents (filter delay included)
    ideal = 0.5 * np.sin(2 * np.pi * 440 * pos) + 0.3 * np.sin(2 * np.pi * 3000 * pos)
    steady = slice(400, len(y) - 50)
    assert np.max(np.abs(y[steady] - ideal[steady])) < 1e-3


def test_no_clicks_at_10ms_block_edges() -> None:
    rate = 44100
    r = StreamingResampler(rate, 16000)
    x = _tones(rate)
    y = np.concatenate([r.process(x[i : i + 441]) for i in range(0, len(x), 441)])
    jumps = np.abs(np.diff(y[400:]))
    # the largest sample-to-sample step of the tones themselves at 16 kHz is ~0.5*2*pi*440/16000 + 0.3*2*pi*3000/16000
    assert jumps.max() < 0.5 * 2 * np.pi * 440 / 16000 + 0.3 * 2 * np.pi * 3000 / 16000 + 0.01


def test_images_above_8k_are_removed_when_downsampling() -> None:
    rate = 48000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 12000 * t)).astype(np.float32)  # would alias to 4 kHz
    y = StreamingResampler(rate, 16000).process(x)
    assert np.sqrt(np.mean(y[200:] ** 2)) < 1e-3


def test_same_rate_passes_through() -> None:
    x = _tones(16000)
    r = StreamingResampler(16000, 16000)
    assert r.passthrough
    np.testing.assert_array_equal(r.process(x), x)


def test_downmix_averages_channels() -> None:
    st = np.stack([np.full(10, 0.5, np.float32), np.full(10, -0.1, np.float32)], axis=1)
    np.testing.assert_allclose(downmix(st), np.full(10, 0.2), atol=1e-7)
    assert downmix(st[:, :1]).shape == (10,)
