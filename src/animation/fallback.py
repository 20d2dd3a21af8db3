"""A neural animator that falls back to a weights-free one (meshwarp) instead of ending the stream.

`FallbackAnimator(config, primary="liveportrait")` behaves as the primary. When
the primary fails to load or throws while animating, the stream continues on
the fallback (prepared on the same source), the reason is logged once as a
warning, and the primary is not tried again until `retry()` is called.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from src.animation.base import ANIMATORS, AnimationInput, BaseAnimationModel, create_animator
from src.core.config import AppConfig
from src.core.errors import UserError

log = logging.getLogger(__name__)

Factory = Callable[[AppConfig], BaseAnimationModel]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class FallbackAnimator(BaseAnimationModel):
    """Wraps `primary`; on failure switches to `fallback` (names in ANIMATORS, or factories)."""

    name = "fallback"

    def __init__(self, config: AppConfig, primary: str | Factory, fallback: str | Factory = "meshwarp",
                 strict_load: bool = False) -> None:
        """`strict_load`: a user error while loading (missing model files, wrong tensors) is raised instead
        of falling back (for offline jobs, where a different animator than asked for is no result)."""
        super().__init__(config)
        self.strict_load = strict_load
        self._primary_factory = ANIMATORS.get(primary) if isinstance(primary, str) else primary
        self._fallback_factory = ANIMATORS.get(fallback) if isinstance(fallback, str) else fallback
        self.primary: BaseAnimationModel | None = None
        self.fallback: BaseAnimationModel | None = None
        self.fallback_reason: str | None = None  # why the fallback is active (None while the primary runs)
        self.failures = 0
        self._source: str | Path | None = None
        self._fallback_ready = False

    @property
    def active(self) -> BaseAnimationModel | None:
        return self.fallback if self.fallback_reason is not None else self.primary

    @property
    def active_name(self) -> str:
        a = self.active
        return a.name if a is not None else "none"

    @property
    def needs_audio_features(self) -> bool:  # type: ignore[override]  # read-only property over the base's class attribute
        return bool(getattr(self.primary or self._primary_factory, "needs_audio_features", False))

    def reset_driver_reference(self) -> None:
        for a in (self.primary, self.fallback):
            if a is not None:
                a.reset_driver_reference()

    @property
    def batched(self) -> bool:  # type: ignore[override]  # read-only property over the base's class attribute
        a = self.active
        return bool(a is not None and a.batched)

    def _switch(self, exc: BaseException, when: str) -> None:
        self.failures += 1
        self.fallback_reason = f"{when}: {_reason(exc)}"
        log.warning("animator %s failed (%s); continuing on %s until retried", self._primary_name(), self.fallback_reason,
                    self._fallback_name())  # fmt: skip

    def _primary_name(self) -> str:
        return str(getattr(self.primary, "name", None) or getattr(self._primary_factory, "name", "primary"))

    def _fallback_name(self) -> str:
        return str(getattr(self.fallback, "name", None) or getattr(self._fallback_factory, "name", "fallback"))

    def _ensure_fallback(self) -> BaseAnimationModel:
        if self.fallback is None:
            self.fallback = self._fallback_factory(self.config)
            self.fallback.load_model()
        if not self._fallback_ready and self._source is not None:
            self.fallback.preprocess_source_image(self._source)
            self._fallback_ready = True
        return self.fallback

    def load_model(self) -> None:
        try:
            self.primary = self._primary_factory(self.config)
            self.primary.on_timing = self.on_timing
            self.primary.load_model()
        except UserError as exc:
            if self.strict_load:
                raise  # offline jobs: the user's setup (missing files, wrong tensors) must be fixed, exit 2
            self._switch(exc, "load")
            self._ensure_fallback()
        except Exception as exc:  # noqa: BLE001 - any other load failure falls back
            self._switch(exc, "load")
            self._ensure_fallback()
        self.loaded = True

    def preprocess_source_image(self, image_path: str | Path) -> None:
        self._source = image_path
        self._fallback_ready = False
        if self.fallback_reason is None and self.primary is not None:
            try:
                self.primary.preprocess_source_image(image_path)
                return
            except Exception as exc:
                from src.core.errors import SourceImageError

                if isinstance(exc, SourceImageError):
                    raise  # the portrait itself is bad: no animator can use it
                self._switch(exc, "source preparation")
        self._ensure_fallback()

    def animate(self, inp: AnimationInput) -> np.ndarray:
        return self.animate_batch([inp])[0]

    def animate_batch(self, inputs: list[AnimationInput]) -> list[np.ndarray]:
        if self.fallback_reason is None and self.primary is not None:
            try:
                return self.primary.animate_batch(inputs)
            except Exception as exc:  # noqa: BLE001 - a run-time failure must not end the stream
                self._switch(exc, "animate")
        return self._ensure_fallback().animate_batch(inputs)

    def retry(self) -> bool:
        """Try the primary again (reload, re-prepare the source). True when it is active again."""
        if self.fallback_reason is None:
            return True
        try:
            primary = self._primary_factory(self.config)
            primary.load_model()
            if self._source is not None:
                primary.preprocess_source_image(self._source)
        except Exception as exc:  # noqa: BLE001 - any failure of the retried model keeps the fallback
            log.warning("retry of %s failed (%s); staying on %s", self._primary_name(), _reason(exc), self._fallback_name())
            return False
        if self.primary is not None:
            self.primary.unload_model()
        self.primary = primary
        self.fallback_reason = None
        log.info("animator %s is active again", primary.name)
        return True

    def source_preview(self) -> np.ndarray | None:
        a = self.active
        return a.source_preview() if a is not None else None

    def unload_model(self) -> None:
        for a in (self.primary, self.fallback):
            if a is not None:
                a.unload_model()
        self.loaded = False


def build_animator(config: AppConfig, name: str | None, source: str, *, live: bool) -> BaseAnimationModel:
    """Create, load and prepare the animator named `name` (default: `animation.model`) for `source`.

    Neural animators are wrapped in a FallbackAnimator: if they fail at run time the stream goes on
    with meshwarp. Live, a model that cannot even load also falls back (the warning names why);
    offline (`render`), a user error in the model setup ends the job with exit 2 instead.
    """
    name = name or config.animation.model
    ANIMATORS.get(name)  # an unknown name is a user error listing the known ones
    animator: BaseAnimationModel
    if name == "meshwarp":
        animator = create_animator(name, config)
    else:
        animator = FallbackAnimator(config, primary=name, strict_load=not live)
    animator.load_model()
    animator.preprocess_source_image(source)
    return animator
