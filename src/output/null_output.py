"""An output that discards frames (benchmarks) while counting them."""

from __future__ import annotations

from src.core.config import AppConfig
from src.core.frames import RenderedFrame
from src.output.base import OUTPUTS, Output


class NullOutput(Output):
    name = "null"
    realtime = False  # takes every frame, so benchmarks see the pipeline's own drops only

    def __init__(self, arg: str | None = None, config: AppConfig | None = None) -> None:
        self.frames = 0

    def open(self, width: int, height: int, fps: float) -> None:
        self.frames = 0

    def write(self, frame: RenderedFrame) -> None:
        self.frames += 1


OUTPUTS.register("null", NullOutput)
