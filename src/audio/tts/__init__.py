"""Text to speech: text -> `Utterance` (PCM, phoneme timings for the mouth, word timings for captions).

    synthesize("Guten Tag", "de")            # espeak (default engine, bundled by espeakng-loader)
    synthesize(text, engine="piper", config=cfg)   # with audio.tts.piper_model set
    list_voices()                            # espeak's language codes
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from src.audio.tts.base import (
    MAX_TEXT_CHARS,
    TTS_ENGINES,
    PhonemeEvent,
    TextTooLongError,
    TtsEngine,
    TtsError,
    Utterance,
    WordEvent,
    check_text,
)

if TYPE_CHECKING:
    from src.core.config import AppConfig

TTS_ENGINES.register_lazy("espeak", "src.audio.tts.espeak")
TTS_ENGINES.register_lazy("piper", "src.audio.tts.piper")

_ENGINES: dict[tuple[str, str], TtsEngine] = {}


def get_engine(engine: str = "espeak", config: AppConfig | None = None) -> TtsEngine:
    """The engine instance (cached per engine and Piper model path)."""
    model = ""
    if config is not None and engine == "piper":
        model = str(config.audio.tts.piper_model or "")
    key = (engine, model)
    if key not in _ENGINES:
        _ENGINES[key] = TTS_ENGINES.get(engine)(config)
    return _ENGINES[key]


def synthesize(text: str, voice: str = "en-us", *, engine: str = "espeak", config: AppConfig | None = None) -> Utterance:
    """Speak `text` with `voice`. Raises TtsError (a UserError) for empty text, text over MAX_TEXT_CHARS
    (TextTooLongError: HTTP 413), an unknown voice or engine, or a missing Piper model."""
    check_text(text)
    return get_engine(engine, config).synthesize(text, voice)


def list_voices(engine: str = "espeak", config: AppConfig | None = None) -> list[str]:
    return get_engine(engine, config).voices()


__all__ = [
    "MAX_TEXT_CHARS",
    "TTS_ENGINES",
    "PhonemeEvent",
    "TextTooLongError",
    "TtsEngine",
    "TtsError",
    "Utterance",
    "WordEvent",
    "check_text",
    "get_engine",
    "list_voices",
    "synthesize",
]
