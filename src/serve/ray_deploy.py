"""The batched model stage on Ray Serve (`serve --engine ray` with `lipsync-unet` or `liveportrait`).

`ModelStage` runs one ONNX model for many callers' rows as one batch (plain code, no Ray: the
same concatenate / run / split as the local engine's `BatchWorker`). `ModelDeployment` is the thin
Ray Serve shell around it: `@serve.batch` joins the calls that arrive within `batch_wait_timeout_s`
(`pipeline.latency_budget_ms` / 1000) up to `max_batch_size` (the auto-tuned `pipeline.batch_size`,
else `serve.max_sessions`); replicas ask for `serve.ray.model_num_gpus` GPUs, else one CPU.
One Serve application per model file (`app_name`); a session actor swaps its animator's ONNX
models for `ServeModel`s that call it through a deployment handle. `meshwarp` needs none.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter
from typing import Any

import numpy as np

from src.animation.onnx_session import OnnxModel
from src.core.config import AppConfig
from src.serve.batching import ModelBatchers

log = logging.getLogger(__name__)

APP_PREFIX = "puppetcam-model-"
_deploy_lock = threading.Lock()


def app_name(model: OnnxModel) -> str:
    digest = hashlib.sha1(f"{model.path}|{model.name}".encode()).hexdigest()[:10]
    return f"{APP_PREFIX}{model.name}-{digest}"


def _signature(feeds: dict[str, np.ndarray]) -> tuple[Any, ...]:
    return tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in feeds.items()))


class ModelStage:
    """One model, many callers: rows of the same shapes run as one batch (see the module doc)."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.sizes: Counter[int] = Counter()  # rows per run -> runs

    def run_many(self, calls: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray] | BaseException]:
        results: list[dict[str, np.ndarray] | BaseException] = [RuntimeError("not run")] * len(calls)
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, feeds in enumerate(calls):
            groups.setdefault(_signature(feeds), []).append(i)
        for idx in groups.values():
            rows = [int(next(iter(calls[i].values())).shape[0]) for i in idx]
            try:
                feeds = {k: np.concatenate([calls[i][k] for i in idx]) for k in calls[idx[0]]}
                out = self.model.run(feeds)
                self.sizes[sum(rows)] += 1
                start = 0
                for i, n in zip(idx, rows, strict=True):
                    results[i] = {k: v[start : start + n] for k, v in out.items()}
                    start += n
            except Exception as exc:  # noqa: BLE001 - each caller gets the error
                for i in idx:
                    results[i] = exc
        return results


def _deployment(config: AppConfig) -> Any:
    from ray import serve

    pc, rc = config.pipeline, config.serve.ray
    max_batch = pc.batch_size if pc.batch_size > 1 else config.serve.max_sessions
    wait_s = pc.latency_budget_ms / 1000.0
    actor_options: dict[str, Any] = {"num_gpus": rc.model_num_gpus} if rc.model_num_gpus > 0 else {"num_cpus": 1}

    @serve.deployment(num_replicas=rc.model_replicas, ray_actor_options=actor_options, max_ongoing_requests=256)
    class ModelDeployment:
        def __init__(self, path: str, spec: Any, cfg: Any, name: str) -> None:
            self.stage = ModelStage(OnnxModel(path, spec, cfg, name=name))

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def run(self, calls: list[dict[str, np.ndarray]]) -> list[Any]:
            return self.stage.run_many(calls)  # an exception in the list is raised to its caller alone

        def sizes(self) -> dict[int, int]:
            return dict(self.stage.sizes)

    return ModelDeployment


def deploy(model: OnnxModel, config: AppConfig) -> Any:
    """The deployment handle for `model`'s application, deploying it first if it is not running."""
    from ray import serve

    name = app_name(model)
    with _deploy_lock:
        try:
            return serve.get_app_handle(name)
        except Exception:  # noqa: BLE001 - not deployed yet
            pass
        serve.start(proxy_location="Disabled")
        app = _deployment(config).options(name=f"model-{model.name}").bind(str(model.path), model.spec, model.cfg, model.name)
        log.info("deploying %s on Ray Serve", name)
        return serve.run(app, name=name, route_prefix=None, blocking=False)


class ServeModel:
    """Stands in for an `OnnxModel` inside a session's animator: `run` goes through the Serve deployment."""

    def __init__(self, model: OnnxModel, handle: Any) -> None:
        self._model = model
        self._handle = handle

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self._handle.run.remote({k: np.asarray(v) for k, v in feeds.items()}).result()
        if isinstance(result, BaseException):
            raise result
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class _ServeSharing(ModelBatchers):
    """The local engine's model walk (`ModelBatchers.share`), handing out `ServeModel`s instead."""

    def __init__(self, config: AppConfig) -> None:
        super().__init__(1, 0.0)
        self.config = config

    def _shared(self, model: OnnxModel) -> Any:
        handle = deploy(model, self.config)
        shared = ServeModel(model, handle)
        return shared


def share_through_serve(animator: Any, config: AppConfig) -> int:
    """Swap the animator's ONNX models for Serve-backed ones; returns how many were swapped."""
    return _ServeSharing(config).share(animator)


def deployment_batch_sizes() -> dict[str, dict[int, int]]:
    """Rows per run -> runs, per model deployment (one replica's count), for /metrics."""
    from ray import serve

    out: dict[str, dict[int, int]] = {}
    try:
        apps = serve.status().applications
    except Exception:  # noqa: BLE001 - Serve not started: no model stage
        return out
    for name in apps:
        if name.startswith(APP_PREFIX):
            try:
                sizes = serve.get_app_handle(name).sizes.remote().result(timeout_s=5)
                out[name[len(APP_PREFIX):].rsplit("-", 1)[0]] = {int(k): int(v) for k, v in sizes.items()}
            except Exception as exc:  # noqa: BLE001 - a replica moving: report the others
                log.debug("batch sizes of %s: %s", name, exc)
    return out
