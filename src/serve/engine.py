"""Where sessions run. The server keeps sessions only through an `Engine`: create, get, list, delete.

`LocalEngine` (`--engine local`, the default) runs each `Session` in this process. Another
engine (e.g. Ray, running the same `Session` inside an actor) registers in `ENGINES` and
returns handles with the same methods (`SessionHandle`); the HTTP layer cannot tell them apart.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np

from src.core.config import AppConfig
from src.core.registry import Registry
from src.serve.batching import ModelBatchers
from src.serve.session import AnimatorFactory, Session, SessionSpec, default_animator_factory

log = logging.getLogger(__name__)


class SessionHandle(Protocol):
    """What the server may ask of a session (plain calls, JSON-ready answers)."""

    id: str

    def offer(self, sdp: str, role: Literal["studio", "viewer"], remote: str = "?") -> tuple[int, dict[str, Any]]: ...
    def say(self, text: str, voice: str) -> int: ...
    def interrupt(self) -> None: ...
    def push_pcm(self, samples_48k: np.ndarray) -> None: ...
    def end_pcm(self) -> None: ...
    def set_controls(self, *, reset_neutral: bool = False, motion_mode: str | None = None, mouth_owner: str | None = None,
                     pose_gain: float | None = None, expression_gain: float | None = None) -> dict[str, Any]: ...
    def set_expression(self, name: str, intensity: float = 0.8, hold_s: float | None = None) -> dict[str, Any]: ...
    def set_background(self, spec: str) -> dict[str, Any]: ...
    def info(self) -> dict[str, Any]: ...
    def failure(self) -> str | None: ...
    def idle_s(self) -> float: ...


class Engine(Protocol):
    name: str

    def create(self, spec: SessionSpec) -> SessionHandle:
        """Prepare and start a session (slow: call off the event loop). Raises UserError for bad input."""
        ...

    def get(self, session_id: str) -> SessionHandle | None: ...
    def list(self) -> Sequence[SessionHandle]: ...
    def delete(self, session_id: str, reason: str | None = None) -> bool: ...
    def close(self) -> None: ...


class LocalEngine:
    """Sessions in this process (see the module doc)."""

    name = "local"

    def __init__(self, config: AppConfig, animator_factory: AnimatorFactory = default_animator_factory) -> None:
        self.config = config
        self.animator_factory = animator_factory
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        pc, sc = config.pipeline, config.serve
        wait_ms = sc.batch_wait_ms if sc.batch_wait_ms is not None else pc.latency_budget_ms / 4.0
        self.batchers = ModelBatchers(pc.batch_size if pc.batch_size > 1 else sc.max_sessions, wait_ms / 1000.0)

    def create(self, spec: SessionSpec) -> Session:
        session_id = secrets.token_hex(6)
        session = Session(session_id, spec, self.config, self.animator_factory)
        try:
            session.prepare()
            if getattr(session.animator, "batched", False):  # neural: one model worker for every session
                session.shared_models = self.batchers.share(session.animator)
            session.start()
        except BaseException:
            session.stop("failed to start")
            raise
        with self._lock:
            self._sessions[session_id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(session_id)

    def list(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def delete(self, session_id: str, reason: str | None = None) -> bool:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        session.stop(reason)
        from src.output.webrtc.server import release_memory

        release_memory()
        return True

    def batch_sizes(self) -> dict[str, dict[int, int]]:
        """Rows per cross-session model run -> runs, per model (for /metrics)."""
        return self.batchers.batch_sizes()

    def close(self) -> None:
        for s in self.list():
            self.delete(s.id, "server shutdown")
        self.batchers.close()


ENGINES: Registry[Any] = Registry("session engine", "--engine")
ENGINES.register("local", LocalEngine)
ENGINES.register_lazy("ray", "src.serve.ray_engine")  # Ray actors (requirements-ray.txt)
