"""A file input is analysed ahead in vectorised batches (issue 14: CPU per live session): the features,
vowel weights and mouth shapes are the same bit for bit as hop by hop, every shape still enters the
history when its block is delivered, and the per-hop path is not what runs for a file."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import src.audio.driver as driver_module
from src.audio import AudioDriver
from src.audio.io.file_player import FilePlayer
from src.audio.io.file_source import AudioFileReader
from src.audio.lipsync.analysis import FrameAnalyzer, FrameFeatures
from src.audio.lipsync.vowels import load_templates
from src.bench.audio import burst_signal, write_wav
from src.core.config import PROJECT_ROOT, AppConfig
from src.core.frames import MouthShape

SR = 16000
SPEECH = PROJECT_ROOT / "assets" / "speech_en.wav"
LOOKAHEAD = driver_module.LOOKAHEAD_HOPS


def _hops() -> list[np.ndarray]:
    """The bundled speech in 10 ms hops, then noise, a silent stretch and a loud clipped tone."""
    hops = list(AudioFileReader(SPEECH, SR).blocks(0.01))[:-1]
    rng = np.random.default_rng(0)
    hops += [rng.normal(0.0, 0.1, 160).astype(np.float32) for _ in range(200)]
    hops += [np.zeros(160, np.float32)] * 40
    tone = np.clip(2.0 * np.sin(np.arange(160 * 30) * 0.3), -1, 1).astype(np.float32)
    return hops + list(tone.reshape(30, 160))


def _same(a: FrameFeatures, b: FrameFeatures) -> bool:
    return a.level_db == b.level_db and a.voicing == b.voicing and a.mfcc.dtype == b.mfcc.dtype and np.array_equal(a.mfcc, b.mfcc)


@pytest.mark.parametrize("batch", [2, 7, 10, 64])
def test_push_many_gives_the_features_of_push_bit_for_bit(batch: int) -> None:
    hops = _hops()
    one, many = FrameAnalyzer(SR, 32.0), FrameAnalyzer(SR, 32.0)
    ref = [one.push(h) for h in hops]
    got: list[FrameFeatures] = []
    for i in range(0, len(hops), batch):
        got += many.push_many(hops[i : i + batch])
    assert len(got) == len(ref)
    bad = [i for i, (r, g) in enumerate(zip(ref, got, strict=True)) if not _same(r, g)]
    assert not bad, f"hops {bad[:5]} differ"
    assert sum(r.voicing > 0.5 for r in ref) > 50  # the file really has voiced hops (the test compares something)
    # The state after the batches is the state after the hops: the next hop agrees too.
    nxt = np.random.default_rng(1).normal(0, 0.2, 160).astype(np.float32)
    assert _same(one.push(nxt), many.push(nxt))


def test_push_many_with_uneven_blocks_falls_back_to_push() -> None:
    hops = [np.full(160, 0.1, np.float32), np.full(100, -0.1, np.float32), np.full(160, 0.05, np.float32)]
    one, many = FrameAnalyzer(SR, 32.0), FrameAnalyzer(SR, 32.0)
    assert all(_same(r, g) for r, g in zip([one.push(h) for h in hops], many.push_many(hops), strict=True))


def test_weights_many_equals_weights_row_by_row(make_config: Callable[..., AppConfig], tmp_path: Path) -> None:
    templates = load_templates(make_config(f"audio.voice_profile={tmp_path / 'none.json'}").audio)
    mfccs = np.stack([f.mfcc for f in FrameAnalyzer(SR, 32.0).push_many(_hops()[:400])])
    assert np.array_equal(templates.weights_many(mfccs), np.stack([templates.weights(m) for m in mfccs]))


def test_nearest_many_equals_the_argmin_of_distances_row_by_row(make_config: Callable[..., AppConfig]) -> None:
    templates = load_templates(make_config().audio)
    mfccs = np.stack([f.mfcc for f in FrameAnalyzer(SR, 32.0).push_many(_hops()[:400])])
    expected = [int(np.argmin(templates.distances(m))) for m in mfccs]
    assert templates.nearest_many(mfccs).tolist() == expected
    assert len(set(expected)) > 1  # the hops span more than one vowel class


def test_a_files_analysis_in_chunks_is_the_hop_by_hop_analysis(make_config: Callable[..., AppConfig]) -> None:
    """analyse_file (render's lip sync) reads ANALYSIS_CHUNK_HOPS at a time: the same levels, voicing and classes."""
    from src.audio.lipsync import track as track_module

    cfg = make_config()
    wav = SPEECH
    templates = load_templates(cfg.audio)
    got = track_module.analyse_file(wav, cfg, templates, recognise=False)
    one = FrameAnalyzer(cfg.audio.sample_rate_hz, cfg.audio.analysis_window_ms)
    feats = [one.push(b) for b in AudioFileReader(wav, cfg.audio.sample_rate_hz).blocks(cfg.audio.block_ms / 1000.0)]
    assert len(feats) > 2 * track_module.ANALYSIS_CHUNK_HOPS
    assert np.array_equal(got["levels"], np.array([f.level_db for f in feats], np.float32))
    assert np.array_equal(got["voicing"], np.array([f.voicing for f in feats], np.float32))
    assert got["classes"].tolist() == [int(np.argmin(templates.distances(f.mfcc))) for f in feats]


def test_peek_reads_ahead_without_delivering(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "b.wav", burst_signal(1, SR), SR)
    plain, peeking = FilePlayer(path, SR, 10.0, realtime=False, loop=True), FilePlayer(path, SR, 10.0, realtime=False, loop=True)
    plain.start()
    peeking.start()
    stop = threading.Event()
    for i in range(400):  # past the end of the file: the pass count and media time follow delivery, not peeking
        if i % 10 == 0:
            ahead = peeking.peek(10)
            assert len(ahead) == 10
        a, b = plain.read(stop)[0], peeking.read(stop)[0]
        assert np.array_equal(a.samples, b.samples) and a.media_time_s == b.media_time_s and a.index == b.index
        assert plain.passes == peeking.passes
    assert plain.passes >= 2


class _StepClock:
    """Time passes only when the audio thread sleeps (each block is due as soon as it is asked for)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep_until(self, t: float, stop: threading.Event) -> None:
        self.t = max(self.t, t)


Seen = list[tuple[float, MouthShape, bool]]


def _run(config: AppConfig, path: Path, lookahead: int, monkeypatch: pytest.MonkeyPatch) -> tuple[Seen, int]:
    monkeypatch.setattr(driver_module, "LOOKAHEAD_HOPS", lookahead)
    driver = AudioDriver(str(path), config, realtime=True, play_audio=False, clock=_StepClock())
    seen: Seen = []
    # What the animate stage would read at the moment each block is delivered.
    driver.add_block_listener(lambda b: seen.append((b.end_ts, driver.mouth_at(b.end_ts), driver.voice_active)))
    per_hop = 0
    push = driver._analyzer.push

    def counting_push(block: np.ndarray) -> FrameFeatures:
        nonlocal per_hop
        per_hop += 1
        return push(block)

    monkeypatch.setattr(driver._analyzer, "push", counting_push)
    driver.start()
    assert driver.ended.wait(60)
    driver.stop()
    return seen, per_hop


def test_driver_lookahead_delivers_the_same_shapes_at_the_same_times(make_config: Callable[..., AppConfig], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = make_config(f"audio.voice_profile={tmp_path / 'none.json'}")
    hop_by_hop, per_hop_calls = _run(config, SPEECH, 0, monkeypatch)
    ahead, per_hop_ahead = _run(config, SPEECH, LOOKAHEAD, monkeypatch)
    assert LOOKAHEAD > 1
    assert len(hop_by_hop) == len(ahead) > 1000
    assert hop_by_hop == ahead  # same time stamps, same shapes, same voice activity, block by block
    assert sum(s.open > 0.05 for _, s, _ in ahead) > 100  # the mouth really moved
    assert per_hop_calls == len(hop_by_hop)
    assert per_hop_ahead <= 2  # a file is analysed in batches (at most the short last block alone)


class _CountingClock(_StepClock):
    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    def sleep_until(self, t: float, stop: threading.Event) -> None:
        self.sleeps += 1
        super().sleep_until(t, stop)


def test_with_no_one_to_deliver_to_a_file_runs_ahead_with_the_same_history(make_config: Callable[..., AppConfig],
                                                                         tmp_path: Path) -> None:
    """No PCM listener, no playback, no in-time block listener (a null output): the shapes enter the
    history ahead of time with the same time stamps, and the thread sleeps once per batch, not per hop."""
    config = make_config(f"audio.voice_profile={tmp_path / 'none.json'}")
    timed_clock, ahead_clock = _CountingClock(), _CountingClock()
    timed = AudioDriver(str(SPEECH), config, realtime=True, play_audio=False, clock=timed_clock)
    delivered: list[float] = []
    timed.add_block_listener(lambda b: delivered.append(b.end_ts))  # on time: hop by hop
    ahead = AudioDriver(str(SPEECH), config, realtime=True, play_audio=False, clock=ahead_clock)
    untimed: list[float] = []
    ahead.add_block_listener(lambda b: untimed.append(b.end_ts), in_time=False)
    for d in (timed, ahead):
        d.start()
        assert d.ended.wait(60)
        d.stop()
    assert len(delivered) > 1000 and untimed == []  # an untimed listener is not called while running ahead
    probes = [t + dt for t in delivered for dt in (-0.004, 0.0, 0.004)]
    assert [ahead.mouth_at(t) for t in probes] == [timed.mouth_at(t) for t in probes]
    assert sum(timed.mouth_at(t).open > 0.05 for t in delivered) > 100
    assert timed_clock.sleeps >= len(delivered)
    assert ahead_clock.sleeps <= len(delivered) // LOOKAHEAD + 5
    assert ahead.stats()["blocks"] == timed.stats()["blocks"]


def test_next_opening_finds_the_rising_edges_ahead(make_config: Callable[..., AppConfig], tmp_path: Path) -> None:
    config = make_config(f"audio.voice_profile={tmp_path / 'none.json'}")
    driver = AudioDriver(str(SPEECH), config, realtime=True, play_audio=False, clock=_StepClock())
    driver.start()
    assert driver.ended.wait(60)
    driver.stop()
    threshold = 0.1 * config.audio.mouth.max_open
    t, edges = 999.0, []
    while (t_next := driver.next_opening(t, 1e9, threshold)) is not None:
        assert driver.mouth_at(t_next).open > threshold >= driver.mouth_at(t_next - 1e-6).open
        edges.append(t_next)
        t = t_next
    assert len(edges) >= 3
    assert driver.next_opening(edges[0] - 0.5, edges[0] - 1e-6, threshold) is None  # nothing before the first edge
