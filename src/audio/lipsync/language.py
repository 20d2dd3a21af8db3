"""`audio.language`: which languages exist (espeak-ng's, from the bundled data) and whether English phones may
drive the mouth.

English phone recognition (pocketsphinx, US English) guesses English phones on any
speech; on other languages its timing is wrong (a German phrase opened 295 ms late).
So phones drive the mouth only for `en`, and in `auto` only when the speech sounds
like English to pocketsphinx (english_check.py, ENGLISH_FIT_MIN); otherwise the
language-independent live method does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from src.core.languages import SPECIAL, check_language, is_english, known_languages

__all__ = ["SPECIAL", "check_language", "is_english", "known_languages"]

if TYPE_CHECKING:
    from src.core.config import AudioConfig

# How English-like the speech sounds (english_check.EnglishFit: the English phone loop's best-path score, acoustic +
# phone LM, per frame of recognised phones, x1000, decoded with noise topped up to 25 dB under the speech). Measured
# through the render path's analysis on 4-5 sentences per voice (`scripts/english_fit.py`, english_fit.json), clean /
# under -40 dBFS white noise: English en-us -2.57 / -2.58, en-gb -2.84 / -2.88, en-us+f3 -2.65 / -2.65, en-us+m3
# -2.67 / -2.67, en-gb-scotland -2.87 / -2.68, assets/speech_en.wav -2.73 / -2.59; other languages nl -3.00 / -2.98,
# pl -2.99 / -3.01, es -3.00 / -3.12, sv -3.06 / -3.00, de -3.07 / -3.10, pt -3.18 / -3.22, fr -3.20 / -3.45,
# it -3.28 / -3.38, ru -3.70 / -3.74. The bar sits mid-gap: 0.054 under the lowest English score (en-gb under
# noise) and 0.051 over the highest other one (nl under noise). The old measure (acoustic fit alone) had no gap
# (English down to -1.57 clean, others up to -1.03 under noise). espeak-ng's output varies a little from call to
# call: a second run moved single scores by up to 0.04. All of it is espeak-ng speech (the shared
# English speech is espeak-ng too; no recording of a real voice was at hand), and the margin is a sixth of the
# spread among English voices: `audio.language` set to the language stays the reliable way.
ENGLISH_FIT_MIN = -2.93


def phones_allowed(language: str) -> bool:
    """Whether English phone recognition may drive the mouth for `language` at all (auto or English)."""
    return language == "auto" or is_english(language)


def choose_method(language: str, method: str, plausible: tuple[bool, str] | None, english_fit: float | None,
                  error: str = "") -> tuple[str, str]:
    """('phones' | 'live', why) for a file: `plausible` is the phone rate/coverage check (None: no phones were
    recognised), `english_fit` how English-like pocketsphinx found the speech (english_check.py)."""
    if method == "live":
        return "live", "audio.visemes.method is live"
    if not phones_allowed(language):
        return "live", f"audio.language is {language}: English phones do not fit it; the language-independent method does"
    if plausible is None:
        return "live", error or "no phones recognised"
    ok, why = plausible
    if not ok:
        return "live", why
    if language == "auto" and method == "auto":
        if english_fit is None:
            return "live", "no phones recognised"
        if english_fit < ENGLISH_FIT_MIN:
            return "live", (f"audio.language auto: the speech does not sound like English (English fit {english_fit:.2f} < "
                            f"{ENGLISH_FIT_MIN:.2f}; set audio.language if it is)")
        return "phones", f"{why}; the speech sounds like English (English fit {english_fit:.2f} >= {ENGLISH_FIT_MIN:.2f})"
    return "phones", why


def live_method_delay_s(acfg: AudioConfig) -> float:
    """How late the live method's shapes come after the sound that made them, when rendered:
    each shape blends in linearly over `visemes.transition_ms` from its start (half-way after half of it), while
    the vowel class of a hop comes from the `analysis_window_ms` window ending at that hop's end, whose centre
    lies `analysis_window_ms / 2 - block_ms` before the hop's start (30 - 6 = 24 ms with the defaults)."""
    delay_ms = acfg.visemes.transition_ms / 2.0 - (acfg.analysis_window_ms / 2.0 - acfg.block_ms)
    return max(0.0, delay_ms) / 1000.0
