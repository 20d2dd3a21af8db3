"""Voice calibration: the user's own sustained vowels become the vowel templates (a voice profile).

From the microphone (prompting A, I, U, E, O in turn) or from wav files. The
profile keeps the shipped noise class and scale, replaces the vowels, and is
saved to `audio.voice_profile`, which the live classifier then loads instead of
the defaults.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from src.audio.io.blocks import AudioInputError
from src.audio.io.file_source import AudioFileReader
from src.audio.io.mic import FIRST_CALLBACK_S, MicCapture
from src.audio.lipsync.analysis import FrameAnalyzer, VoiceActivityDetector
from src.audio.lipsync.vowels import VOWELS, VowelTemplates
from src.core.config import AppConfig, resolve_path
from src.core.errors import UserError

log = logging.getLogger(__name__)

PROMPTS = {"A": "'ah' as in father", "I": "'ee' as in see", "U": "'oo' as in blue", "E": "'eh' as in bed", "O": "'oh' as in law"}
MIN_VOICED_FRAMES = 20  # 200 ms of steady voice per vowel at least
TRIM = 0.15
MAX_TAKES = 3  # a vowel is asked for again after a dropout or too little voice


def vowel_frames(blocks: Sequence[np.ndarray] | np.ndarray, config: AppConfig) -> np.ndarray:
    """MFCC frames (n, 12) of the voiced, steady middle of one sustained vowel recording."""
    acfg = config.audio
    analyzer = FrameAnalyzer(acfg.sample_rate_hz, acfg.analysis_window_ms)
    vad = VoiceActivityDetector(acfg.vad, acfg.block_ms / 1000.0)
    hop = round(acfg.sample_rate_hz * acfg.block_ms / 1000.0)
    audio = np.concatenate([np.asarray(b, np.float32) for b in blocks]) if len(blocks) else np.zeros(0, np.float32)
    rows = []
    for i in range(0, len(audio) - hop + 1, hop):
        f = analyzer.push(audio[i : i + hop])
        if vad.update(f.level_db, f.voicing):
            rows.append(f.mfcc)
    cut = int(len(rows) * TRIM)
    rows = rows[cut : len(rows) - cut] if len(rows) > 2 * cut + 2 else rows
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 12), np.float32)


def parse_wav_args(items: Sequence[str]) -> dict[str, Path]:
    """['a.wav', 'i.wav', 'u.wav', 'e.wav', 'o.wav'] (in A I U E O order) or ['A=a.wav', 'O=o.wav', ...]."""
    named = [i for i in items if "=" in i and i.split("=", 1)[0].strip().upper() in VOWELS]
    if named and len(named) != len(items):
        raise UserError("--from-wav: mix of VOWEL=FILE and plain files; give all five files in A I U E O order or all as VOWEL=FILE")
    if named:
        out = {i.split("=", 1)[0].strip().upper(): Path(i.split("=", 1)[1]) for i in items}
    else:
        if len(items) != len(VOWELS):
            raise UserError(f"--from-wav: got {len(items)} files; give five (A I U E O in that order) or VOWEL=FILE pairs")
        out = dict(zip(VOWELS, (Path(i) for i in items), strict=True))
    missing = [v for v in VOWELS if v not in out]
    if missing:
        raise UserError(f"--from-wav: no recording for {', '.join(missing)}; add {missing[0]}=FILE")
    return out


def _build_profile(frames: dict[str, np.ndarray], defaults: VowelTemplates, source: str) -> VowelTemplates:
    for vowel, rec in frames.items():
        if len(rec) < MIN_VOICED_FRAMES:
            raise UserError(
                f"calibration {source}: heard only {len(rec) * 10} ms of steady voice for {vowel} ({PROMPTS[vowel]}); "
                "hold the vowel for 2 s, closer to the microphone"
            )
    data: dict[str, list[np.ndarray]] = {v: [frames[v]] for v in VOWELS}
    profile = VowelTemplates.from_frames(data, per_class=3, source=source, scale=defaults.scale, meta={"calibrated": True})
    profile.templates["N"] = defaults.templates["N"].copy()
    return VowelTemplates(profile.templates, profile.scale, source, profile.meta)


def calibrate_from_wavs(wavs: dict[str, Path], config: AppConfig, defaults: VowelTemplates) -> VowelTemplates:
    frames = {}
    for vowel in VOWELS:
        reader = AudioFileReader(wavs[vowel], config.audio.sample_rate_hz)
        frames[vowel] = vowel_frames(list(reader.blocks(1.0)), config)
    return _build_profile(frames, defaults, "wav files " + ", ".join(str(wavs[v]) for v in VOWELS))


def record_vowel(mic: MicCapture, seconds: float) -> list[np.ndarray]:
    """Audio blocks from an open microphone for `seconds`."""
    blocks: list[np.ndarray] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        blocks.extend(b.samples for b in mic.read(timeout=0.05))
    return blocks


def _wait_for_mic(mic: MicCapture) -> None:
    """Return once the microphone delivers audio; raise AudioInputError if it stays gone."""
    if not mic.lost:
        return
    deadline = time.monotonic() + 2 * mic.retry_s + FIRST_CALLBACK_S
    while mic.lost and time.monotonic() < deadline:
        mic.read(timeout=0.05)
    seen = mic.callbacks
    while not mic.lost and mic.callbacks == seen and time.monotonic() < deadline:
        mic.read(timeout=0.05)
    if mic.lost or mic.callbacks == seen:
        raise AudioInputError(f"{mic.label}: stopped during calibration ({mic.lost_reason}); reconnect it and run again")


def _take_vowel(
    mic: MicCapture, vowel: str, config: AppConfig, seconds: float, prompt: Callable[[str], None], pause_s: float
) -> np.ndarray:
    """One vowel's steady frames; asks again (up to MAX_TAKES) after a dropout or too little voice."""
    frames = np.zeros((0, 12), np.float32)
    for take in range(1, MAX_TAKES + 1):
        prompt(f"Get ready to say a long {PROMPTS[vowel]} ...")
        record_vowel(mic, pause_s)
        _wait_for_mic(mic)
        outages = mic.outages
        prompt(f"Now: {vowel} - hold {PROMPTS[vowel]} for {seconds:g} s")
        frames = vowel_frames(record_vowel(mic, seconds), config)
        dropped = mic.outages != outages
        if not dropped and len(frames) >= MIN_VOICED_FRAMES:
            prompt(f"  {vowel}: {len(frames) * 10} ms of steady voice")
            return frames
        why = "the microphone dropped out" if dropped else f"heard only {len(frames) * 10} ms of steady voice"
        if take < MAX_TAKES:
            prompt(f"  {vowel}: {why}; once more")
        elif dropped:
            raise AudioInputError(
                f"{mic.label}: dropped out during calibration ({mic.lost_reason}) in the last of {MAX_TAKES} takes of {vowel}; "
                "check its connection and run again"
            )
    return frames  # too little voice after every take: _build_profile says so


def calibrate_from_mic(
    config: AppConfig,
    defaults: VowelTemplates,
    device: str | None = None,
    seconds_per_vowel: float = 2.5,
    prompt: Callable[[str], None] = print,
    pause_s: float = 1.5,
) -> VowelTemplates:
    acfg = config.audio
    mic = MicCapture(device, acfg.sample_rate_hz, acfg.block_ms, acfg.mic_retry_s)
    mic.start()
    try:
        deadline = time.monotonic() + FIRST_CALLBACK_S
        while mic.callbacks == 0 and time.monotonic() < deadline:  # some sound servers take ~2 s to start
            mic.read(timeout=0.05)
        record_vowel(mic, 0.3)  # let the stream settle; discard
        frames = {vowel: _take_vowel(mic, vowel, config, seconds_per_vowel, prompt, pause_s) for vowel in VOWELS}
    finally:
        mic.stop()
    return _build_profile(frames, defaults, mic.label)


def calibrate_voice(
    config: AppConfig,
    device: str | None = None,
    wavs: Sequence[str] | None = None,
    out_path: str | Path | None = None,
    seconds_per_vowel: float = 2.5,
    prompt: Callable[[str], None] = print,
    pause_s: float = 1.5,
) -> Path:
    """Record (or read) the five vowels, build the profile and save it; returns the profile path."""
    defaults = VowelTemplates.load(resolve_path(config.audio.templates))
    if wavs:
        profile = calibrate_from_wavs(parse_wav_args(list(wavs)), config, defaults)
    else:
        profile = calibrate_from_mic(config, defaults, device, seconds_per_vowel, prompt, pause_s)
    target = Path(out_path or config.audio.voice_profile).expanduser()
    try:
        return profile.save(target)
    except OSError as exc:
        raise UserError(f"voice profile {target}: cannot be written ({exc.strerror}); pass --out with a writable path") from None
