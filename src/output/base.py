"""The output interface and its registry.

An output receives rendered frames in order from its own thread (see
`OutputFanout`), so a slow output never slows the pipeline or the others.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from src.audio.pcm import PcmSource
from src.core.config import AppConfig
from src.core.errors import OutputError
from src.core.frames import RenderedFrame
from src.core.registry import Registry
from src.core.runtime.metrics import PipelineMetrics

log = logging.getLogger(__name__)


@dataclass
class PipelineControls:
    """What an output (a window's keys, a web page) may ask of the running pipeline."""

    stop_event: threading.Event = field(default_factory=threading.Event)
    metrics: PipelineMetrics | None = None  # the running pipeline's metrics (for /metrics pages, overlays)
    ready: Callable[[], bool] = lambda: False  # models loaded and a first frame produced
    reset_neutral: Callable[[], None] = lambda: None
    toggle_motion_mode: Callable[[], str] = lambda: "relative"
    retry_model: Callable[[], bool] = lambda: True  # try a neural model again after a fallback
    # Show an expression (name, intensity 0-1, hold seconds or None); raises UnknownExpressionError for a bad
    # name, RuntimeError when the animator has none (only meshwarp has them).
    set_expression: Callable[[str, float, float | None], None] = lambda name, intensity, hold_s: None

    def request_stop(self) -> None:
        self.stop_event.set()


class Output(ABC):
    """Somewhere rendered frames go: a file, a window, a virtual camera, a browser."""

    name: str = "output"
    #: True if the output runs in real time and should get the newest frame only
    #: (a slow viewer skips frames); False if it must receive every frame (a file).
    realtime: bool = True
    #: True if the output carries the driving audio too (`attach_audio`): a file, a browser page.
    accepts_audio: bool = False

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None:
        """Acquire the device/file/port. Raise OutputError (a user error) if impossible."""

    @abstractmethod
    def write(self, frame: RenderedFrame) -> None:
        """Deliver one frame."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release everything; called exactly once, even after a failed write."""

    def bind_controls(self, controls: PipelineControls) -> None:  # noqa: B027 - optional hook
        """Outputs with user input (a window) get the pipeline's controls here."""

    def attach_audio(self, source: PcmSource) -> None:
        """Carry `source`'s audio beside the frames; only outputs with `accepts_audio` implement it."""
        raise NotImplementedError(f"output {self.name} does not carry audio")


OutputFactory = Callable[[str | None, AppConfig], Output]

OUTPUTS: Registry[Output] = Registry("output", "--output")


def parse_output_spec(spec: str) -> tuple[str, str | None]:
    """'file:out.mp4' -> ('file', 'out.mp4'); 'window' -> ('window', None)."""
    name, sep, arg = spec.partition(":")
    name = name.strip().lower()
    if not name:
        raise OutputError(f"--output {spec!r}: empty output name; use one of {', '.join(OUTPUTS.names())}")
    return name, (arg if sep else None)


def create_output(spec: str, config: AppConfig) -> Output:
    name, arg = parse_output_spec(spec)
    factory = OUTPUTS.get(name)
    return factory(arg, config)
