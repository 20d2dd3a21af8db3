"""Mel windows for the lip-sync U-Net: offline vs Wav2Lip's log-mel, streaming vs offline, silence detection."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from src.animation.lipsync_unet.audio_windows import MelWindowStream, mel_windows, window_loudness_db
from src.audio.lipsync.mel import wav2lip_mel

ROOT = Path(__file__).resolve().parents[2]


def speech() -> np.ndarray:
    with wave.open(str(ROOT / "assets" / "speech_en.wav")) as wf:
        return np.frombuffer(wf.readframes(wf.getnframes()), np.int16).astype(np.float32) / 32768.0


def test_windows_are_wav2lip_mel_centred_on_each_frame() -> None:
    a = speech()
    fps = 25.0
    n = int(len(a) / 16000 * fps)
    w = mel_windows(a, fps, n)
    assert w.shape == (n, 1, 80, 16) and w.dtype == np.float32
    ref = wav2lip_mel(a)  # (80, T), frame j centred on sample 200 j
    for i in (10, 100, 250):
        c = round(i / fps * 80)
        np.testing.assert_allclose(w[i, 0], ref[:, c - 8 : c + 8], atol=1e-4)
    # Before the start and past the end the audio is silence: the floor value.
    assert w[0, 0, :, 0].max() == -4.0 and w[-1, 0, :, -1].max() == -4.0


def test_streaming_matches_offline_for_any_block_size() -> None:
    a = speech()[: 16000 * 3]
    fps = 30.0
    n = int(3 * fps) - 4
    offline = mel_windows(a, fps, n)
    for block in (160, 333, 1600):
        stream = MelWindowStream(fps)
        got: dict[int, np.ndarray] = {}
        for s in range(0, len(a), block):
            for idx, win in stream.push(a[s : s + block]):
                assert idx not in got
                got[idx] = win
        assert sorted(got)[: n] == list(range(n))
        for i in range(n):
            np.testing.assert_allclose(got[i], offline[i], atol=1e-5)


def test_stream_emits_frame_once_its_lookahead_has_arrived() -> None:
    stream = MelWindowStream(25.0)
    assert stream.lookahead_ms == 112.5
    need = int(0.1125 * 16000)  # frame 0 (t = 0) needs 112.5 ms of audio
    assert stream.push(np.zeros(need - 1, np.float32)) == []
    out = stream.push(np.zeros(1, np.float32))
    assert [i for i, _ in out] == [0]


def test_loudness_separates_speech_silence_and_room_noise() -> None:
    a = speech()
    w = mel_windows(a, 25.0, int(len(a) / 16000 * 25))
    loud = np.array([window_loudness_db(x) for x in w])
    assert np.median(loud) > -45  # speech
    assert loud.min() == -100.0  # the pauses are digital silence
    noise = np.random.default_rng(0).normal(0, 0.003, 16000).astype(np.float32)  # about -50 dBFS
    assert max(window_loudness_db(x) for x in mel_windows(noise, 25.0, 20)) < -55
