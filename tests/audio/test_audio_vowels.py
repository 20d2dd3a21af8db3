"""Vowel templates and voice calibration: espeak-ng vowels classified by the shipped templates
(voices not used to build them), and better after calibrating on the voice itself."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from src.app.calibrate_voice import add_calibrate_voice_parser, cmd_calibrate_voice
from src.audio import VowelTemplates, calibrate_voice, load_templates
from src.audio.lipsync.vowels import VOWELS
from src.bench.vowel_templates import (
    BUILD_VOICES,
    DEFAULT_OUT,
    EVAL_VOICES,
    VOWEL_PHONEMES,
    accuracy,
    build,
    frame_accuracy,
    synth_phoneme,
    synth_vowel,
)
from src.core.config import AppConfig
from src.core.errors import ConfigError, UserError
from tests.support.speech import needs_espeak

pytestmark = needs_espeak


@pytest.fixture
def config(make_config: Callable[..., AppConfig], tmp_path: Path) -> AppConfig:
    return make_config(f"audio.voice_profile={tmp_path / 'profile.json'}", size=512)


def test_shipped_templates_are_what_the_script_builds() -> None:
    shipped = VowelTemplates.load(DEFAULT_OUT)
    fresh = build()
    assert shipped.classes == fresh.classes == ("A", "I", "U", "E", "O", "N")
    for c in shipped.classes:
        np.testing.assert_allclose(shipped.templates[c], fresh.templates[c], atol=2e-3)
    assert DEFAULT_OUT.stat().st_size < 100_000
    assert set(shipped.meta["voices"]) == set(BUILD_VOICES)


def test_default_templates_classify_voices_they_were_not_built_from(tmp_path: Path) -> None:
    templates = VowelTemplates.load(DEFAULT_OUT)
    held_out = accuracy(templates, EVAL_VOICES, tmp_path)
    assert not set(EVAL_VOICES) & set(BUILD_VOICES)
    mean = float(np.mean(list(held_out.values())))
    print("held-out voices:", held_out, "mean", round(mean, 3))
    assert mean >= 0.8, held_out
    assert min(held_out.values()) >= 0.6, held_out


def _vowel_wavs(voice: str, d: Path, hold: int, speed: int) -> list[str]:
    return [str(synth_phoneme(VOWEL_PHONEMES[v], voice, d / f"{voice}_{v}_{hold}.wav", hold=hold, speed_wpm=speed)) for v in VOWELS]


@pytest.mark.parametrize("voice", ["en-us+f5", "en-gb-x-gbcwmd", "en+klatt"])
def test_calibrating_on_a_voice_classifies_it_better(tmp_path: Path, config: AppConfig, voice: str) -> None:
    calib = _vowel_wavs(voice, tmp_path, hold=5, speed=80)
    test = _vowel_wavs(voice, tmp_path, hold=8, speed=110)  # a different take: other length and tempo
    before = frame_accuracy(load_templates(config.audio), test)
    path = calibrate_voice(config, wavs=calib)
    assert path == Path(config.audio.voice_profile)
    profile = load_templates(config.audio)  # the profile now replaces the defaults
    assert profile.meta.get("calibrated") is True
    after = frame_accuracy(profile, test)
    print(voice, "default", round(before, 3), "calibrated", round(after, 3))
    assert after >= 0.9
    assert after >= before - 0.02


def test_calibrate_voice_cli_from_wav(tmp_path: Path, config: AppConfig, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_calibrate_voice_parser(parser.add_subparsers(dest="command"))
    wavs = [f"{v}={synth_vowel(v, 'en-us', tmp_path / f'{v}.wav')}" for v in VOWELS]
    out = tmp_path / "mine.json"
    args = parser.parse_args(["calibrate-voice", "--out", str(out), "--from-wav", *wavs])
    assert cmd_calibrate_voice(args, config) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "self-check" in printed
    data = json.loads(out.read_text())
    assert set(data["templates"]) == {"A", "I", "U", "E", "O", "N"}


def test_calibration_rejects_bad_input(tmp_path: Path, config: AppConfig) -> None:
    with pytest.raises(UserError, match="five"):
        calibrate_voice(config, wavs=[str(tmp_path / "a.wav")])
    silent = tmp_path / "silent.wav"
    from src.bench.audio import write_wav

    write_wav(silent, np.zeros(16000, np.float32))
    with pytest.raises(UserError, match="steady voice for A"):
        calibrate_voice(config, wavs=[str(silent)] * 5)
    with pytest.raises(UserError, match="not found"):
        calibrate_voice(config, wavs=[str(tmp_path / f"{v}.wav") for v in VOWELS])


def test_a_broken_profile_is_a_one_line_config_error(config: AppConfig) -> None:
    Path(config.audio.voice_profile).write_text("{not json")
    with pytest.raises(ConfigError) as err:
        load_templates(config.audio)
    assert "\n" not in str(err.value) and "calibrate-voice" in str(err.value)
