"""The mouth from TTS phonemes (any language espeak-ng speaks), captions, and `render --text`."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from src.audio.tts import PhonemeEvent, list_voices, synthesize
from src.audio.tts.captions import caption_cues, webvtt
from src.audio.tts.mouth import phoneme_shapes, utterance_mouth_track
from src.core.config import AppConfig


@pytest.mark.parametrize(("symbol", "shape"), [("p", "A"), ("m", "A"), ("b", "A"), ("f", "G"), ("v", "G"), ("ˈuː", "F"),
                                                ("ɑː", "D"), ("a", "D"), ("ɛ", "C"), ("ə", "C"), ("ˈɔ", "E"), ("ø", "E"),
                                                ("iː", "B"), ("w", "F"), ("l", "H"), ("s", "B"), ("ɔ̃", "E"), ("ʁ", "B")])
def test_ipa_symbols_map_by_articulation(symbol: str, shape: str) -> None:
    assert phoneme_shapes(PhonemeEvent(0.0, 0.1, symbol))[0].shape == shape


def test_diphthong_moves_between_its_vowels() -> None:
    segs = phoneme_shapes(PhonemeEvent(1.0, 1.2, "aɪ"))
    assert [s.shape for s in segs] == ["D", "B"] and segs[0].end == pytest.approx(1.1)


@pytest.mark.parametrize(("voice", "text"), [("en-us", "Hello, my name is Bob."), ("de", "Guten Morgen, mein Name ist Bob."),
                                              ("fr", "Bonjour, je m'appelle Bob."), ("ja", "こんにちは、ぼくはボブです。"),
                                              ("cmn", "你好，我叫鲍勃。"), ("ru", "Привет, меня зовут Боб.")])
def test_mouth_follows_the_phonemes_in_every_language(voice: str, text: str) -> None:
    config = AppConfig()
    utt = synthesize(text, voice)
    track = utterance_mouth_track(utt, 100.0, config)
    assert track.method == "tts"
    t = (np.arange(track.n_frames) + 0.5) / 100.0
    opening = track.values[:, 0]
    speaking = np.zeros(len(t), bool)
    for s, e in track.regions:
        speaking |= (t >= s) & (t < e)
    assert float(opening.max()) > 0.3 * config.audio.mouth.max_open
    # open while it speaks, shut in the pauses and after the last word (150 ms to close)
    assert float(np.mean(opening[speaking] > 0.02)) > 0.6
    after = t > track.regions[-1][1] + 0.15
    assert not after.any() or float(opening[after].max()) < 0.01
    # the lips press together on the 'b' of Bob / ぼ / 鲍 / Боб: some frame is fully closed while speaking
    assert float(track.values[speaking, 3].max()) > 0.9


def test_every_espeak_voice_gets_a_mouth() -> None:
    config = AppConfig()
    voices = list_voices()
    for voice in voices[:: max(1, len(voices) // 25)]:
        utt = synthesize("1 2 3", voice)  # numbers: every language's dictionary speaks them
        track = utterance_mouth_track(utt, 30.0, config)
        assert float(track.values[:, 0].max()) > 0.05, voice


def test_captions_break_at_sentences_and_carry_the_text() -> None:
    utt = synthesize("Guten Morgen, wie geht es Ihnen? Mir geht es gut.", "de")
    cues = caption_cues(utt.words)
    assert [c.text for c in cues] == ["Guten Morgen, wie geht es Ihnen?", "Mir geht es gut."]
    assert cues[0].end_s < cues[1].start_s <= utt.duration_s
    vtt = webvtt(cues)
    assert vtt.startswith("WEBVTT\n") and "00:00:00.0" in vtt and " --> " in vtt


def test_render_text_writes_a_talking_video_and_captions(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "talk.mp4"
    r = run_cli("render", "--text", "Bonjour, comment allez-vous? Très bien, merci.", "--voice", "fr", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert "mouth shapes by tts" in r.stderr
    with av.open(str(out)) as c:
        assert c.streams.video and c.streams.audio
        duration = float(c.duration or 0) / av.time_base
        n_frames = sum(1 for _ in c.decode(video=0))
    assert 2.0 < duration < 6.0 and n_frames >= 60
    vtt = out.with_suffix(".vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "Bonjour, comment allez-vous?" in vtt and "Très bien, merci." in vtt
    assert not list(tmp_path.glob(".*.wav"))  # the speech file used for the mux is gone


def test_render_text_mistakes_are_one_line_errors(run_cli, tmp_path: Path) -> None:
    for args, words in ((["--text", "hi", "--voice", "elvish"], "'elvish'"), (["--text", "x" * 5001], "5000"),
                        (["--text", "hi", "--audio", "a.wav"], "--text and --audio"), (["--voice", "de"], "--voice")):
        r = run_cli("render", *args, "--output", str(tmp_path / "x.mp4"))
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert lines[-1].startswith("error:") and words in lines[-1] and "Traceback" not in r.stderr
