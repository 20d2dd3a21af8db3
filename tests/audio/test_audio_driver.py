"""AudioDriver with file inputs: real-time pacing on the monotonic clock without drift, looping, the end,
PCM listeners that can never stall the audio thread, and optional audible playback."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from src.audio import AudioDriver, AudioInputError, PcmQueue, decode_audio, parse_audio_spec
from src.audio.io.blocks import AudioBlock
from src.audio.io.file_player import FilePlayer
from src.bench.audio import burst_signal, write_wav
from src.core.config import AppConfig
from src.core.frames import MouthShape
from tests.support.fake_portaudio import FakeOutputDevice

SR = 16000


@pytest.fixture
def config(make_config: Callable[..., AppConfig], tmp_path: Path) -> AppConfig:
    return make_config(f"audio.voice_profile={tmp_path / 'no_profile.json'}")


@pytest.fixture
def bursts(tmp_path: Path) -> Path:
    """Voiced bursts at 0.5 s, 1.5 s, 2.5 s (0.3 s each), 3.5 s long."""
    return write_wav(tmp_path / "bursts.wav", burst_signal(3, SR), SR)


class SimClock:
    """A simulated monotonic clock: sleeping oversleeps by a random 0-4 ms (like a busy machine) and
    every block costs 0.3 ms of processing, so any pacing that accumulates errors drifts."""

    def __init__(self, start: float = 1000.0, seed: int = 0) -> None:
        self.t = start
        self.rng = np.random.default_rng(seed)

    def now(self) -> float:
        self.t += 0.0003
        return self.t

    def sleep_until(self, t: float, stop: threading.Event) -> None:
        self.t = max(self.t, t) + float(self.rng.uniform(0.0, 0.004))


def test_spec_parsing() -> None:
    assert parse_audio_spec("mic") == ("mic", None)
    assert parse_audio_spec("mic:USB Audio") == ("mic", "USB Audio")
    assert parse_audio_spec("mic:3") == ("mic", "3")
    assert parse_audio_spec("talk.wav") == ("file", "talk.wav")
    with pytest.raises(AudioInputError):
        parse_audio_spec("none")


def test_bad_file_is_a_user_error_before_start(tmp_path: Path, config: AppConfig) -> None:
    with pytest.raises(AudioInputError, match="not found"):
        AudioDriver(str(tmp_path / "nope.wav"), config)


def test_real_time_playback_stamps_blocks_on_the_monotonic_clock(bursts: Path, config: AppConfig) -> None:
    driver = AudioDriver(str(bursts), config, realtime=True)
    seen: list[tuple[float, float, float]] = []
    driver.add_block_listener(lambda b: seen.append((b.capture_ts, time.monotonic(), b.media_time_s)))
    assert driver.duration_s == pytest.approx(3.5, abs=0.01)
    t_start = time.monotonic()
    driver.start()
    assert driver.player is not None
    t0 = driver.player.t0
    assert driver.ended.wait(10)
    wall = time.monotonic() - t_start
    driver.stop()
    assert wall == pytest.approx(3.5, abs=0.3)
    cap, got, media = np.array(seen).T
    np.testing.assert_allclose(cap, t0 + media, atol=1e-9)  # stamped as if captured now, exactly on the file's clock
    lag = got - (cap + 0.01)  # delivered after the block has "finished being captured"
    assert lag.min() >= -1e-4
    assert np.median(lag) < 0.02


def test_mouth_at_follows_the_audio_in_real_time(bursts: Path, config: AppConfig) -> None:
    driver = AudioDriver(str(bursts), config, realtime=True)
    driver.start()
    assert driver.player is not None
    t0 = driver.player.t0
    opened, closed = [], []
    thr = 0.1 * config.audio.mouth.max_open
    while not driver.ended.is_set():
        now = time.monotonic()
        (opened if driver.mouth_at(now).open >= thr else closed).append(now - t0)
        time.sleep(0.005)
    driver.stop()
    opened_a = np.array(opened)
    for k in range(3):
        on = 0.5 + k
        assert np.any((opened_a > on) & (opened_a < on + 0.3)), f"burst {k} opened the mouth"
        assert not np.any((opened_a > on + 0.6) & (opened_a < on + 0.9)), f"mouth shut after burst {k}"
    assert driver.mouth_at(time.monotonic()) == MouthShape()  # closed at the end of the file
    assert driver.voice_active is False


def test_ten_minutes_of_playback_do_not_drift(tmp_path: Path, config: AppConfig) -> None:
    """A 10-minute file through FilePlayer on a clock that oversleeps at random: the delivery lag at
    minute 10 equals the lag at minute 1 (absolute deadlines), and stamps stay on the file's clock."""
    if shutil.which("sox") is None:
        pytest.skip("needs sox")
    minute = tmp_path / "minute.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(minute), "synth", "60", "sine", "200"], check=True)
    ten = tmp_path / "ten.wav"
    subprocess.run(["sox", str(minute), str(ten), "repeat", "9"], check=True)
    clock = SimClock()
    player = FilePlayer(ten, SR, 10.0, realtime=True, clock=clock)
    player.start()
    stop = threading.Event()
    lags: list[float] = []
    offsets: list[float] = []
    while True:
        blocks = player.read(stop)
        if not blocks:
            break
        b = blocks[0]
        lags.append(clock.t - (b.capture_ts + 0.01))
        offsets.append(b.capture_ts - (player.t0 + b.media_time_s))
    assert len(lags) == 60000
    lag = np.array(lags)
    minute1 = np.median(lag[6000:12000])
    minute10 = np.median(lag[54000:60000])
    assert abs(minute10 - minute1) < 0.020
    assert np.max(np.abs(offsets)) < 1e-6
    assert player.reanchors == 0


def test_the_mouth_keeps_its_timing_over_five_minutes(tmp_path: Path, config: AppConfig) -> None:
    """AudioDriver on the oversleeping clock, bursts every second for 5 minutes: the mouth opens as
    long after each burst's due time at minute 5 as at minute 1 (the shortened 10-minute check)."""
    path = write_wav(tmp_path / "long.wav", burst_signal(300, SR), SR)
    clock = SimClock(seed=1)
    driver = AudioDriver(str(path), config, realtime=True, clock=clock)
    thr = 0.1 * config.audio.mouth.max_open
    opens: list[float] = []
    state = {"open": False}

    def on_block(b: AudioBlock) -> None:
        is_open = driver.mouth_at(b.end_ts).open >= thr
        if is_open and not state["open"]:
            opens.append(b.end_ts)
        state["open"] = is_open

    driver.add_block_listener(on_block)
    driver.start()
    assert driver.ended.wait(120)
    driver.stop()
    assert driver.player is not None
    due = driver.player.t0 + 0.5 + np.arange(300) * 1.0
    assert len(opens) == 300
    delay = np.array(opens) - due
    assert np.all((delay > 0) & (delay < 0.1))
    assert abs(np.median(delay[-60:]) - np.median(delay[:60])) < 0.020


def test_looping_keeps_the_clock_running(bursts: Path, config: AppConfig) -> None:
    driver = AudioDriver(str(bursts), config, realtime=False, loop=True)
    seen: list[tuple[float, float]] = []
    driver.add_pcm_listener(lambda ts, x: seen.append((ts, len(x))))
    driver.start()
    deadline = time.monotonic() + 10
    while len(seen) < 1000 and time.monotonic() < deadline:
        time.sleep(0.01)
    driver.stop()
    assert driver.player is not None and driver.player.passes >= 2
    ts = np.array([s[0] for s in seen])
    assert np.all(np.diff(ts) > 0)  # capture times keep increasing across the loop
    np.testing.assert_allclose(np.diff(ts), 0.01, atol=1e-9)
    assert driver.ended.is_set()  # set by stop()


def test_a_stuck_pcm_consumer_never_blocks_the_audio(bursts: Path, config: AppConfig, caplog: pytest.LogCaptureFixture) -> None:
    driver = AudioDriver(str(bursts), config, realtime=False)
    never_read = PcmQueue(max_s=0.5)
    driver.add_pcm_listener(never_read)
    calls = []

    def broken(ts: float, x: np.ndarray) -> None:
        calls.append(ts)
        raise RuntimeError("consumer bug")

    driver.add_pcm_listener(broken)
    with caplog.at_level(logging.WARNING, logger="src.audio.driver"):
        driver.start()
        assert driver.ended.wait(10)
        driver.stop()
    assert driver.blocks == 350 and len(calls) == 350
    assert never_read.dropped_samples >= 350 * 160 - 0.5 * SR - 160
    assert sum("consumer bug" in r.getMessage() for r in caplog.records) == 1
    assert driver.stats()["listener_errors"] == 350
    first = never_read.get(timeout=0.1)
    assert first is not None and first[1].dtype == np.float32 and len(first[1]) == 160


def test_audible_playback_reaches_the_output_device(bursts: Path, config: AppConfig, monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The file's audio goes to the output device (a fake speaker below sounddevice): what the device plays is the
    file's sound, and whatever did not fit the 1 s queue (the driver runs faster than real time here) is counted."""
    speaker = FakeOutputDevice(monkeypatch, rate_hz=16000)
    with caplog.at_level(logging.WARNING, logger="src.audio.io.playback"):
        driver = AudioDriver(str(bursts), config, realtime=False, play_audio=True)
        driver.start()
        assert driver.ended.wait(10)
        played = np.concatenate([speaker.pull(160) for _ in range(2 * SR // 160)])  # 2 s: the queue and then silence
        dropped = driver.stats()["playback"]["dropped_samples"]
        driver.stop()
    assert driver.blocks == 350
    assert speaker.opened and speaker.opened[0]["samplerate"] == 16000 and speaker.closed
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not np.isnan(played).any(), "every sample the device asked for was filled"
    sound = played[np.abs(played) > 1e-3]
    assert len(sound) > 0.1 * SR, "the bursts reached the device"
    source = decode_audio(bursts)
    assert np.abs(sound).max() == pytest.approx(np.abs(source).max(), rel=0.05)
    assert dropped > 0 and dropped + len(played) >= len(source), "each sample was played or counted as dropped"


def test_audible_playback_failing_is_a_single_warning(bursts: Path, config: AppConfig, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    FakeOutputDevice(monkeypatch, broken=True)
    with caplog.at_level(logging.WARNING, logger="src.audio.io.playback"):
        driver = AudioDriver(str(bursts), config, realtime=False, play_audio=True)
        driver.start()
        assert driver.ended.wait(10)
        driver.stop()
    assert driver.blocks == 350, "the stream goes on without sound"
    failures = [r for r in caplog.records if "playback unavailable" in r.getMessage()]
    assert len(failures) == 1 and "Device unavailable" in failures[0].getMessage()


def test_mouth_at_returns_the_newest_shape_at_or_before_t(bursts: Path, config: AppConfig) -> None:
    driver = AudioDriver(str(bursts), config, realtime=False)
    assert driver.mouth_at(time.monotonic()) == MouthShape()
    rows: list[tuple[float, float]] = []
    driver.add_block_listener(lambda b: rows.append((b.end_ts, driver.mouth_at(b.end_ts).open)))
    driver.start()
    assert driver.ended.wait(10)
    driver.stop()
    ends = np.array([r[0] for r in rows])
    assert driver.mouth_at(ends[0] - 1.0) == MouthShape()
    stats = driver.stats()
    assert stats["blocks"] == 350 and stats["onsets"] == 3
    assert stats["file"]["duration_s"] == pytest.approx(3.5, abs=0.01)


def test_a_removed_pcm_listener_gets_no_more_blocks(bursts: Path, config: AppConfig) -> None:
    driver = AudioDriver(str(bursts), config, realtime=False, loop=True)
    kept: list[float] = []
    removed: list[float] = []

    def gone(ts: float, x: np.ndarray) -> None:
        removed.append(ts)

    driver.add_pcm_listener(lambda ts, x: kept.append(ts))
    driver.add_pcm_listener(gone)
    driver.start()
    deadline = time.monotonic() + 10
    while len(removed) < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    driver.remove_pcm_listener(gone)
    n_removed, n_kept = len(removed), len(kept)
    while len(kept) < n_kept + 50 and time.monotonic() < deadline:
        time.sleep(0.005)
    driver.stop()
    assert len(kept) >= n_kept + 50
    assert len(removed) <= n_removed + 1  # at most the block being delivered while it was removed
    driver.remove_pcm_listener(gone)  # unknown now: ignored
