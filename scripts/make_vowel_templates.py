#!/usr/bin/env python3
"""Build the default vowel templates (assets/voice/vowel_templates.json) from espeak-ng voices.

Each build voice says sustained A, I, U, E, O (and the fricatives S, SH, F for the
noise class, with white and pink noise); the MFCC frames of the steady middle of
each recording become templates. Voices not used for building are for evaluation
(`--evaluate`): the share of frames of their sustained vowels classified right.

    .venv/bin/python scripts/make_vowel_templates.py            # write the defaults
    .venv/bin/python scripts/make_vowel_templates.py --evaluate # and report accuracy
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.bench_audio import have_espeak  # noqa: E402
from src.audio.analysis import FrameAnalyzer, VoiceActivityDetector  # noqa: E402
from src.audio.file_source import decode_audio  # noqa: E402
from src.audio.vowels import VOWELS, VowelTemplates  # noqa: E402
from src.config import VadConfig  # noqa: E402

# espeak-ng phoneme mnemonics (en) closest to the five uLipSync vowels, held long.
VOWEL_PHONEMES = {"A": "A:", "I": "i:", "U": "u:", "E": "E", "O": "O:"}
NOISE_PHONEMES = ("s", "S", "f")
BUILD_VOICES = ("en-us", "en-us+f3", "en-gb", "en-us+m3", "en-gb-x-rp", "en-029")
EVAL_VOICES = ("en-us+f5", "en-gb-scotland", "en-gb-x-gbclan", "en+klatt", "en-us+f2", "en-gb-x-gbcwmd")
DEFAULT_OUT = ROOT / "assets" / "voice" / "vowel_templates.json"
TRIM = 0.15  # share of voiced frames dropped at each end (onset and offset transitions)


def synth_phoneme(phoneme: str, voice: str, path: Path, hold: int = 6, speed_wpm: int = 80) -> Path:
    """A sustained phoneme from espeak-ng written to `path` (wav)."""
    text = f"[[{phoneme}{':' * hold}]]"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(path), text], check=True, capture_output=True)
    return path


def synth_vowel(vowel: str, voice: str, path: Path, hold: int = 6) -> Path:
    """Sustained vowel A, I, U, E or O said by an espeak-ng voice."""
    return synth_phoneme(VOWEL_PHONEMES[vowel], voice, path, hold)


def steady_frames(audio: np.ndarray, trim: float = TRIM, voiced_only: bool = True) -> np.ndarray:
    """MFCC frames (n, 12) of the steady middle of a sustained sound."""
    fa = FrameAnalyzer()
    vad = VoiceActivityDetector(VadConfig())
    rows, keep = [], []
    for i in range(0, len(audio) - 159, 160):
        f = fa.push(audio[i : i + 160])
        active = vad.update(f.level_db, f.voicing)
        rows.append(f.mfcc)
        keep.append(active if voiced_only else f.level_db > -60)
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        return np.zeros((0, 12), np.float32)
    cut = int(len(idx) * trim)
    idx = idx[cut : len(idx) - cut] if len(idx) > 2 * cut + 2 else idx
    return np.stack([rows[i] for i in idx]).astype(np.float32)


def noise_frames(seed: int = 0, seconds: float = 1.0) -> list[np.ndarray]:
    """MFCC frames of white and pink noise (room noise, breath, hiss)."""
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    white = rng.standard_normal(n)
    spec = np.fft.rfft(rng.standard_normal(n))
    spec /= np.sqrt(np.maximum(np.arange(len(spec)), 1))
    pink = np.fft.irfft(spec, n)
    out = []
    for x in (white, pink):
        x = (0.05 * x / np.sqrt(np.mean(x**2))).astype(np.float32)
        out.append(steady_frames(x, trim=0.1, voiced_only=False))
    return out


def voice_frames(voices: tuple[str, ...], workdir: Path, with_noise: bool = True) -> dict[str, list[np.ndarray]]:
    frames: dict[str, list[np.ndarray]] = {c: [] for c in (*VOWELS, "N")}
    for voice in voices:
        for vowel in VOWELS:
            wav = synth_vowel(vowel, voice, workdir / f"{voice}_{vowel}.wav")
            frames[vowel].append(steady_frames(decode_audio(wav)))
        if with_noise:
            for ph in NOISE_PHONEMES:
                wav = synth_phoneme(ph, voice, workdir / f"{voice}_{ph}.wav", hold=4)
                frames["N"].append(steady_frames(decode_audio(wav), voiced_only=False))
    if with_noise:
        frames["N"].extend(noise_frames())
    return frames


def build(voices: tuple[str, ...] = BUILD_VOICES, workdir: Path | None = None) -> VowelTemplates:
    with tempfile.TemporaryDirectory() as tmp:
        frames = voice_frames(voices, workdir or Path(tmp))
    return VowelTemplates.from_frames(frames, per_class=3, source="espeak-ng " + ", ".join(voices), meta={"voices": list(voices)})


def frame_accuracy(templates: VowelTemplates, wavs: list[str] | list[Path]) -> float:
    """Share of the steady voiced frames of sustained vowels (one wav per vowel, in VOWELS order)
    classified as their vowel."""
    hits = total = 0
    for vowel, wav in zip(VOWELS, wavs, strict=True):
        frames = steady_frames(decode_audio(wav), trim=0.0)
        hits += sum(templates.classify(m) == vowel for m in frames)
        total += len(frames)
    return hits / max(total, 1)


def accuracy(templates: VowelTemplates, voices: tuple[str, ...], workdir: Path) -> dict[str, float]:
    """frame_accuracy of each voice's sustained vowels."""
    return {voice: round(frame_accuracy(templates, [synth_vowel(v, voice, workdir / f"eval_{voice}_{v}.wav") for v in VOWELS]), 3)
            for voice in voices}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--evaluate", action="store_true", help="report per-voice frame accuracy on build and held-out voices")
    args = ap.parse_args()
    if not have_espeak():
        print("espeak-ng is not installed (apt-get install espeak-ng)", file=sys.stderr)
        return 2
    templates = build()
    path = templates.save(args.out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    if args.evaluate:
        with tempfile.TemporaryDirectory() as tmp:
            report = {
                "build_voices": accuracy(templates, BUILD_VOICES, Path(tmp)),
                "held_out_voices": accuracy(templates, EVAL_VOICES, Path(tmp)),
            }
        for k in list(report):
            report[k + "_mean"] = round(float(np.mean(list(report[k].values()))), 3)
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
