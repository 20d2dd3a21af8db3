"""Text to speech through the bundled libespeak-ng: audio with phoneme and word timings, in two languages,
and every user mistake as a TtsError (a UserError)."""

from __future__ import annotations

import numpy as np
import pytest

from src.audio.tts import MAX_TEXT_CHARS, TTS_ENGINES, TextTooLongError, TtsError, list_voices, synthesize
from src.core.config import AppConfig
from src.core.errors import ModelError, UserError


@pytest.mark.parametrize(("voice", "text", "n_words"), [("en-us", "Hello world, this is a test.", 6),
                                                          ("de", "Guten Morgen, wie geht es Ihnen?", 6)])
def test_synthesize_gives_audio_with_phoneme_and_word_timings(voice: str, text: str, n_words: int) -> None:
    u = synthesize(text, voice)
    assert u.pcm.dtype == np.float32 and u.pcm.ndim == 1
    assert u.sample_rate_hz > 8000
    assert 0.8 < u.duration_s < 5.0
    assert 0.05 < float(np.max(np.abs(u.pcm))) <= 1.0
    assert [w.text for w in u.words] == text.split()[:n_words]
    assert len(u.phonemes) >= 15
    # phonemes tile the utterance in order, and the words lie in it in order
    for a, b in zip(u.phonemes, u.phonemes[1:], strict=False):
        assert a.start_s < a.end_s <= b.start_s + 1e-9
    assert u.phonemes[-1].end_s <= u.duration_s + 1e-6
    for a, b in zip(u.words, u.words[1:], strict=False):
        assert a.start_s <= a.end_s <= b.start_s + 1e-9
    # the sound is where the phonemes say: the loudest 100 ms lies inside a sounding phoneme's span
    sr = u.sample_rate_hz
    env = np.convolve(u.pcm**2, np.ones(sr // 10), "same")
    t_peak = int(np.argmax(env)) / sr
    assert any(p.start_s - 0.05 <= t_peak <= p.end_s + 0.05 for p in u.phonemes if p.phoneme and not p.phoneme.startswith("_"))
    # and the audio before the first word's start is quiet
    lead = u.pcm[: int(u.words[0].start_s * sr)]
    assert lead.size == 0 or float(np.max(np.abs(lead))) < 0.05


def test_voices_include_many_languages() -> None:
    voices = list_voices()
    for v in ("en-us", "de", "fr-fr", "es", "it", "pt", "cmn", "ja"):
        assert v in voices
    assert len(voices) > 80
    assert "espeak" in TTS_ENGINES.names() and "piper" in TTS_ENGINES.names()


def test_bad_input_is_a_user_error_naming_it() -> None:
    with pytest.raises(TtsError, match="'elvish'.*known voices include en-us"):
        synthesize("hello", "elvish")
    with pytest.raises(TextTooLongError, match="over the limit of 5000"):
        synthesize("a" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(TtsError, match="empty"):
        synthesize("   ")
    with pytest.raises(UserError, match="unknown text-to-speech engine"):
        synthesize("hello", engine="festival")


def test_piper_needs_a_model_file(tmp_path) -> None:
    with pytest.raises(TtsError, match="piper_model"):
        synthesize("hello", engine="piper", config=AppConfig())
    cfg = AppConfig.model_validate({"audio": {"tts": {"engine": "piper", "piper_model": str(tmp_path / "nope.onnx")}}})
    with pytest.raises(ModelError, match="nope.onnx.*no such file"):
        synthesize("hello", engine="piper", config=cfg)


@pytest.mark.parametrize("voice", ["en-us", "de", "es", "fr", "it", "pt"])
def test_phoneme_starts_meet_the_sound_after_every_pause(voice: str) -> None:
    """The phoneme times the mouth follows (render --text, serve's say) are where the sound is: after each pause,
    the first sounding phoneme starts within 10 ms of the audio's energy onset."""
    from src.audio.tts.mouth import is_sounding
    from src.bench.languages import SENTENCES, energy_regions

    u = synthesize(" ".join(SENTENCES[voice]), voice)
    regions = energy_regions(u.pcm.astype(np.float64), u.sample_rate_hz, min_gap_s=0.2)
    starts = np.array([p.start_s for p in u.phonemes if is_sounding(p.phoneme)])
    assert len(regions) >= 5
    offsets_ms = [1000.0 * float(starts[np.argmin(np.abs(starts - a))] - a) for a, _ in regions]
    assert max(abs(x) for x in offsets_ms) <= 10.0, offsets_ms
