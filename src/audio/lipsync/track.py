"""Offline lip sync for render: an audio file -> one MouthShape per video frame (with lookahead).

One streaming pass decodes the file and computes per-hop loudness, voicing and
vowel class while pocketsphinx recognises phones utterance by utterance. Voice
regions are then found with lookahead (onsets and offsets exact to 10 ms),
phones become Rhubarb shapes (visemes.py), and the timeline is sampled at the
frame rate. If phone recognition is unavailable or implausible (no phones,
a phone rate far from speech, phones covering little of the voiced time, e.g. a
language other than English or music) the vowel classes of the live method are
used instead, and that is logged once per file.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from src.audio.io.file_source import AudioFileReader
from src.audio.lipsync.analysis import FrameAnalyzer, FrameFeatures, VoiceActivityDetector, speech_regions
from src.audio.lipsync.english_check import EnglishFit
from src.audio.lipsync.language import choose_method, live_method_delay_s, phones_allowed
from src.audio.lipsync.phones import PhoneRecognizer, PhoneSegment
from src.audio.lipsync.visemes import Seg, build_timeline, class_shape_segments, phone_shape_segments, sample_timeline, vector_to_shape
from src.audio.lipsync.vowels import VowelTemplates, load_templates
from src.core.config import AppConfig
from src.core.frames import MouthShape

log = logging.getLogger(__name__)

PREROLL_HOPS = 30  # audio fed to the recogniser before a voice onset (300 ms)
UTTERANCE_END_HOPS = 50  # quiet this long ends a recogniser utterance (500 ms)
PHONE_RATE_RANGE = (4.0, 25.0)  # plausible phones per second of voiced time
MIN_PHONE_COVERAGE = 0.5  # share of voiced time phones must cover
CLASS_SMOOTH_HOPS = 5  # majority filter on per-hop vowel classes (fallback method)
ANALYSIS_CHUNK_HOPS = 50  # hops analysed in one vectorised pass (a file is read ahead; 0.5 s)


@dataclass
class MouthTrack:
    """Mouth shapes for every video frame of a file: frame k shows time k / fps."""

    values: np.ndarray  # (n_frames, 4) open, width, round, closed
    fps: float
    duration_s: float
    method: str  # "phones" or "live"
    timeline: list[Seg] = field(default_factory=list)
    regions: list[tuple[float, float]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def n_frames(self) -> int:
        return len(self.values)

    def shape(self, index: int) -> MouthShape:
        """The shape of frame `index` (closed past the end)."""
        if index < 0 or index >= len(self.values):
            return MouthShape()
        return vector_to_shape(self.values[index])

    @property
    def shapes(self) -> list[MouthShape]:
        return [vector_to_shape(v) for v in self.values]

    def at(self, t_s: float) -> MouthShape:
        """The shape of the frame showing media time `t_s`."""
        return self.shape(int(math.floor(t_s * self.fps + 1e-6)))


def _plausible(phones: list[PhoneSegment], regions: list[tuple[float, float]]) -> tuple[bool, str]:
    voiced = sum(e - s for s, e in regions)
    if voiced <= 0:
        return True, "no voice"
    speech = [p for p in phones if not p.is_silence]
    if not speech:
        return False, "no phones recognised"
    covered = 0.0
    for p in speech:
        for s, e in regions:
            covered += max(0.0, min(p.end_s, e) - max(p.start_s, s))
    n_inside = sum(1 for p in speech if any(p.end_s > s and p.start_s < e for s, e in regions))
    rate = n_inside / voiced
    coverage = covered / voiced
    lo, hi = PHONE_RATE_RANGE
    if not lo <= rate <= hi:
        return False, f"implausible phone rate {rate:.1f}/s"
    if coverage < MIN_PHONE_COVERAGE:
        return False, f"phones cover only {100 * coverage:.0f}% of the voiced time"
    return True, f"{rate:.1f} phones/s, {100 * coverage:.0f}% coverage"


def _smooth_classes(classes: list[str], k: int) -> list[str]:
    if k <= 1:
        return classes
    out = list(classes)
    half = k // 2
    for i, c in enumerate(classes):
        if not c:
            continue
        window = [x for x in classes[max(0, i - half) : i + half + 1] if x]
        # ties go to this hop's own class, then to the earliest in the window: max over a set followed string
        # hashing, which changes from process to process (the same file gave different mouths in two runs)
        out[i] = max(window, key=lambda x: (window.count(x), x == c))
    return out


def _analysed(blocks: Iterator[np.ndarray], analyzer: FrameAnalyzer, templates: VowelTemplates
              ) -> Iterator[tuple[int, np.ndarray, FrameFeatures, int]]:
    """(hop index, block, features, nearest vowel class) for each block in order: the features of
    `ANALYSIS_CHUNK_HOPS` hops at a time in one vectorised pass (`push_many`, the same numbers as `push`)."""
    i = 0
    while chunk := list(islice(blocks, ANALYSIS_CHUNK_HOPS)):
        feats = analyzer.push_many(chunk)
        nearest = templates.nearest_many(np.stack([f.mfcc for f in feats]))
        for block, f, cls in zip(chunk, feats, nearest, strict=True):
            yield i, block, f, int(cls)
            i += 1


def analyse_file(path: str | Path, config: AppConfig, templates: VowelTemplates, recognise: bool = True,
                 check_english: bool = False) -> dict[str, Any]:
    """One streaming pass: per-hop level, voicing and vowel class, and phones (if `recognise`); with
    `check_english`, how English-like the speech is (english_check.py)."""
    acfg = config.audio
    reader = AudioFileReader(path, acfg.sample_rate_hz)
    hop_s = acfg.block_ms / 1000.0
    analyzer = FrameAnalyzer(acfg.sample_rate_hz, acfg.analysis_window_ms)
    vad = VoiceActivityDetector(acfg.vad, hop_s)
    recognizer: PhoneRecognizer | None = None
    error = ""
    if recognise:
        try:
            recognizer = PhoneRecognizer()
        except Exception as exc:  # noqa: BLE001 - pocketsphinx missing or its model unreadable
            error = f"phone recogniser unavailable ({exc})"
    checker = EnglishFit() if recognizer is not None and check_english else None
    levels: list[float] = []
    voicing: list[float] = []
    classes: list[int] = []
    preroll: deque[np.ndarray] = deque(maxlen=PREROLL_HOPS)
    quiet = 0
    n_samples = 0
    for i, block, f, cls in _analysed(reader.blocks(hop_s), analyzer, templates):
        n_samples += len(block)
        levels.append(f.level_db)
        voicing.append(f.voicing)
        classes.append(cls)
        active = vad.update(f.level_db, f.voicing)
        preroll.append(block)
        if recognizer is None:
            continue
        try:
            if active and not recognizer.in_utterance:
                recognizer.begin(max(0.0, (i - len(preroll) + 1) * hop_s))
                if checker is not None:
                    checker.begin(max(0.0, (i - len(preroll) + 1) * hop_s))
                for b in preroll:
                    recognizer.feed(b)
                    if checker is not None:
                        checker.feed(b)
            elif recognizer.in_utterance:
                recognizer.feed(block)
                if checker is not None:
                    checker.feed(block)
            quiet = 0 if active else quiet + 1
            if recognizer.in_utterance and quiet >= UTTERANCE_END_HOPS:
                recognizer.end()
        except Exception as exc:  # noqa: BLE001 - the recogniser failing falls back, it does not end the render
            error = f"phone recognition failed ({exc})"
            recognizer = None
    if recognizer is not None:
        try:
            recognizer.end()
        except Exception as exc:  # noqa: BLE001 - any recogniser failure falls back to the live method
            error = f"phone recognition failed ({exc})"
            recognizer = None
    english_fit = None
    if checker is not None and recognizer is not None:
        try:
            english_fit = checker.score(speech_regions(np.asarray(levels), np.asarray(voicing), acfg.vad, hop_s))
        except Exception as exc:  # noqa: BLE001 - a failed check falls back to the live method, it does not end the render
            error = f"English check failed ({exc})"
    return {
        "duration_s": n_samples / acfg.sample_rate_hz,
        "levels": np.asarray(levels, np.float32),
        "voicing": np.asarray(voicing, np.float32),
        "classes": np.asarray(classes, np.int16),
        "phones": recognizer.segments if recognizer is not None else None,
        "acoustic_fit": recognizer.acoustic_fit if recognizer is not None else None,
        "english_fit": english_fit,
        "error": error,
        "decode_errors": reader.decode_errors,
    }


def file_mouth_track(path: str | Path, fps: float, config: AppConfig, method: str | None = None,
                     templates: VowelTemplates | None = None) -> MouthTrack:
    """Per-frame mouth shapes for an audio (or video) file at `fps`.

    `method`: "auto" (phones, falling back to the live method), "phones" or "live";
    None takes config.audio.visemes.method. Raises AudioInputError for a bad file.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    acfg = config.audio
    method = method or acfg.visemes.method
    templates = templates or load_templates(acfg)
    hop_s = acfg.block_ms / 1000.0
    t0 = time.perf_counter()
    a = analyse_file(path, config, templates, recognise=method != "live" and phones_allowed(acfg.language),
                     check_english=method == "auto" and acfg.language == "auto")
    regions = speech_regions(a["levels"], a["voicing"], acfg.vad, hop_s)
    duration = float(a["duration_s"])
    plausible = _plausible(a["phones"], regions) if a["phones"] is not None else None
    used, reason = choose_method(acfg.language, method, plausible, a["english_fit"], a["error"])
    shapes: list[Seg] = []
    lookahead_s = 0.0
    if used == "phones":
        shapes = phone_shape_segments(a["phones"])
    else:
        labels = [templates.classes[c] for c in a["classes"]]
        in_voice = np.zeros(len(labels), bool)
        for s, e in regions:
            in_voice[int(round(s / hop_s)) : int(round(e / hop_s))] = True
        labels = _smooth_classes([c if v else "" for c, v in zip(labels, in_voice, strict=True)], CLASS_SMOOTH_HOPS)
        # Offline the future audio is known: undo the live method's delay (live_method_delay_s) by starting its
        # shapes that much earlier; the voice regions' edges are exact already and stay where they are.
        lookahead_s = live_method_delay_s(acfg)
        shapes = class_shape_segments(labels, hop_s, t0=-lookahead_s)
    # said once per file: which method, and why
    if used == "live" and method != "live" and phones_allowed(acfg.language):
        log.warning("%s: phone-based lip sync not usable (%s); using the live vowel method", path, reason)
    else:
        log.info("%s: mouth shapes by %s (%s)", path, "English phones" if used == "phones" else "the live vowel method", reason)
    timeline = build_timeline(shapes, regions, acfg.visemes, duration)
    n_frames = max(1, math.ceil(duration * fps - 1e-6))
    # Frame k is shown from k/fps to (k+1)/fps: sample the middle, so each change lands on the frame
    # nearest to it (half a frame early at worst, never a whole frame late).
    times = (np.arange(n_frames) + 0.5) / fps
    values = sample_timeline(timeline, times, acfg.mouth.max_open, acfg.visemes.transition_ms)
    info = {
        "reason": reason,
        "language": acfg.language,
        "acoustic_fit": None if a["acoustic_fit"] is None else round(float(a["acoustic_fit"]), 3),
        "english_fit": None if a["english_fit"] is None else round(float(a["english_fit"]), 3),
        "lookahead_ms": round(1000.0 * lookahead_s, 1),
        "phones": 0 if a["phones"] is None else sum(1 for p in a["phones"] if not p.is_silence),
        "regions": len(regions),
        "analysis_s": round(time.perf_counter() - t0, 3),
        "decode_errors": a["decode_errors"],
    }
    return MouthTrack(values, float(fps), duration, used, timeline, regions, info)
