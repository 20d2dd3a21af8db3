"""The jitter buffer for pushed PCM: prefill, bounded size, underruns, flush."""

from __future__ import annotations

import numpy as np

from src.serve.jitter import JitterBuffer


def test_prefill_then_play_in_order() -> None:
    jb = JitterBuffer(target_samples=100, capacity_samples=1000)
    jb.push(np.arange(60, dtype=np.float32))
    assert jb.pull(50) is None  # below the target: still filling
    jb.push(np.arange(60, 120, dtype=np.float32))
    out = jb.pull(50)
    assert out is not None and np.array_equal(out, np.arange(50, dtype=np.float32))
    assert np.array_equal(jb.pull(70), np.arange(50, 120, dtype=np.float32))


def test_underrun_pads_with_silence_counts_and_refills() -> None:
    jb = JitterBuffer(target_samples=10, capacity_samples=1000)
    jb.push(np.ones(30, np.float32))
    out = jb.pull(50)
    assert out is not None and out[:30].sum() == 30 and not out[30:].any()
    assert jb.underruns == 1
    jb.push(np.ones(5, np.float32))
    assert jb.pull(5) is None  # waits for the target again


def test_bounded_drops_the_oldest() -> None:
    jb = JitterBuffer(target_samples=0, capacity_samples=100)
    jb.push(np.arange(250, dtype=np.float32))
    assert len(jb) == 100 and jb.dropped_samples == 150
    assert jb.pull(1)[0] == 150  # type: ignore[index]


def test_flush_plays_a_tail_below_the_target_without_an_underrun() -> None:
    jb = JitterBuffer(target_samples=100, capacity_samples=1000)
    jb.push(np.ones(30, np.float32))
    assert jb.pull(10) is None
    jb.flush()
    assert jb.pull(10) is not None and jb.pull(40) is not None
    assert jb.underruns == 0
