"""The `audio.language: auto` check (english_check.EnglishFit) on its own: nothing heard scores nothing, and the
score does not move with the recording's noise more than English and other speech differ."""

from __future__ import annotations

import numpy as np

from src.audio.lipsync.english_check import MAX_CHECK_S, EnglishFit
from src.audio.lipsync.language import ENGLISH_FIT_MIN
from src.bench.english_fit import speech_16k, with_noise


def _fit(x: np.ndarray) -> float | None:
    """Fed as the render path feeds it: one stretch the recogniser heard, its voice region known."""
    check = EnglishFit()
    check.begin(0.0)
    for i in range(0, len(x), 160):
        check.feed(x[i : i + 160])
    nz = np.flatnonzero(np.abs(x) > 1e-3)
    return check.score([(nz[0] / 16000, nz[-1] / 16000)] if nz.size else [])


def test_silence_and_nothing_fed_score_none() -> None:
    assert EnglishFit().score([(0.0, 1.0)]) is None
    assert _fit(np.zeros(16000, np.float32)) is None


def test_keeps_at_most_max_check_seconds() -> None:
    check = EnglishFit()
    check.begin(0.0)
    for _ in range(int(MAX_CHECK_S * 100) + 500):
        check.feed(np.zeros(160, np.float32))
    assert check.kept_s <= MAX_CHECK_S + 0.01


def test_english_above_and_spanish_below_the_bar_clean_and_noisy() -> None:
    en, es = speech_16k("en-us"), speech_16k("es")
    scores = {(lang, cond): _fit(x if cond == "clean" else with_noise(x))
              for lang, x in (("en", en), ("es", es)) for cond in ("clean", "noise")}
    assert all(v is not None for v in scores.values()), scores
    assert min(scores[("en", c)] for c in ("clean", "noise")) >= ENGLISH_FIT_MIN, scores  # type: ignore[type-var]
    assert max(scores[("es", c)] for c in ("clean", "noise")) < ENGLISH_FIT_MIN, scores  # type: ignore[type-var]
