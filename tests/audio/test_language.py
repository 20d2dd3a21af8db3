"""audio.language: English phones never drive the mouth of other languages; the setting is validated; the live
method's render has no lag against its own audio."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from src.audio import file_mouth_track
from src.audio.lipsync.language import ENGLISH_FIT_MIN, live_method_delay_s
from src.bench.languages import best_lag, closed_mouth_portrait, displayed_ms, envelope_ms, speech, write_format
from src.core.config import PROJECT_ROOT, AppConfig, load_config
from src.core.errors import ConfigError


@pytest.fixture(scope="module")
def german_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm, rate, _ = speech("de", 2)  # two German phrases from the bundled espeak-ng, 48 kHz 24-bit stereo as the issue had
    return write_format(tmp_path_factory.mktemp("de") / "de.wav", pcm, rate, 48000, 2)


@pytest.fixture(scope="module")
def english_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm, rate, _ = speech("en-us", 2)
    return write_format(tmp_path_factory.mktemp("en") / "en.wav", pcm, rate, 44100, 1)


def test_language_setting_is_validated() -> None:
    for ok in ("auto", "en", "de", "fr", "pt-BR", "cmn"):
        load_config(overrides=[f"audio.language={ok}"])
    with pytest.raises(ConfigError, match=r"audio.language.*'xx'.*auto, en.*\bde\b.*\bfr\b.*known: .*\bja\b"):
        load_config(overrides=["audio.language=xx"])
    with pytest.raises(ConfigError, match="audio.language"):
        load_config(overrides=["audio.language=klingonese"])


def test_declared_non_english_file_is_not_driven_by_english_phones(german_wav: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(overrides=["audio.language=de"])
    with caplog.at_level(logging.INFO, logger="src.audio.lipsync.track"):
        track = file_mouth_track(german_wav, 30.0, config)
    assert track.method == "live"
    assert track.info["phones"] == 0  # the English recogniser did not even run
    said = [r.getMessage() for r in caplog.records if "mouth shapes by" in r.getMessage() or "not usable" in r.getMessage()]
    assert len(said) == 1 and "audio.language is de" in said[0]
    assert len(track.regions) >= 2 and float(track.values[:, 0].max()) > 0.1  # the mouth does speak (the comma pauses too)


@pytest.fixture(scope="module")
def portuguese_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pcm, rate, _ = speech("pt", 2)  # Portuguese passed the old acoustic-fit check and got English phones
    return write_format(tmp_path_factory.mktemp("pt") / "pt.wav", pcm, rate, 16000, 1)


def test_auto_keeps_english_phones_for_english(english_wav: Path) -> None:
    config = AppConfig()
    assert config.audio.language == "auto"
    for wav in (english_wav, PROJECT_ROOT / "assets" / "speech_en.wav"):
        en = file_mouth_track(wav, 30.0, config)
        assert en.method == "phones", (wav, en.info["reason"])
        assert "sounds like English" in en.info["reason"]


@pytest.mark.parametrize("lang", ["de", "pt"])
def test_auto_does_not_drive_other_languages_by_english_phones(lang: str, german_wav: Path, portuguese_wav: Path,
                                                               english_wav: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = AppConfig()
    with caplog.at_level(logging.INFO, logger="src.audio.lipsync.track"):
        other = file_mouth_track(german_wav if lang == "de" else portuguese_wav, 30.0, config)
    assert other.method == "live", other.info["reason"]
    said = [r.getMessage() for r in caplog.records if "mouth shapes by" in r.getMessage() or "not usable" in r.getMessage()]
    assert len(said) == 1 and "does not sound like English" in said[0]  # said once, with the reason
    en = file_mouth_track(english_wav, 30.0, config)
    assert other.info["english_fit"] < ENGLISH_FIT_MIN <= en.info["english_fit"]


def test_live_method_render_has_no_lag_against_its_own_audio(run_cli, carphone: Path, english_wav: Path, tmp_path: Path) -> None:
    """Rendered with the live method, the mouth re-detected in the mp4 lines up with the speech envelope
    (best-alignment lag well inside the 45 ms where a lagging picture becomes detectable)."""
    from src.bench.benchmark import mp4_mouth_opening

    portrait = closed_mouth_portrait(carphone, tmp_path / "closed.png")
    out = tmp_path / "live.mp4"
    r = run_cli("render", "--set", "audio.visemes.method=live", "--set", "idle.sway_deg=0", "--set", "idle.breath_amplitude=0",
                "--set", "idle.seed=0", "--source", str(portrait), "--audio", str(english_wav), "--output", str(out), size=384)
    assert r.returncode == 0, r.stderr
    assert "live vowel method" in r.stderr
    opening, fps = mp4_mouth_opening(out)
    pcm, rate, regions = speech("en-us", 2)
    pcm16k = resample_poly(pcm.astype(np.float64), 320, 441)
    rest = float(np.nanmedian(opening[: int((regions[0][0] - 0.15) * fps)]))
    env = envelope_ms(pcm16k, 16000)
    lag, corr = best_lag(env, displayed_ms(np.abs(np.nan_to_num(opening - rest)), fps, len(env)))
    assert corr > 0.3
    assert abs(lag) <= 35.0, f"the live-method mouth is {lag:+.0f} ms off its sound"


def test_live_method_lookahead_is_its_known_delay() -> None:
    acfg = AppConfig().audio
    # half the 60 ms blend, less the 6 ms by which the 32 ms analysis window's centre precedes its hop
    assert live_method_delay_s(acfg) == pytest.approx(0.024)
    acfg.visemes.transition_ms = 0.0
    assert live_method_delay_s(acfg) == 0.0
