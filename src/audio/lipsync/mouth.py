"""From audio features to a smoothed `MouthShape`, and a short time-indexed history of shapes.

`LiveMouth` is the low-latency path: voice activity gates the mouth, loudness
scales the opening, vowel weights (uLipSync-style) blend per-vowel shapes, and an
attack/release smoother opens fast and closes in about `release_ms`.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right

import numpy as np

from src.audio.lipsync.analysis import FrameFeatures, VoiceActivityDetector
from src.audio.lipsync.vowels import VowelTemplates
from src.core.config import AudioConfig
from src.core.frames import MouthShape

# Per-class shape (open is a fraction of max_open; width, round, closed as in MouthShape).
VOWEL_SHAPES: dict[str, tuple[float, float, float, float]] = {
    "A": (1.00, 0.05, 0.0, 0.0),
    "I": (0.35, 0.25, 0.0, 0.0),
    "U": (0.30, -0.20, 0.9, 0.0),
    "E": (0.60, 0.15, 0.0, 0.0),
    "O": (0.75, -0.12, 0.6, 0.0),
    "N": (0.25, 0.05, 0.0, 0.0),
}


def shape_vector(shape: MouthShape) -> np.ndarray:
    return np.array([shape.open, shape.width, shape.round, shape.closed], np.float32)


def vector_shape(v: np.ndarray) -> MouthShape:
    return MouthShape(float(v[0]), float(v[1]), float(v[2]), float(v[3]))


def time_constant(ms: float) -> float:
    """The exponential time constant (s) that covers 90% of a step in `ms`."""
    return max(ms, 1e-3) / 1000.0 / math.log(10.0)


class AttackRelease:
    """One-pole smoother with a fast constant when rising and a slower one when falling."""

    def __init__(self, attack_ms: float, release_ms: float, hop_s: float, size: int = 1) -> None:
        self.a_up = 1.0 - math.exp(-hop_s / time_constant(attack_ms)) if attack_ms > 0 else 1.0
        self.a_down = 1.0 - math.exp(-hop_s / time_constant(release_ms)) if release_ms > 0 else 1.0
        self.value = np.zeros(size, np.float32)

    def step(self, target: np.ndarray) -> np.ndarray:
        alpha = np.where(target > self.value, self.a_up, self.a_down)
        self.value = (self.value + alpha * (target - self.value)).astype(np.float32)
        return self.value

    def reset(self) -> None:
        self.value[:] = 0.0


class LiveMouth:
    """Turns one hop of features into the mouth shape at the end of that hop."""

    def __init__(self, cfg: AudioConfig, templates: VowelTemplates, hop_s: float = 0.01) -> None:
        self.cfg = cfg
        self.templates = templates
        self.vad = VoiceActivityDetector(cfg.vad, hop_s)
        m = cfg.mouth
        self._open = AttackRelease(m.attack_ms, m.release_ms, hop_s)
        # width / round / closed follow the vowel at the attack speed both ways
        self._shape = AttackRelease(m.attack_ms, m.attack_ms, hop_s, size=3)
        self._vowel_alpha = 1.0 - math.exp(-hop_s / max(m.vowel_smoothing_ms / 1000.0, 1e-3)) if m.vowel_smoothing_ms > 0 else 1.0
        self._class_shapes = np.array([VOWEL_SHAPES[c] for c in templates.classes], np.float32)
        self._weights = np.full(len(templates.classes), 1.0 / len(templates.classes), np.float32)
        self.last_vowel = ""
        self.loudness = 0.0

    def step(self, f: FrameFeatures, vowel_weights: np.ndarray | None = None) -> MouthShape:
        """The shape after hop `f`; `vowel_weights`: `templates.weights(f.mfcc)` if already known."""
        active = self.vad.update(f.level_db, f.voicing)
        if active:
            w = vowel_weights if vowel_weights is not None else self.templates.weights(f.mfcc)  # only a voiced hop needs its vowel
            self._weights += self._vowel_alpha * (w - self._weights)
            # a fresh onset takes the current vowel at once: no smear from the last word
            if self.vad.onsets and self._open.value[0] < 0.02:
                self._weights = w.copy()
            self.last_vowel = self.templates.classes[int(np.argmax(self._weights))]
            self.loudness = self.vad.loudness(f.level_db)
            blend = self._weights @ self._class_shapes
            gain = self.loudness**0.7
            target_open = np.array([blend[0] * gain * self.cfg.mouth.max_open], np.float32)
            target_rest = np.array([blend[1] * gain, blend[2] * min(1.0, 2.0 * gain), 0.0], np.float32)
        else:
            self.last_vowel = ""
            self.loudness = 0.0
            target_open = np.zeros(1, np.float32)
            target_rest = np.zeros(3, np.float32)
        o = self._open.step(target_open)
        r = self._shape.step(target_rest)
        return MouthShape(float(o[0]), float(r[0]), float(r[1]), float(r[2]))

    def close(self) -> MouthShape:
        """Voice gone (device lost, end of file): forget the state, mouth closed."""
        self.vad.active = False
        self._open.reset()
        self._shape.reset()
        return MouthShape()

    @property
    def active(self) -> bool:
        return self.vad.active


class MouthHistory:
    """Recent (time, shape) pairs; `at(t)` is the newest shape stamped at or before t. Thread-safe."""

    def __init__(self, keep_s: float = 3.0) -> None:
        self.keep_s = keep_s
        self._ts: list[float] = []
        self._shapes: list[MouthShape] = []
        self._lock = threading.Lock()

    def append(self, ts: float, shape: MouthShape) -> None:
        with self._lock:
            if self._ts and ts < self._ts[-1]:
                ts = self._ts[-1]  # never go back in time (a re-anchored clock)
            self._ts.append(ts)
            self._shapes.append(shape)
            if len(self._ts) > 64 and self._ts[-1] - self._ts[0] > 2 * self.keep_s:
                cut = bisect_right(self._ts, self._ts[-1] - self.keep_s)
                del self._ts[:cut]
                del self._shapes[:cut]

    def at(self, t: float) -> MouthShape:
        with self._lock:
            i = bisect_right(self._ts, t)
            if i == 0:
                return MouthShape()
            s = self._shapes[i - 1]
            return MouthShape(s.open, s.width, s.round, s.closed)

    def first_opening(self, after: float, until: float, threshold: float) -> float | None:
        """The first time stamp in (after, until] at which the opening passes `threshold` having been at
        or below it on the entry before (a shape analysed ahead of its time); None if there is none."""
        with self._lock:
            i = bisect_right(self._ts, after)
            while i < len(self._ts) and self._ts[i] <= until:
                if self._shapes[i].open > threshold and (i == 0 or self._shapes[i - 1].open <= threshold):
                    return self._ts[i]
                i += 1
            return None

    def latest(self) -> tuple[float, MouthShape] | None:
        with self._lock:
            if not self._ts:
                return None
            return self._ts[-1], self._shapes[-1]
