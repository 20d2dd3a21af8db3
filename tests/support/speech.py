"""Speech synthesis for tests: the one espeak-ng check and skip marker (the synthesis itself is
`src.bench.audio.speak` / `make_speech_with_pauses`, shared with the benchmark)."""

from __future__ import annotations

import pytest

from src.bench.audio import have_espeak, make_speech_with_pauses, speak

needs_espeak = pytest.mark.skipif(not have_espeak(), reason="needs espeak-ng (Debian package espeak-ng)")

__all__ = ["have_espeak", "make_speech_with_pauses", "needs_espeak", "speak"]
