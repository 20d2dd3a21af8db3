"""MFCC vowel templates and the uLipSync-style classifier: A, I, U, E, O and N (noise/fricative).

A template file (JSON, no pickle) holds several MFCC vectors per class (several
voices, or parts of one calibration recording). A frame is scored against the
nearest template of each class by L2 distance on per-coefficient scaled MFCCs;
score = 10^-distance, normalised to weights that sum to 1 (ANCHORS.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.audio.lipsync.analysis import N_MFCC
from src.core.config import AudioConfig, resolve_path
from src.core.errors import ConfigError

log = logging.getLogger(__name__)

VOWELS = ("A", "I", "U", "E", "O")
CLASSES = (*VOWELS, "N")
FORMAT_VERSION = 1


@dataclass
class VowelTemplates:
    """Templates per class plus the per-coefficient scale distances are measured in."""

    templates: dict[str, np.ndarray]  # class -> (k, 12)
    scale: np.ndarray  # (12,)
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.classes = tuple(c for c in CLASSES if c in self.templates and len(self.templates[c]))
        self._stack = np.concatenate([self.templates[c] for c in self.classes]).astype(np.float32) / self.scale
        self._owner = np.concatenate([np.full(len(self.templates[c]), i) for i, c in enumerate(self.classes)])
        self._class_starts = np.flatnonzero(np.r_[True, self._owner[1:] != self._owner[:-1]])  # each class's rows are contiguous

    @classmethod
    def from_frames(cls, frames: dict[str, list[np.ndarray]], per_class: int = 3, source: str = "", scale: np.ndarray | None = None,
                    meta: dict[str, Any] | None = None) -> VowelTemplates:
        """Templates from MFCC frames: each list item (one recording) gives `per_class` means of consecutive parts."""
        templates: dict[str, np.ndarray] = {}
        for name, recordings in frames.items():
            rows = []
            for rec in recordings:
                rec = np.asarray(rec, np.float32).reshape(-1, N_MFCC)
                if len(rec) == 0:
                    continue
                for part in np.array_split(rec, min(per_class, len(rec))):
                    rows.append(part.mean(axis=0))
            if rows:
                templates[name] = np.stack(rows).astype(np.float32)
        if not any(v in templates for v in VOWELS):
            raise ValueError("no vowel frames to build templates from")
        if scale is None:
            every = np.concatenate([np.asarray(r, np.float32).reshape(-1, N_MFCC) for recs in frames.values() for r in recs])
            scale = np.maximum(every.std(axis=0), 1.0)
        return cls(templates, np.asarray(scale, np.float32), source, dict(meta or {}))

    def distances(self, mfcc: np.ndarray) -> np.ndarray:
        """Distance to the nearest template of each class, (len(classes),)."""
        d = np.linalg.norm(self._stack - (np.asarray(mfcc, np.float32) / self.scale), axis=1)
        out = np.full(len(self.classes), np.inf, np.float32)
        np.minimum.at(out, self._owner, d)
        return out

    def nearest_many(self, mfccs: np.ndarray) -> np.ndarray:
        """The index of the nearest class for each row of `mfccs` (K, 12): argmin of `distances`, row by row,
        in one pass (each row's norms reduce over the same contiguous axis, so they are the same numbers)."""
        x = np.asarray(mfccs, np.float32)
        d = np.linalg.norm(self._stack[None] - (x / self.scale)[:, None, :], axis=2)
        return np.argmin(np.minimum.reduceat(d, self._class_starts, axis=1), axis=1)

    def weights(self, mfcc: np.ndarray) -> np.ndarray:
        """Scores 10^-distance normalised to sum to 1, in `classes` order."""
        d = self.distances(mfcc)
        s = np.power(10.0, -(d - d.min()))
        return (s / s.sum()).astype(np.float32)

    def weights_many(self, mfccs: np.ndarray) -> np.ndarray:
        """`weights` of each row of `mfccs` (K, 12), the same values, in one pass: (K, len(classes))."""
        x = np.asarray(mfccs, np.float32)
        d = np.linalg.norm(self._stack[None] - (x / self.scale)[:, None, :], axis=2)
        d = np.minimum.reduceat(d, self._class_starts, axis=1).astype(np.float32, copy=False)
        s = np.power(10.0, -(d - d.min(axis=1, keepdims=True)))
        return (s / s.sum(axis=1, keepdims=True)).astype(np.float32)

    def classify(self, mfcc: np.ndarray) -> str:
        return self.classes[int(np.argmin(self.distances(mfcc)))]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "puppetcam-vowel-templates",
            "version": FORMAT_VERSION,
            "features": {"sample_rate_hz": 16000, "n_mels": 30, "mfcc": "1..12", "pre_emphasis": 0.97},
            "source": self.source,
            "meta": self.meta,
            "scale": [round(float(v), 4) for v in self.scale],
            "templates": {c: [[round(float(v), 3) for v in row] for row in self.templates[c]] for c in self.classes},
        }

    def save(self, path: str | Path) -> Path:
        p = Path(path).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | Path) -> VowelTemplates:
        p = Path(path).expanduser()
        try:
            data = json.loads(p.read_text())
            if data.get("format") != "puppetcam-vowel-templates" or data.get("version") != FORMAT_VERSION:
                raise ValueError("not a puppetcam vowel template file of version 1")
            templates = {c: np.asarray(rows, np.float32).reshape(-1, N_MFCC) for c, rows in data["templates"].items() if c in CLASSES}
            scale = np.asarray(data["scale"], np.float32).reshape(N_MFCC)
            return cls(templates, scale, data.get("source", str(p)), data.get("meta", {}))
        except FileNotFoundError:
            raise ConfigError(
                f"vowel templates {p}: not found; run scripts/make_vowel_templates.py or python main.py calibrate-voice"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"vowel templates {p}: unreadable ({exc}); run python main.py calibrate-voice again or delete it") from None


def load_templates(cfg: AudioConfig) -> VowelTemplates:
    """The user's calibrated profile when it exists, else the shipped default templates."""
    profile = Path(cfg.voice_profile).expanduser() if cfg.voice_profile else None
    if profile is not None and profile.is_file():
        log.info("vowel templates: using the calibrated voice profile %s", profile)
        return VowelTemplates.load(profile)
    return VowelTemplates.load(resolve_path(cfg.templates))
