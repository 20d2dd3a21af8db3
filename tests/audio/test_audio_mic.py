"""The microphone path: a real PortAudio stream recording a PulseAudio virtual mic, device selection
errors, a microphone that dies mid-stream (PortAudio faked under sounddevice, tests/support/fake_portaudio.py)
while the driver keeps going, and the capture ring overflowing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from src.audio import AudioDriver, AudioInputError
from src.audio.io import devices as audio_devices
from src.audio.io.blocks import AudioBlock
from src.audio.io.mic import RESYNC_S, MicCapture, StampTimeline
from src.bench.audio import OnsetDetector, burst_signal, make_speech_with_pauses, measure_audio_latency, write_wav
from src.core.config import AppConfig
from tests.support.fake_portaudio import FAKE_DEVICE, FakePortAudio
from tests.support.speech import needs_espeak
from tests.support.vmic import VirtualMic, VirtualMicUnavailable


@pytest.fixture
def config(make_config: Callable[..., AppConfig], tmp_path: Path) -> AppConfig:
    return make_config(f"audio.voice_profile={tmp_path / 'no_profile.json'}")


@pytest.fixture
def vmic() -> VirtualMic:
    reason = VirtualMic.available()
    if reason:
        pytest.skip(reason)
    try:
        with VirtualMic() as mic:
            yield mic
    except VirtualMicUnavailable as exc:
        pytest.skip(str(exc))


def _wait_for_audio(driver: AudioDriver, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while driver.mic is not None and driver.mic.callbacks == 0:
        assert time.monotonic() < deadline, "the virtual microphone never delivered audio"
        time.sleep(0.01)
    time.sleep(0.2)


@pytest.mark.slow
@needs_espeak
def test_speech_through_the_real_microphone_path(vmic: VirtualMic, tmp_path: Path, config: AppConfig) -> None:
    path, _, _ = make_speech_with_pauses(tmp_path, ["Hello there, how are you?", "Fine, thank you."], gap_s=1.0, lead_s=0.5)
    driver = AudioDriver("mic", config)
    blocks: list[AudioBlock] = []
    driver.add_block_listener(blocks.append)
    driver.start()
    try:
        _wait_for_audio(driver)
        samples: list[tuple[float, float]] = []
        done = threading.Event()
        player = threading.Thread(target=lambda: (vmic.play(path, wait=True), time.sleep(0.6), done.set()))
        player.start()
        while not done.is_set():
            now = time.monotonic()
            samples.append((now, driver.mouth_at(now).open))
            time.sleep(0.005)
        player.join()
        stats = driver.stats()
    finally:
        driver.stop()
    opens = np.array([o for _, o in samples])
    assert opens.max() > 0.3 * config.audio.mouth.max_open, "speech through the microphone opened the mouth"
    assert opens[-20:].max() <= 0.1 * config.audio.mouth.max_open, "and it closed after the speech"
    # no outage needing a reopen; a sound server starved of CPU for over a second (seen once in CI) may stall it once
    mic = stats["mic"]
    assert mic["outages"] == mic["resumes"] <= 1 and mic["reopen_attempts"] == 0 and stats["onsets"] >= 2
    # every block is 10 ms at 16 kHz, stamped on the monotonic clock, before it reached the callback
    ts = np.array([b.capture_ts for b in blocks])
    assert all(len(b.samples) == 160 for b in blocks)
    assert np.all(np.diff(ts) > 0)
    steady = np.diff(ts)[len(ts) // 2 :]
    assert np.median(steady) == pytest.approx(0.01, abs=0.002)
    arrivals = np.array([b.arrival_ts for b in blocks])
    assert np.all(arrivals >= ts)


@pytest.mark.slow
def test_latency_from_capture_callback_to_open_mouth(config: AppConfig) -> None:
    """Loose bound on the live latency (the issue asks p95 <= 60 ms; the benchmark reports it)."""
    reason = VirtualMic.available()
    if reason:
        pytest.skip(reason)
    try:
        result = measure_audio_latency(config, n_onsets=8)  # makes its own virtual mic
    except VirtualMicUnavailable as exc:
        pytest.skip(str(exc))
    print(result)
    assert result["onsets_captured"] == 8 and result["onsets_opened"] == 8
    assert result["audio_latency_ms"]["p95"] < 200  # loose: the machine is shared


def test_device_names_that_match_nothing_or_several(vmic: VirtualMic, config: AppConfig) -> None:
    inputs = [d for d in audio_devices.all_devices() if d["max_input_channels"] > 0]
    if len(inputs) < 2:
        pytest.skip("needs two input devices (PulseAudio's ALSA 'pulse' and 'default')")
    with pytest.raises(AudioInputError) as err:
        AudioDriver("mic:no-such-microphone", config)
    msg = str(err.value)
    assert "\n" not in msg and "no-such-microphone" in msg and inputs[0]["name"] in msg
    # a fragment found in two device names
    a, b = inputs[0]["name"].lower(), inputs[1]["name"].lower()
    common = next((a[i : i + 2] for i in range(len(a) - 1) if a[i : i + 2] in b and a[i : i + 2].strip()), None)
    if common is None:
        pytest.skip("the input device names share no fragment")
    with pytest.raises(AudioInputError, match="matches several"):
        AudioDriver(f"mic:{common}", config)
    with pytest.raises(AudioInputError, match="no input device with that index"):
        AudioDriver("mic:97", config)
    # an exact index and an exact name both work
    assert AudioDriver(f"mic:{inputs[0]['index']}", config).mic.info["index"] == inputs[0]["index"]
    assert AudioDriver(f"mic:{inputs[1]['name']}", config).mic.info["name"] == inputs[1]["name"]


def test_no_input_device_at_all_lists_what_exists(monkeypatch: pytest.MonkeyPatch, config: AppConfig) -> None:
    # a machine with only an HDMI output, then one with no audio devices at all (PortAudio's device list is the double)
    hdmi = [{"index": 0, "name": "HDMI 0", "max_input_channels": 0, "max_output_channels": 2}]
    monkeypatch.setattr(audio_devices, "all_devices", lambda: hdmi)
    with pytest.raises(AudioInputError) as err:
        AudioDriver("mic", config)
    assert "no audio input device" in str(err.value) and "HDMI 0" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(audio_devices, "all_devices", lambda: [])
    with pytest.raises(AudioInputError, match="no audio devices at all"):
        AudioDriver("mic:USB", config)


class JitteryClock:
    """PortAudio's clock as a loaded machine reports it: each callback's buffer looks 10-35 ms old, at random."""

    def __init__(self) -> None:
        self._rng = np.random.default_rng(7)

    def __call__(self) -> Any:
        now = time.monotonic()
        return type("T", (), {"currentTime": now, "inputBufferAdcTime": now - 0.010 - self._rng.uniform(0, 0.025)})()


def test_block_stamps_never_go_backwards_when_the_callback_clock_jitters(monkeypatch: pytest.MonkeyPatch) -> None:
    mono = (0.1 * np.sin(np.arange(48000) * 2 * np.pi * 220 / 48000)).astype(np.float32)
    audio = np.stack([mono, mono], axis=1)
    FakePortAudio(monkeypatch, audio, clock=JitteryClock())
    mic = MicCapture()
    mic.start()
    blocks: list[AudioBlock] = []
    try:
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            blocks.extend(mic.read(0.05))
    finally:
        mic.stop()
    ts = np.array([b.capture_ts for b in blocks])
    assert len(ts) >= 100
    assert np.all(np.diff(ts) > 0), "a block is stamped before the one it follows"
    # the timeline stays on the callbacks' clock: each stamp within the jitter of when its audio was captured
    arrivals = np.array([b.arrivals[-1][1] for b in blocks])
    assert np.all(ts < arrivals) and np.median(arrivals - ts) < 0.06
    assert mic.stats()["stamp_resyncs"] == 0


def test_stamp_timeline_smooths_jitter_and_restarts_after_a_gap() -> None:
    rng = np.random.default_rng(3)
    line = StampTimeline()
    truth = 100.0 + 0.01 * np.arange(300)
    noisy = truth + rng.uniform(0, 0.02, len(truth))  # callbacks late by up to 20 ms
    out = np.array([line.stamp(o, 0.01) for o in noisy])
    assert np.all(np.diff(out) > 0) and not np.all(np.diff(noisy) > 0)
    assert np.abs(out[100:] - truth[100:] - 0.01).max() < 0.006  # follows the clock's mean offset, less its jitter
    after_gap = line.stamp(out[-1] + 0.01 + 2 * RESYNC_S, 0.01)  # dropped audio: the stamp jumps with the clock
    assert after_gap == pytest.approx(out[-1] + 0.01 + 2 * RESYNC_S) and line.resyncs == 1
    assert line.stamp(after_gap - 1.0, 0.01) > after_gap  # never backwards, even for a wild reading


def _watch_outage(driver: AudioDriver, timeout_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """Start `driver` and sample (time, mouth opening, mic lost) every 10 ms until 1 s after its microphone is back
    from an outage (or `timeout_s`), then stop it: the arrays t, opening, lost, and when it was first seen back."""
    mic = driver.mic
    assert mic is not None
    timeline: list[tuple[float, float, bool]] = []
    back_seen_at: float | None = None
    driver.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            timeline.append((now, driver.mouth_at(now).open, mic.lost))
            if back_seen_at is None and mic.outages and not mic.lost:
                back_seen_at = now
            if back_seen_at is not None and now > back_seen_at + 1.0:
                break
            time.sleep(0.01)
    finally:
        driver.stop()
    t, o, lost = (np.array(c) for c in zip(*timeline, strict=True))
    return t, o, lost, back_seen_at


@pytest.mark.parametrize("mode", ["stall", "abort"])
def test_a_microphone_that_dies_closes_the_mouth_warns_once_and_comes_back(
    monkeypatch: pytest.MonkeyPatch, config: AppConfig, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    """The fault is injected below sounddevice: the device lookup, the rescan and the reopen are the real code.
    Asserted: the order of events (lost after the death, back only once the device is plugged in again,
    the mouth closed in between) and that it comes back eventually, not how fast on this machine."""
    mono = burst_signal(40, 48000, on_s=0.3, off_s=0.3, lead_s=0.1).astype(np.float32)
    pa = FakePortAudio(monkeypatch, np.stack([mono, mono], axis=1), die_after_s=1.6, unplugged_s=2.0, mode=mode)
    config.audio.mic_retry_s = 0.3
    driver = AudioDriver("mic", config)
    assert driver.mic is not None and driver.mic.info["name"] == FAKE_DEVICE["name"]
    thr = 0.1 * config.audio.mouth.max_open
    with caplog.at_level(logging.INFO, logger="src.audio.io.mic"):
        t, o, lost, back_seen_at = _watch_outage(driver, 20.0)
    assert back_seen_at is not None, "the microphone never came back after it was plugged in again"
    died_at = pa.died_at
    assert died_at is not None
    lost_at = t[lost][0]
    back_at = t[(t > lost_at) & ~lost][0]
    assert o[t < died_at].max() >= thr, "audio from the first stream opened the mouth"
    assert died_at <= lost_at < back_at, "lost only after the stream died, back after that"
    assert back_at >= died_at + pa.unplugged_s, "reopened only once the device was back in the device list"
    assert np.all(o[(t >= lost_at + 0.02) & (t < back_at)] == 0.0), "the mouth is closed while the microphone is gone"
    assert driver.mic.reopen_attempts >= 2, "retried every mic_retry_s, in vain while unplugged"
    assert pa.rescans >= 2, "each retry rescans the device list"
    assert len(pa.streams) == 2 and pa.streams[1].device == FAKE_DEVICE["index"]
    assert o[t > back_at + 0.1].max() >= thr, "audio from the reopened stream opens the mouth again"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "stopped" in warnings[0].getMessage()
    assert any("is back" in r.getMessage() for r in caplog.records)
    assert driver.stats()["mic"]["outages"] == 1


def test_a_stream_that_stalls_and_resumes_is_back_without_a_reopen(
    monkeypatch: pytest.MonkeyPatch, config: AppConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A sound server starved of CPU stops calling back for longer than STALL_S, then catches up: the mouth
    closes for the outage, and the same stream carries on (no close, no 2 s wait for a reopened one)."""
    mono = burst_signal(40, 48000, on_s=0.3, off_s=0.3, lead_s=0.1).astype(np.float32)
    pa = FakePortAudio(monkeypatch, np.stack([mono, mono], axis=1), die_after_s=1.0, unplugged_s=1.5, mode="hiccup")
    config.audio.mic_retry_s = 3.0
    driver = AudioDriver("mic", config)
    blocks: list[AudioBlock] = []
    driver.add_block_listener(blocks.append)
    thr = 0.1 * config.audio.mouth.max_open
    with caplog.at_level(logging.INFO, logger="src.audio.io.mic"):
        t, o, lost, _ = _watch_outage(driver, 15.0)
    assert driver.mic is not None and driver.mic.resumes == 1, "the stalled stream was not taken back"
    lost_at = t[lost][0]
    back_at = t[(t > lost_at) & ~lost][0]
    assert pa.died_at is not None and pa.died_at < lost_at < back_at
    assert np.all(o[(t >= lost_at + 0.02) & (t < back_at)] == 0.0), "the mouth is closed during the outage"
    assert o[t > back_at + 0.1].max() >= thr, "audio from the resumed stream opens the mouth again"
    assert len(pa.streams) == 1 and driver.mic.reopen_attempts == 0, "no reopen: the stream came back by itself"
    stats = driver.stats()["mic"]
    assert stats["outages"] == 1 and stats["resumes"] == 1
    assert any("is back (the stream resumed)" in r.getMessage() for r in caplog.records)
    # The stream catches up with a burst of what it held during the stall: stale for a live mouth, so it is
    # dropped, not stamped one after another into the future (the mouth would trail the voice by the stall).
    after = [b for b in blocks if b.arrivals[0][1] > back_at]
    assert after, "blocks after the resume"
    lead = max(b.capture_ts - max(a for _, a in b.arrivals) for b in after)
    assert lead <= 0.05, f"blocks stamped {lead:.2f} s ahead of their arrival after the resume"
    assert stats["raw_dropped_samples"] > 0.5 * pa.unplugged_s * 48000, "the stall's backlog was dropped"


def test_ring_overflow_drops_the_oldest_audio_and_counts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader that falls behind: `ring_s` of the newest audio is kept, the older samples are dropped and counted."""
    pa = FakePortAudio(monkeypatch, realtime=False)
    mic = MicCapture(ring_s=0.05)  # 2400 samples at 48 kHz = five 10 ms buffers
    mic.start()
    try:
        stream = pa.streams[0]
        assert (stream.samplerate, stream.channels) == (48000, 1)
        for k in range(1, 21):  # buffer k holds the constant k / 100; nobody reads meanwhile
            stream.push(np.full((480, 1), k / 100, np.float32))
        blocks = mic.read(timeout=0.0)
        assert mic.stats()["raw_dropped_samples"] == 15 * 480, "the fifteen oldest buffers were dropped and counted"
        kept = np.concatenate([b.samples for b in blocks])
        assert len(kept) > 0
        # the resampler's filter starts from silence: judge the settled part
        settled = kept[len(kept) // 2 :]
        assert settled.min() > 0.155, f"the newest audio (0.16..0.20) was kept, got {settled.min():.3f}..{settled.max():.3f}"
        # and capture goes on normally after the overflow
        stream.push(np.full((480, 1), 0.5, np.float32))
        assert mic.read(timeout=0.0) and mic.stats()["raw_dropped_samples"] == 15 * 480
    finally:
        mic.stop()


def test_onset_detector_finds_sound_after_quiet() -> None:
    x = np.concatenate([np.zeros(8000), 0.2 * np.ones(800), np.zeros(8000), 0.2 * np.ones(800)]).astype(np.float32)
    det = OnsetDetector()
    for i in range(0, len(x), 160):
        det(AudioBlock(x[i : i + 160], capture_ts=100.0 + i / 16000, index=i // 160, arrivals=[(0, 200.0 + i / 16000)]))
    assert [round(c - 100.0, 4) for _, c in det.onsets] == [0.5, 1.05]


def test_write_wav_roundtrip(tmp_path: Path) -> None:
    x = np.sin(np.linspace(0, 100, 16000)).astype(np.float32) * 0.5
    from src.audio import decode_audio

    np.testing.assert_allclose(decode_audio(write_wav(tmp_path / "x.wav", x)), x, atol=1e-4)


@pytest.mark.slow
@needs_espeak
def test_calibrate_voice_from_the_microphone(vmic: VirtualMic, tmp_path: Path, config: AppConfig) -> None:
    """The prompts drive a 'user' (espeak-ng vowels played into the virtual mic when asked).

    The user misses the first 'Now: A' (plays nothing): the calibration asks for A again instead of failing.
    """
    from src.audio import VowelTemplates, calibrate_voice
    from src.audio.lipsync.vowels import VOWELS
    from src.bench.vowel_templates import synth_vowel

    wavs = {v: synth_vowel(v, "en-us+f5", tmp_path / f"{v}.wav", hold=4) for v in VOWELS}
    prompts: list[str] = []

    missed: list[str] = []

    def user(text: str) -> None:
        prompts.append(text)
        if text.startswith("Now: A") and not missed:
            missed.append(text)  # the first take of A: the user is not ready and says nothing
        elif text.startswith("Now: "):
            vmic.play(wavs[text[5]])

    out = calibrate_voice(config, out_path=tmp_path / "profile.json", seconds_per_vowel=1.6, pause_s=0.4, prompt=user)
    profile = VowelTemplates.load(out)
    now = [p[5] for p in prompts if p.startswith("Now: ")]
    assert now[:2] == ["A", "A"] and set(now) == set(VOWELS)
    after_miss = prompts[prompts.index(missed[0]) + 1]
    assert after_miss.startswith("  A: heard only") and after_miss.endswith("once more")
    assert profile.meta["calibrated"] and "microphone" in profile.source
    from src.audio import decode_audio
    from src.bench.vowel_templates import steady_frames

    hits = total = 0
    for v in VOWELS:
        frames = steady_frames(decode_audio(wavs[v]), trim=0.0)
        hits += sum(profile.classify(m) == v for m in frames)
        total += len(frames)
    assert hits / total >= 0.8


@needs_espeak
@pytest.mark.parametrize("unplugged_s", [1.0, 1000.0])
def test_calibration_asks_again_after_a_dropout_and_stops_when_the_mic_stays_gone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: AppConfig, unplugged_s: float
) -> None:
    """The first stream stalls in the middle of the 'ah' take (PortAudio faked below sounddevice): with the device
    back, that vowel is asked for again and the profile is built; with it gone for good, a one-line AudioInputError."""
    from src.audio import calibrate_voice, decode_audio
    from src.bench.vowel_templates import synth_vowel

    voice = decode_audio(synth_vowel("A", "en-us+f5", tmp_path / "a.wav", hold=4))
    voice = np.interp(np.arange(len(voice) * 3) / 3.0, np.arange(len(voice)), voice).astype(np.float32)  # 48 kHz
    FakePortAudio(monkeypatch, np.stack([voice, voice], axis=1), die_after_s=1.0, unplugged_s=unplugged_s)
    config.audio.mic_retry_s = 0.3
    prompts: list[str] = []

    def run() -> Path:
        return calibrate_voice(config, out_path=tmp_path / "profile.json", seconds_per_vowel=1.6, pause_s=0.4,
                               prompt=prompts.append)
    if unplugged_s > 100:
        with pytest.raises(AudioInputError, match=r"stopped during calibration \(no audio for .*\); reconnect it"):
            run()
        assert not (tmp_path / "profile.json").exists()
        return
    assert run().exists()
    now = [p[5] for p in prompts if p.startswith("Now: ")]
    assert now == ["A", "A", "I", "U", "E", "O"]
    assert "  A: the microphone dropped out; once more" in prompts
