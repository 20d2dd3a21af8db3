"""`POST /api/sessions/{id}/expression` on an animator without expressions: a 409 naming the fix, never a 500.
(The route's contract on meshwarp is `test_expression_route` in tests/serve/test_serve_api.py, run on both engines.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from src.animation.base import AnimationInput, BaseAnimationModel
from src.core.config import AppConfig
from src.serve.engine import LocalEngine
from tests.support.serve import ServeServer, create, http


class PlainAnimator(BaseAnimationModel):
    """An animator with no expressions (like the neural ones): a flat frame per input."""

    name = "plain"

    def __init__(self, config: AppConfig) -> None:
        super().__init__(config)
        self.output_size = 64

    def load_model(self) -> None:
        self.loaded = True

    def preprocess_source_image(self, image_path: str | Path) -> None:
        pass

    def animate(self, inp: AnimationInput) -> np.ndarray:
        return np.full((64, 64, 3), 128, np.uint8)


def test_animator_without_expressions_is_409(make_config: Any) -> None:
    cfg = make_config("serve.session_cpu_cores=0.01")

    def factory(config: AppConfig, name: str | None, source: str, *, live: bool) -> BaseAnimationModel:
        anim = PlainAnimator(config)
        anim.load_model()
        return anim

    with ServeServer(cfg, LocalEngine(cfg, animator_factory=factory)) as srv:
        status, _, body = create(srv.base, driver="none")
        assert status == 201, body
        base = f"{srv.base}/api/sessions/{body['id']}"
        status, _, err = http("POST", f"{base}/expression", {"name": "smile", "intensity": 0.5}, token=body["token"])
        assert status == 409 and "no expressions" in err["error"] and "meshwarp" in err["error"], err
        status, _, info = http("GET", base, token=body["token"])
        assert status == 200 and info["expression"] is None
        status, _, err = http("POST", f"{base}/expression", {"name": "smirk"}, token=body["token"])
        assert status == 400 and "smile" in err["error"]
