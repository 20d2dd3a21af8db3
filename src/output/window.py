"""A preview window (OpenCV HighGUI). Keys: q quit, n re-take neutral, r relative/absolute, m retry the model,
1-4 smile, surprise, anger, sadness (0 none)."""

from __future__ import annotations

import logging
import os
import sys

import cv2

from src.core.config import AppConfig
from src.core.errors import OutputError
from src.core.expressions import KEYS as EXPRESSION_KEYS
from src.core.frames import RenderedFrame
from src.output.base import OUTPUTS, Output, PipelineControls

log = logging.getLogger(__name__)


class WindowOutput(Output):
    name = "window"
    realtime = True

    def __init__(self, arg: str | None = None, config: AppConfig | None = None) -> None:
        self.title = config.output.window.title if config else "puppetcam"
        self.controls = PipelineControls()
        self._open = False
        self.frames = 0

    def bind_controls(self, controls: PipelineControls) -> None:
        self.controls = controls

    def open(self, width: int, height: int, fps: float) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise OutputError("--output window: no display (DISPLAY is not set); use --output file:out.mp4 or run on a desktop")
        self._size = (width, height)
        # The window itself is created by the first write, on the output's own thread:
        # every HighGUI call must come from the same thread.

    def write(self, frame: RenderedFrame) -> None:
        if not self._open:
            cv2.namedWindow(self.title, cv2.WINDOW_AUTOSIZE)
            self._open = True
        cv2.imshow(self.title, frame.image)
        self.frames += 1
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            log.info("window: quit")
            self.controls.request_stop()
        elif key == ord("n"):
            self.controls.reset_neutral()
            log.info("window: neutral face will be re-taken")
        elif key == ord("r"):
            mode = self.controls.toggle_motion_mode()
            log.info("window: motion mode is now %s", mode)
        elif key == ord("m"):
            ok = self.controls.retry_model()
            log.info("window: model retry %s", "succeeded" if ok else "failed (still on the fallback)")
        elif key in EXPRESSION_KEYS or key == ord("0"):
            name = EXPRESSION_KEYS.get(key, "none")
            try:
                self.controls.set_expression(name, 0.8, None)
                log.info("window: expression %s", name)
            except (RuntimeError, ValueError) as exc:
                log.info("window: %s", exc)

    def close(self) -> None:
        if self._open:
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
            self._open = False


OUTPUTS.register("window", WindowOutput)
