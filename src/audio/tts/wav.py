"""Write an utterance's PCM as a 16-bit WAV file (what the render muxes and the live audio path reads)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def write_wav(path: str | Path, pcm: np.ndarray, sample_rate_hz: int) -> Path:
    path = Path(path)
    data = (np.clip(np.asarray(pcm, np.float32), -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate_hz))
        w.writeframes(data.tobytes())
    return path
