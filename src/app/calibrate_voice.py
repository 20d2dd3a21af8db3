"""`python main.py calibrate-voice`: the command-line pieces (main.py wires them in)."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from src.audio.io.file_source import AudioFileReader
from src.audio.lipsync.calibrate import calibrate_voice, parse_wav_args, vowel_frames
from src.audio.lipsync.vowels import VOWELS, VowelTemplates
from src.core.config import AppConfig


def add_calibrate_voice_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `calibrate-voice` sub-command to an argparse subparsers object."""
    p = subparsers.add_parser(
        "calibrate-voice",
        help="record your own A I U E O so the live lip sync knows your voice",
        description="Record sustained vowels A, I, U, E, O from the microphone (or read them from wav files) "
        "and save a voice profile that the live lip sync uses instead of the default templates.",
    )
    p.add_argument("--device", default=None, help="microphone index or part of its name (default: the system default)")
    p.add_argument("--out", default=None, help="where to save the profile (default: audio.voice_profile in config.yaml)")
    p.add_argument(
        "--from-wav", nargs="+", default=None, metavar="FILE",
        help="five recordings in A I U E O order, or VOWEL=FILE pairs, instead of the microphone",
    )
    p.add_argument("--seconds", type=float, default=2.5, help="how long to hold each vowel when recording (default 2.5)")
    return p


def cmd_calibrate_voice(args: argparse.Namespace, config: AppConfig) -> int:
    """Run the calibration; prints the saved path and how well the profile separates the recordings."""
    wavs = getattr(args, "from_wav", None)
    path = calibrate_voice(config, device=getattr(args, "device", None), wavs=wavs, out_path=getattr(args, "out", None),
                           seconds_per_vowel=float(getattr(args, "seconds", 2.5) or 2.5))
    print(f"voice profile saved to {path}")
    if wavs:
        profile = VowelTemplates.load(path)
        files = parse_wav_args(list(wavs))
        hits = total = 0
        for vowel in VOWELS:
            frames = vowel_frames(list(AudioFileReader(files[vowel]).blocks(1.0)), config)
            hits += int(np.sum([profile.classify(m) == vowel for m in frames]))
            total += len(frames)
        print(f"self-check: {100 * hits / max(total, 1):.0f}% of the recordings' frames classified as their vowel")
    print("the live lip sync now uses it (delete the file to go back to the defaults)")
    return 0
