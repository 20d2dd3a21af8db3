"""The `audio.language: auto` check measured: `english_fit` (src/audio/lipsync/english_check.py) on English and
other speech, clean and under -40 dBFS white noise, through the render path's analysis (`analyse_file`).

Speech: five English espeak-ng voices and nine other languages, four or five sentences each (src/bench/languages.py's
phrases, and the ones below for pl, ru, sv), 16 kHz mono; the shared English speech (assets/speech_en.wav). The figure is the
margin between the lowest English score and the highest of any other language, each condition and both together.

    PYTHONPATH=$PWD python scripts/english_fit.py          # writes out/bench/english_fit.json
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import resample_poly

from src.audio import decode_audio
from src.audio.lipsync.language import ENGLISH_FIT_MIN
from src.audio.lipsync.track import analyse_file
from src.audio.lipsync.vowels import load_templates
from src.audio.tts import synthesize
from src.bench.audio import write_wav
from src.bench.languages import SENTENCES
from src.core.config import AppConfig

ENGLISH_VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3", "en-gb-scotland")
OTHER = ("de", "fr", "es", "it", "nl", "pt", "pl", "ru", "sv")
# the languages src/bench/languages.py has no phrases for
MORE: dict[str, tuple[str, ...]] = {
    "pl": ("Dzień dobry, jak się pan dzisiaj czuje?", "Proszę mi podać książkę ze stołu.",
           "Było zimno, więc zostaliśmy w domu przez całe popołudnie.", "Mój brat pracuje w szpitalu koło dworca."),
    "ru": ("Добрый день, как вы себя чувствуете сегодня?", "Пожалуйста, дайте мне книгу со стола.",
           "Было холодно, поэтому мы весь день сидели дома.", "Мой брат работает в больнице около вокзала."),
    "sv": ("God morgon, hur mår du i dag?", "Var snäll och ge mig boken från bordet.",
           "Det var kallt, så vi stannade inne hela eftermiddagen.", "Min bror arbetar på sjukhuset nära stationen."),
}


def sentences(voice: str) -> tuple[str, ...]:
    lang = "en-us" if voice.startswith("en") else voice
    return SENTENCES[lang] if lang in SENTENCES else MORE[lang]


def speech_16k(voice: str, gap_s: float = 0.8) -> np.ndarray:
    """The voice's sentences, 0.6 s lead, `gap_s` between, at 16 kHz."""
    parts = [np.zeros(int(0.6 * 16000), np.float32)]
    for text in sentences(voice):
        u = synthesize(text, voice)
        g = int(np.gcd(u.sample_rate_hz, 16000))
        x = resample_poly(u.pcm.astype(np.float64), 16000 // g, u.sample_rate_hz // g).astype(np.float32)
        nz = np.flatnonzero(np.abs(x) > 1e-3)
        parts += [x[nz[0] : nz[-1] + 1], np.zeros(int(gap_s * 16000), np.float32)]
    return np.concatenate(parts)


def with_noise(x: np.ndarray, dbfs: float = -40.0, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(len(x))
    return (x + n * 10 ** (dbfs / 20.0) / np.sqrt(np.mean(n**2))).astype(np.float32)


def score(path: Path, config: AppConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    a = analyse_file(path, config, load_templates(config.audio), recognise=True, check_english=True)
    return {"english_fit": None if a["english_fit"] is None else round(float(a["english_fit"]), 3),
            "acoustic_fit": None if a["acoustic_fit"] is None else round(float(a["acoustic_fit"]), 3),
            "analysis_s": round(time.perf_counter() - t0, 2), "duration_s": round(float(a["duration_s"]), 2)}


def margins(rows: dict[str, dict[str, Any]], key: str = "english_fit") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cond in ("clean", "noise", "both"):
        sel = {k: v[key] for k, v in rows.items() if cond == "both" or k.endswith(cond)}
        en = {k: v for k, v in sel.items() if k.startswith(("en", "speech_en"))}
        other = {k: v for k, v in sel.items() if k not in en}
        worst_en, best_other = min(en, key=lambda k: en[k]), max(other, key=lambda k: other[k])
        out[cond] = {"english_min": [worst_en, en[worst_en]], "other_max": [best_other, other[best_other]],
                     "gap": round(en[worst_en] - other[best_other], 3)}
    return out


def measure_english_fit(config: AppConfig, speech_en: Path | None = None) -> dict[str, Any]:
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        items = {v: speech_16k(v) for v in ENGLISH_VOICES + OTHER}
        if speech_en is not None and speech_en.is_file():
            items["speech_en.wav"] = decode_audio(speech_en).astype(np.float32)
        for name, x in items.items():
            for cond, y in (("clean", x), ("noise", with_noise(x))):
                wav = write_wav(d / f"{name}_{cond}.wav", y)
                rows[f"{name} {cond}"] = score(wav, config)
    out: dict[str, Any] = {"threshold": ENGLISH_FIT_MIN, "files": rows, "margins": margins(rows),
                           "acoustic_fit_margins": margins(rows, "acoustic_fit")}
    out["misjudged"] = [k for k, v in rows.items() if (v["english_fit"] is not None and v["english_fit"] >= ENGLISH_FIT_MIN)
                        != k.startswith(("en", "speech_en"))]
    return out
