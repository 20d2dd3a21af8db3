"""File lip sync for render (lookahead): per-frame mouth shapes line up with the speech, close after it,
stay shut over silence and noise; non-speech falls back to the live method; the mp4 carries the audio."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from src.audio import decode_audio, file_mouth_track
from src.bench.audio import PHRASES, burst_signal, lip_sync_timing, make_speech_with_pauses, truth_regions, write_wav
from src.core.config import AppConfig
from src.core.frames import MouthShape, RenderedFrame
from src.output.audio_mux import AudioFileMux
from src.output.file_output import FileOutput
from tests.support.speech import needs_espeak


@pytest.fixture
def config(make_config: Callable[..., AppConfig], tmp_path: Path) -> AppConfig:
    return make_config(f"audio.voice_profile={tmp_path / 'no_profile.json'}", size=512)


@needs_espeak
@pytest.mark.parametrize("voice,noise", [("en-us", None), ("en-gb", None), ("en-us+f3", -40.0), ("en-us", -40.0)])
def test_mouth_follows_speech_onsets_and_closes_after(tmp_path: Path, config: AppConfig, voice: str, noise: float | None) -> None:
    path, clean, _ = make_speech_with_pauses(tmp_path, PHRASES[:4], gap_s=0.8, voice=voice, noise_dbfs=noise)
    track = file_mouth_track(path, 30.0, config)
    assert track.method == "phones", track.info
    r = lip_sync_timing(track.values[:, 0], 30.0, truth_regions(clean), track.duration_s)
    print(voice, noise, r)
    assert r["onset_misses"] == 0
    assert r["onset_abs_median_ms"] <= 20.0
    assert r["close_max_ms"] <= 150.0
    assert r["silence_max_frac"] <= 0.1


@pytest.mark.parametrize("kind", ["silence", "noise"])
def test_silence_and_noise_keep_the_mouth_shut(tmp_path: Path, config: AppConfig, kind: str) -> None:
    x = np.zeros(4 * 16000, np.float32)
    if kind == "noise":
        n = np.random.default_rng(3).standard_normal(len(x))
        x = (n * 10 ** (-40 / 20) / np.sqrt(np.mean(n**2))).astype(np.float32)
    track = file_mouth_track(write_wav(tmp_path / f"{kind}.wav", x), 25.0, config)
    widest = 0.92 * config.audio.mouth.max_open  # the range a speaking mouth spans (shape D)
    assert track.values[:, 0].max() <= 0.1 * widest
    assert track.n_frames == 100


@needs_espeak
def test_frames_cover_the_audio_and_shapes_are_mouth_shapes(tmp_path: Path, config: AppConfig) -> None:
    path, _, mixed = make_speech_with_pauses(tmp_path, PHRASES[:1])
    fps = 24.0
    track = file_mouth_track(path, fps, config)
    duration = len(mixed) / 16000
    assert track.duration_s == pytest.approx(duration, abs=0.011)
    assert track.n_frames == math.ceil(duration * fps)
    shapes = track.shapes
    assert all(isinstance(s, MouthShape) for s in shapes)
    opens = np.array([s.open for s in shapes])
    assert 0.0 <= opens.min() and opens.max() <= config.audio.mouth.max_open
    assert opens.max() > 0.25
    assert track.shape(10**6) == MouthShape()  # past the end: closed
    assert {s.shape for s in track.timeline} <= set("ABCDEFGHXR")


def test_non_speech_sound_falls_back_to_the_live_method_and_says_so_once(
    tmp_path: Path, config: AppConfig, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_wav(tmp_path / "bursts.wav", burst_signal(6, 16000), 16000)
    with caplog.at_level(logging.WARNING, logger="src.audio.lipsync.track"):
        track = file_mouth_track(path, 30.0, config)
    assert track.method == "live"
    warnings = [r for r in caplog.records if "live vowel method" in r.getMessage()]
    assert len(warnings) == 1
    # the fallback keeps the timing: each burst opens the mouth near its onset and closes after it
    regions = [(0.5 + k * 1.0, 0.8 + k * 1.0) for k in range(6)]
    r = lip_sync_timing(track.values[:, 0], 30.0, regions, track.duration_s)
    assert r["onset_misses"] == 0 and r["onset_abs_median_ms"] <= 20.0 and r["close_max_ms"] <= 150.0


@needs_espeak
def test_live_method_when_configured(tmp_path: Path, config: AppConfig) -> None:
    path, clean, _ = make_speech_with_pauses(tmp_path, PHRASES[:2])
    config.audio.visemes.method = "live"
    track = file_mouth_track(path, 30.0, config)
    assert track.method == "live" and track.info["phones"] == 0
    r = lip_sync_timing(track.values[:, 0], 30.0, truth_regions(clean), track.duration_s)
    assert r["onset_abs_median_ms"] <= 20.0 and r["close_max_ms"] <= 150.0 and r["silence_max_frac"] <= 0.1


@needs_espeak
@pytest.mark.parametrize("fmt", ["wav44", "m4a"])
def test_rendered_mp4_carries_the_audio_in_sync(tmp_path: Path, config: AppConfig, fmt: str) -> None:
    wav, _, _ = make_speech_with_pauses(tmp_path, PHRASES[:1])
    src = tmp_path / ("speech44.wav" if fmt == "wav44" else "speech.m4a")
    import subprocess

    opts = ["-ar", "44100", "-ac", "2"] if fmt == "wav44" else []
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), *opts, str(src)], check=True)
    fps = 25.0
    track = file_mouth_track(src, fps, config)
    out = FileOutput(str(tmp_path / "render.mp4"), config)
    out.audio = AudioFileMux(src)
    out.open(64, 64, fps)
    for k in range(track.n_frames):
        level = int(255 * track.shape(k).open / config.audio.mouth.max_open)
        out.write(RenderedFrame(np.full((64, 64, 3), level, np.uint8), capture_ts=0.0, index=k, media_time_s=k / fps))
    out.close()
    with av.open(str(tmp_path / "render.mp4")) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert a.codec_context.name == "aac"
        video_s = float(v.duration * v.time_base)
        audio_s = float(a.duration * a.time_base)
        assert a.start_time == 0 and v.start_time == 0
    source = decode_audio(src)
    assert abs(video_s - audio_s) <= 1.0 / fps
    assert abs(audio_s - len(source) / 16000) <= 0.01
    muxed = decode_audio(tmp_path / "render.mp4")
    n = min(len(muxed), len(source))
    c = np.correlate(muxed[:n], source[400 : n - 400], mode="valid")
    assert abs(int(np.argmax(c)) - 400) <= 2, "audio starts with the first video frame"


@needs_espeak
def test_mux_can_stop_where_a_shortened_render_stops(tmp_path: Path, config: AppConfig) -> None:
    wav, _, _ = make_speech_with_pauses(tmp_path, PHRASES[:1])
    out = FileOutput(str(tmp_path / "short.mp4"), config)
    out.audio = AudioFileMux(wav, max_duration_s=1.0)
    out.open(32, 32, 25.0)
    for k in range(25):
        out.write(RenderedFrame(np.zeros((32, 32, 3), np.uint8), capture_ts=0.0, index=k, media_time_s=k / 25.0))
    out.close()
    with av.open(str(tmp_path / "short.mp4")) as c:
        a = c.streams.audio[0]
        assert float(a.duration * a.time_base) == pytest.approx(1.0, abs=0.03)
