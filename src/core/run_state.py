"""What a person may change while a stream runs (the window's keys, the studio page's controls).

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
    pose_gain: float = 1.0  # head rotation and translation, x the driver's
    expression_gain: float = 1.0  # expression offsets, x the driver's

    @classmethod
    def from_config(cls, config: AppConfig) -> RunState:
        anim = config.animation
        return cls(motion_mode=anim.motion_mode, mouth_owner=anim.mouth_owner, pose_gain=anim.meshwarp.pose_gain,
                   expression_gain=anim.meshwarp.expression_gain)

    def toggle_motion_mode(self) -> MotionMode:
        self.motion_mode = "absolute" if self.motion_mode == "relative" else "relative"
        return self.motion_mode
