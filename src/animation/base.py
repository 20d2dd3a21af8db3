"""The animator interface and its registry.

An animator turns a source portrait plus per-frame driving (motion from the
webcam or idle, mouth from audio) into output frames. Lifecycle:
`load_model()` -> `preprocess_source_image()` -> `animate()`/`animate_batch()`
-> `unload_model()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.core.config import AppConfig
from src.core.frames import FaceObservation, MotionState, MouthShape, VideoFrame
from src.core.registry import Registry
from src.core.run_state import RunState


@dataclass(slots=True)
class AnimationInput:
    """Everything an animator may use for one output frame."""

    motion: MotionState  # head pose, eyes, brows, expression (driver or idle), mouth merged in
    capture_ts: float
    index: int
    driver_frame: VideoFrame | None = None  # the raw driver image (neural animators crop it)
    driver_face: FaceObservation | None = None
    audio_mouth: MouthShape | None = None  # the audio-driven mouth, when audio drives it
    # Per-frame audio for audio-driven models: the frame's Wav2Lip-style log-mel window [1, 80, 16]
    # (200 ms, src.animation.lipsync_unet.mel_windows); None when there is no audio.
    audio_features: np.ndarray | None = None
    media_time_s: float | None = None
    controls: RunState | None = None  # the run-time toggles (motion mode, gains); None: the config's values
    extras: dict[str, Any] = field(default_factory=dict)


class BaseAnimationModel(ABC):
    """Subclasses set `name` and implement the abstract methods."""

    name: str = "base"
    #: True when animate_batch() is faster per frame than animate() (batched inference).
    batched: bool = False
    #: True when the model reads AnimationInput.audio_features (the pipeline then computes them).
    needs_audio_features: bool = False
    #: Set by the pipeline: called with (model name, milliseconds) after each inference call.
    on_timing: Callable[[str, float], None] | None = None

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.output_size = config.animation.output_size_px
        self.loaded = False

    @abstractmethod
    def load_model(self) -> None:
        """Load weights / sessions. Raise ModelError (a user error) if files are missing or wrong."""

    @abstractmethod
    def preprocess_source_image(self, image_path: str | Path) -> None:
        """Compute (or load from the avatar cache) everything specific to the source portrait."""

    @abstractmethod
    def animate(self, inp: AnimationInput) -> np.ndarray:
        """One output frame (output_size x output_size x 3, uint8, BGR)."""

    def animate_batch(self, inputs: list[AnimationInput]) -> list[np.ndarray]:
        """Several frames in order; models with batched inference override this."""
        return [self.animate(inp) for inp in inputs]

    def unload_model(self) -> None:
        """Release sessions and memory."""
        self.loaded = False

    def reset_driver_reference(self) -> None:  # noqa: B027 - optional hook
        """Forget the driver's reference pose (the window's `n` key); models with their own do it here."""

    def retry(self) -> bool:
        """Try a failed model again (see FallbackAnimator); True when the intended model is active."""
        return True

    def source_preview(self) -> np.ndarray | None:
        """The prepared source frame at output size (what an idle, neutral face looks like)."""
        return None


AnimatorFactory = Callable[[AppConfig], BaseAnimationModel]

ANIMATORS: Registry[BaseAnimationModel] = Registry("animator", "--animator")


def create_animator(name: str, config: AppConfig) -> BaseAnimationModel:
    return ANIMATORS.get(name)(config)
