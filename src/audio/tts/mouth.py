"""Mouth shapes from a TTS engine's phonemes: IPA symbols -> Rhubarb shapes (src/audio/visemes.py) -> frames.

The mapping works on the articulation an IPA symbol names, not on one language's
phone set, so every language espeak-ng speaks gets a mouth: lips closed for
bilabials, lower lip to teeth for labiodentals, rounded for rounded vowels and
glides, open by vowel height, slightly open for the other consonants. Stress,
length, tone and other diacritics are ignored. The engine's phoneme times are
exact (sample positions), so speech regions come from the sounding phonemes and
the same timeline rules (anticipation, pauses, minimum shape length) apply as
for recognised phones.
"""

from __future__ import annotations

import math
import unicodedata

import numpy as np

from src.audio.track import MouthTrack
from src.audio.tts.base import PhonemeEvent, Utterance
from src.audio.visemes import Seg, build_timeline, sample_timeline
from src.config import AppConfig

# vowel -> shape (Rhubarb: C open, D wide open, E rounded open, F puckered, B slightly open / spread)
VOWEL_SHAPES: dict[str, str] = {
    **dict.fromkeys("aɑɶ", "D"),
    **dict.fromkeys("æɐʌɛəɜɘɵeɤ", "C"),
    **dict.fromkeys("ɔɒoøœɞɚɝ", "E"),
    **dict.fromkeys("uʊyʏʉ", "F"),
    **dict.fromkeys("iɪɨɯɪ̈ᵻ", "B"),
}
CONSONANT_SHAPES: dict[str, str] = {
    **dict.fromkeys("pbmɓʙɸβ", "A"),  # lips together (ɸ β: nearly)
    **dict.fromkeys("fvɱʋ", "G"),  # lower lip to upper teeth
    **dict.fromkeys("wʍɥ", "F"),  # rounded glides
    **dict.fromkeys("lɫɭʎʟɬɮ", "H"),  # tongue up
    "ɹ": "E",  # English r is rounded
}
IGNORED = set("ˈˌːˑ‿|‖.-'ʰʲʷˠˤ̩̯̃̊͡˞ʼ˥˦˧˨˩0123456789 ")


def _letters(symbol: str) -> list[str]:
    """The IPA base letters of a symbol, without stress, length, tone or combining marks."""
    out = []
    for ch in unicodedata.normalize("NFD", symbol):
        if ch in IGNORED or unicodedata.combining(ch):
            continue
        out.append(ch)
    return out


def is_sounding(symbol: str) -> bool:
    s = symbol.strip()
    return bool(s) and not s.startswith("_") and bool(_letters(s))


def phoneme_shapes(p: PhonemeEvent) -> list[Seg]:
    """One or two shape segments for a phoneme (diphthongs like 'aɪ' move from their first to their second vowel)."""
    letters = _letters(p.phoneme)
    vowels = [VOWEL_SHAPES[c] for c in letters if c in VOWEL_SHAPES]
    if len(vowels) >= 2 and vowels[0] != vowels[-1]:
        mid = p.start_s + 0.5 * (p.end_s - p.start_s)
        return [Seg(p.start_s, mid, vowels[0], True), Seg(mid, p.end_s, vowels[-1], True)]
    if vowels:
        return [Seg(p.start_s, p.end_s, vowels[0], True)]
    first = letters[0] if letters else ""
    return [Seg(p.start_s, p.end_s, CONSONANT_SHAPES.get(first, "B"), False)]


def phoneme_timeline(phonemes: tuple[PhonemeEvent, ...] | list[PhonemeEvent], duration_s: float,
                     config: AppConfig) -> tuple[list[Seg], list[tuple[float, float]]]:
    """The shape timeline and the speech regions (runs of sounding phonemes) of an utterance."""
    sounding = [p for p in phonemes if is_sounding(p.phoneme)]
    shapes: list[Seg] = []
    for i, p in enumerate(sounding):
        segs = phoneme_shapes(p)
        # h takes the shape of the vowel it breathes into (as HH does for recognised phones)
        if _letters(p.phoneme)[:1] == ["h"] and i + 1 < len(sounding):
            nxt = phoneme_shapes(sounding[i + 1])[0]
            segs = [Seg(p.start_s, p.end_s, nxt.shape if nxt.vowel else "B", False)]
        shapes += segs
    # Each shape blends in over `transition_ms` from its start: start them half of that early, so a shape is
    # half-way in when its phoneme starts (the phoneme times are exact); region edges stay where the sound is.
    lead = config.audio.visemes.transition_ms / 2000.0
    shapes = [Seg(s.start - lead, s.end - lead, s.shape, s.vowel) for s in shapes]
    regions: list[tuple[float, float]] = []
    for p in sounding:
        if regions and p.start_s - regions[-1][1] < 1e-3:
            regions[-1] = (regions[-1][0], p.end_s)
        else:
            regions.append((p.start_s, p.end_s))
    return build_timeline(shapes, regions, config.audio.visemes, duration_s), regions


def utterance_mouth_track(utt: Utterance, fps: float, config: AppConfig, t0_s: float = 0.0) -> MouthTrack:
    """Per-frame mouth shapes for an utterance (frame k shows time k / fps), from its phonemes.

    An utterance without phonemes (a Piper voice) is analysed as sound with the language-independent method.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    duration = utt.duration_s
    if not any(is_sounding(p.phoneme) for p in utt.phonemes):
        return _sound_track(utt, fps, config)
    timeline, regions = phoneme_timeline(utt.phonemes, duration, config)
    n_frames = max(1, math.ceil(duration * fps - 1e-6))
    times = t0_s + (np.arange(n_frames) + 0.5) / fps
    acfg = config.audio
    values = sample_timeline(timeline, times, acfg.mouth.max_open, acfg.visemes.transition_ms)
    info = {"reason": "phoneme timings from the TTS engine", "phonemes": len(utt.phonemes), "regions": len(regions)}
    return MouthTrack(values, float(fps), duration, "tts", timeline, regions, info)


def _sound_track(utt: Utterance, fps: float, config: AppConfig) -> MouthTrack:
    import tempfile
    from pathlib import Path

    from src.audio.track import file_mouth_track
    from src.audio.tts.wav import write_wav

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "utterance.wav"
        write_wav(path, utt.pcm, utt.sample_rate_hz)
        track = file_mouth_track(path, fps, config, method="live")
    track.info["reason"] = "the TTS engine gave no phoneme timings: the mouth follows the sound"
    return track
