"""What every text-to-speech engine returns, the text limit, and the engine registry.

An engine turns text into an `Utterance`: mono float32 PCM plus, where the engine
knows them, the timing of every phoneme (to drive the mouth) and every word (for
captions). Engines register in `TTS_ENGINES` by name (`espeak`, `piper`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from src.core.errors import UserError
from src.core.registry import Registry

MAX_TEXT_CHARS = 5000  # longer text is refused (the HTTP layer answers 413)


class TtsError(UserError, ValueError):
    """Text, voice or voice model the user gave that an engine cannot speak."""


class TextTooLongError(TtsError):
    """Text over MAX_TEXT_CHARS characters."""


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme, in seconds from the start of the utterance; `phoneme` is the engine's symbol
    (espeak: IPA; a leading '_' or an empty symbol is a pause)."""

    start_s: float
    end_s: float
    phoneme: str


@dataclass(frozen=True)
class WordEvent:
    """One word of the text as spoken, in seconds from the start of the utterance (caption cues)."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Utterance:
    pcm: np.ndarray  # float32 mono in [-1, 1]
    sample_rate_hz: int
    text: str
    voice: str
    phonemes: tuple[PhonemeEvent, ...]
    words: tuple[WordEvent, ...]

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / float(self.sample_rate_hz)


class TtsEngine(Protocol):
    name: str

    def synthesize(self, text: str, voice: str) -> Utterance: ...

    def voices(self) -> list[str]: ...


TTS_ENGINES: Registry[TtsEngine] = Registry("text-to-speech engine", "audio.tts.engine")


def check_text(text: str) -> str:
    """The text to speak, or a TtsError for empty or over-long text."""
    if not isinstance(text, str) or not text.strip():
        raise TtsError("text: empty; give the words to speak")
    if len(text) > MAX_TEXT_CHARS:
        raise TextTooLongError(f"text: {len(text)} characters, over the limit of {MAX_TEXT_CHARS}; split it into shorter utterances")
    return text
