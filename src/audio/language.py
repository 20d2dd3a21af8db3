"""`audio.language`: which languages exist (espeak-ng's, from the bundled data) and whether English phones may
drive the mouth.

English phone recognition (pocketsphinx, US English) guesses English phones on any
speech; on other languages its timing is wrong (a German phrase opened 295 ms late).
So phones drive the mouth only for `en`, and in `auto` only when the recognition
fits the speech (see `phones_fit`); otherwise the language-independent live method does.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from src.config import AudioConfig

SPECIAL = ("auto", "en")
FALLBACK_LANGUAGES = ("af", "ar", "bg", "ca", "cmn", "cs", "cy", "da", "de", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fr",
                      "ga", "he", "hi", "hr", "hu", "id", "is", "it", "ja", "ko", "la", "lt", "lv", "nl", "no", "pl", "pt", "ro",
                      "ru", "sk", "sl", "sr", "sv", "sw", "ta", "th", "tr", "uk", "ur", "vi", "yue")


@functools.lru_cache(maxsize=1)
def known_languages() -> tuple[str, ...]:
    """Primary language codes espeak-ng has a dictionary for (from the espeakng-loader wheel's data)."""
    try:
        import espeakng_loader

        data = str(espeakng_loader.get_data_path())
        codes = {f[: -len("_dict")] for f in os.listdir(data) if f.endswith("_dict")}
    except (ImportError, OSError):  # the wheel missing: the languages it would bring
        codes = set(FALLBACK_LANGUAGES)
    return tuple(sorted(codes | {"en"}))


def check_language(code: str) -> str:
    """`code` normalised (lower case), or ValueError naming the known codes."""
    c = str(code).strip().lower().replace("_", "-")
    if c in SPECIAL or c.split("-")[0] in known_languages():
        return c
    known = known_languages()
    common = [k for k in ("de", "fr", "es", "it", "pt", "nl", "pl", "ru", "ja", "cmn") if k in known]
    raise ValueError(f"unknown language {code!r}; use auto, en or an espeak-ng language code such as "
                     f"{', '.join(common)} (known: {', '.join(known)})")


def is_english(code: str) -> bool:
    return code.split("-")[0] == "en"


# pocketsphinx's fit of its English phones to the sound (PhoneRecognizer.acoustic_fit: mean ln acoustic score per
# frame of the recognised phones relative to each frame's best senone, x1000; 0 = perfect). Measured on clean
# espeak-ng speech through the render path (scripts/bench_languages.py sentences): English voices en-us -1.32,
# en-gb -1.24, en-us+f3 -1.26, en-us+m3 -1.52, en-gb-scotland -1.56, the shared real English speech -1.55;
# de -1.71, fr -2.17, es -1.73, it -1.74, nl -1.79, pt -1.57, pl -1.62, ru -1.78, sv -1.65. Under -40 dBFS white
# noise every language scores higher (en -0.95, others -0.99 to -1.32): the measure separates clean speech only,
# with a thin margin; `audio.language` set to the language is the reliable way.
ACOUSTIC_FIT_MIN = -1.60


def phones_allowed(language: str) -> bool:
    """Whether English phone recognition may drive the mouth for `language` at all (auto or English)."""
    return language == "auto" or is_english(language)


def choose_method(language: str, method: str, plausible: tuple[bool, str] | None, acoustic_fit: float | None,
                  error: str = "") -> tuple[str, str]:
    """('phones' | 'live', why) for a file: `plausible` is the phone rate/coverage check (None: no phones were
    recognised), `acoustic_fit` pocketsphinx's score of them."""
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
        if acoustic_fit is None:
            return "live", "no phones recognised"
        if acoustic_fit < ACOUSTIC_FIT_MIN:
            return "live", (f"audio.language auto: the English phones fit the sound poorly (acoustic fit {acoustic_fit:.2f} < "
                            f"{ACOUSTIC_FIT_MIN:.2f}; speech in another language?)")
        return "phones", f"{why}; English phones fit the sound (acoustic fit {acoustic_fit:.2f} >= {ACOUSTIC_FIT_MIN:.2f})"
    return "phones", why


def live_method_delay_s(acfg: AudioConfig) -> float:
    """How late the live method's shapes come after the sound that made them, when rendered:
    each shape blends in linearly over `visemes.transition_ms` from its start (half-way after half of it), while
    the vowel class of a hop comes from the `analysis_window_ms` window ending at that hop's end, whose centre
    lies `analysis_window_ms / 2 - block_ms` before the hop's start (30 - 6 = 24 ms with the defaults)."""
    delay_ms = acfg.visemes.transition_ms / 2.0 - (acfg.analysis_window_ms / 2.0 - acfg.block_ms)
    return max(0.0, delay_ms) / 1000.0
