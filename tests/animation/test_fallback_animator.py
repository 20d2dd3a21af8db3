"""FallbackAnimator: a neural animator that fails to load or throws keeps the stream going on meshwarp."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel
from src.animation.fallback import FallbackAnimator
from src.core.config import AppConfig
from src.core.errors import ModelError, SourceImageError
from src.core.frames import MotionState

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "assets" / "portrait.png"


class Solid(BaseAnimationModel):
    """A stand-in animator: a solid frame of one value; can fail on load or on given calls."""

    name = "solid"
    value = 200
    fail_load = False
    fail_calls: set[int] = set()

    def __init__(self, config: AppConfig) -> None:
        super().__init__(config)
        self.calls = 0

    def load_model(self) -> None:
        if self.fail_load:
            raise ModelError("model file x.onnx: not found; test")
        self.loaded = True

    def preprocess_source_image(self, image_path: str | Path) -> None:
        self.source = image_path

    def animate(self, inp: AnimationInput) -> np.ndarray:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise RuntimeError("CUDA out of memory (test double)")
        return np.full((self.output_size, self.output_size, 3), self.value, np.uint8)


class Flat(Solid):
    name = "flat"
    value = 50


def inp(i: int) -> AnimationInput:
    return AnimationInput(motion=MotionState(), capture_ts=float(i), index=i)


def test_runtime_failure_switches_once_and_retry_returns(caplog: pytest.LogCaptureFixture) -> None:
    class Flaky(Solid):
        fail_calls = {3}

    anim = FallbackAnimator(AppConfig(), primary=Flaky, fallback=Flat)
    anim.load_model()
    anim.preprocess_source_image("portrait.png")
    with caplog.at_level(logging.WARNING, logger="src.animation.fallback"):
        frames = [anim.animate(inp(i))[0, 0, 0] for i in range(6)]
    assert frames == [200, 200, 50, 50, 50, 50]  # the 3rd call threw: that frame and the rest come from the fallback
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CUDA out of memory" in warnings[0].getMessage()
    assert anim.active_name == "flat" and anim.fallback.source == "portrait.png"
    assert anim.retry() is True
    assert anim.active_name == "solid" and anim.fallback_reason is None
    assert anim.animate(inp(7))[0, 0, 0] == 200


def test_load_failure_falls_back_and_failed_retry_stays() -> None:
    class Broken(Solid):
        fail_load = True

    anim = FallbackAnimator(AppConfig(), primary=Broken, fallback=Flat)
    anim.load_model()
    anim.preprocess_source_image("p.png")
    assert "x.onnx" in anim.fallback_reason
    assert anim.animate_batch([inp(0), inp(1)])[1][0, 0, 0] == 50
    assert anim.retry() is False
    assert anim.active_name == "flat"


def test_bad_portrait_is_still_the_users_error() -> None:
    class BadSource(Solid):
        def preprocess_source_image(self, image_path: str | Path) -> None:
            raise SourceImageError("source image p.png: no face found; use a portrait")

    anim = FallbackAnimator(AppConfig(), primary=BadSource, fallback=Flat)
    anim.load_model()
    with pytest.raises(SourceImageError):
        anim.preprocess_source_image("p.png")


def test_liveportrait_without_models_streams_on_meshwarp(tmp_path: Path) -> None:
    import src.animation.liveportrait  # noqa: F401 - registers "liveportrait"

    if "meshwarp" not in ANIMATORS:
        pytest.skip("meshwarp animator not registered in this checkout")
    cfg = AppConfig()
    cfg.cache.dir = str(tmp_path / "cache")
    cfg.animation.liveportrait.model_dir = str(tmp_path / "no_models")
    anim = FallbackAnimator(cfg, primary="liveportrait")
    anim.load_model()
    anim.preprocess_source_image(PORTRAIT)
    assert anim.active_name == "meshwarp" and "no_models" in anim.fallback_reason
    out = anim.animate(inp(0))
    assert out.shape == (512, 512, 3) and out.dtype == np.uint8 and out.std() > 10
