"""Idle motion: what the avatar does with no driver, so it never freezes.

Blinks at random intervals (2 to 6 s by default), breathes (a slow vertical
rise and scale), and sways slightly (sums of slow sines at incommensurate
periods, so the motion never visibly repeats).
"""

from __future__ import annotations

import math
import random

import numpy as np

from src.core.config import IdleConfig
from src.core.face_mesh import euler_to_rotation
from src.core.frames import MotionState

SWAY_PERIODS_S = ((7.3, 11.9), (9.1, 13.7), (8.3, 15.1))  # yaw, pitch, roll: two sines each


class IdleMotion:
    def __init__(self, cfg: IdleConfig | None = None, start_time: float = 0.0) -> None:
        self.cfg = cfg or IdleConfig()
        self._rng = random.Random(self.cfg.seed)
        self._phase = [self._rng.uniform(0, 2 * math.pi) for _ in range(6)]
        self._t0 = start_time
        self._next_blink = start_time + self._rng.uniform(*self.cfg.blink_interval_s) * 0.5
        self._blink_start: float | None = None
        self.blinks = 0

    def _blink(self, t: float) -> float:
        """Eye openness in [0, 1] at time t (1 = open)."""
        dur = self.cfg.blink_duration_ms / 1000.0
        if self._blink_start is None and t >= self._next_blink:
            self._blink_start = t
            self.blinks += 1
        if self._blink_start is None:
            return 1.0
        u = (t - self._blink_start) / dur
        if u >= 1.0:
            self._blink_start = None
            self._next_blink = t + self._rng.uniform(*self.cfg.blink_interval_s)
            return 1.0
        # Lids close quickly (first 40 %) and open more slowly.
        return 1.0 - (math.sin(math.pi * u / 0.8) if u < 0.4 else math.cos(math.pi / 2 * (u - 0.4) / 0.6))

    def state(self, t: float) -> MotionState:
        cfg = self.cfg
        tt = t - self._t0
        angles = []
        for i, (p1, p2) in enumerate(SWAY_PERIODS_S):
            a = 0.6 * math.sin(2 * math.pi * tt / p1 + self._phase[2 * i]) + 0.4 * math.sin(2 * math.pi * tt / p2 + self._phase[2 * i + 1])
            angles.append(a * cfg.sway_deg * (0.6 if i == 2 else 1.0))
        breath = math.sin(2 * math.pi * tt / cfg.breath_period_s)
        eye = self._blink(t)
        return MotionState(
            rotation=euler_to_rotation(angles[0], angles[1] + 0.8 * cfg.sway_deg * 0.2 * breath, angles[2]),
            translation=np.array([0.0, -cfg.breath_amplitude * 6.0 * breath], np.float32),
            scale=1.0 + cfg.breath_amplitude * breath,
            eye_open=(eye, eye),
            brow_raise=(0.0, 0.0),
            face_present=False,
            param_weight=1.0,
            mouth_weight=1.0,
        )
