"""The languages `audio.language` accepts: espeak-ng's, read from the data bundled in the espeakng-loader wheel."""

from __future__ import annotations

import functools
import os

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
