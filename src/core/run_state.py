"""What a person may change while a stream runs (the window's keys, later the studio page).

The config is read once and never written while a job runs; these toggles start from it and live here.
Plain attribute writes: one writer (a key, a request), readers on the animate thread take each value whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from src.core.config import AppConfig

MotionMode = Literal["relative", "absolute"]
MouthOwner = Literal["audio", "webcam"]


@dataclass
class RunState:
    motion_mode: MotionMode = "relative"  # relative: motion against the driver's neutral face; absolute: its pose
    mouth_owner: MouthOwner = "audio"  # with a voice and a webcam both driving, who moves the mouth

    @classmethod
    def from_config(cls, config: AppConfig) -> RunState:
        return cls(motion_mode=config.animation.motion_mode, mouth_owner=config.animation.mouth_owner)

    def toggle_motion_mode(self) -> MotionMode:
        self.motion_mode = "absolute" if self.motion_mode == "relative" else "relative"
        return self.motion_mode
