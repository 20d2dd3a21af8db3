"""`serve --engine ray`: each session runs in a Ray actor that wraps the same `Session` as the local engine.

The front server (the HTTP layer, tokens, admission) stays in one process; `RayEngine` places
one `SessionActor` per session on the cluster, asking for `serve.ray.session_num_cpus` CPUs so
Ray spreads sessions by resources. Handles (`RaySessionHandle`) have the `SessionHandle` methods;
each call goes to the actor (streamed PCM is fire-and-forget, in order). Signalling is relayed:
the SDP offer travels to the actor, whose aiortc answers with its own node's candidates, so the
media flow browser <-> the session's node directly and are encoded once, there.

Faults: the actor is created with `max_restarts`; if its process or node dies Ray re-creates it on
a live node from the same constructor arguments (the spec, the portrait bytes and the id), so the
session keeps its id and, since the front server holds them, its tokens. Pages reconnect by themselves.
Admission: a session that would not find `session_num_cpus` free CPUs in the cluster gets 503.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from src.core.config import AppConfig
from src.core.errors import UserError
from src.serve.admission import Admission, Refusal
from src.serve.session import AnimatorFactory, Session, SessionError, SessionSpec, default_animator_factory

log = logging.getLogger(__name__)

INSTALL_HINT = "--engine ray: Ray is not installed; install it with: pip install -r requirements-ray.txt"
CALL_TIMEOUT_S = 10.0  # a call to a session actor (longer while it is being re-created elsewhere)
CREATE_TIMEOUT_S = 180.0  # placing the actor, loading the animator, preparing the portrait
REPO_ROOT = str(Path(__file__).resolve().parents[2])
# Node loss is noticed by the GCS health check; these make a dead node known in about 1.5 s (defaults: 15 s+).
FAST_FAILURE_SYSTEM_CONFIG: dict[str, Any] = {
    "health_check_initial_delay_ms": 1000,
    "health_check_period_ms": 500,
    "health_check_timeout_ms": 500,
    "health_check_failure_threshold": 3,
}


def use_loopback() -> None:
    """Keep Ray on 127.0.0.1: by default it turns a loopback address into the machine's routed one
    (which a loopback-only GCS does not listen on). Children (raylets, workers) inherit the setting."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


def is_loopback_address(address: str | None) -> bool:
    return address is None or address.rsplit(":", 1)[0].strip("[]") in ("127.0.0.1", "localhost", "::1")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


# -- errors across the process boundary ----------------------------------------------------------

def encode_error(exc: BaseException) -> tuple[str, str, str, int]:
    return type(exc).__module__, type(exc).__qualname__, str(exc), int(getattr(exc, "status", 0) or 0)


def decode_error(enc: tuple[str, str, str, int]) -> BaseException:
    """The session's exception again on this side (SessionError keeps its HTTP status)."""
    module, name, message, status = enc
    if name == "SessionError":
        return SessionError(message, status or 400)
    try:
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(message)
    except Exception:  # noqa: BLE001 - an exception we cannot rebuild becomes a plain one below
        pass
    return RuntimeError(f"{name}: {message}")


# -- the actor ------------------------------------------------------------------------------------

def _process_started() -> float:
    """Wall time this process started (Linux: from /proc; elsewhere: now, so the figure reads 0)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return time.time()


class SessionActor:
    """The thin shell run by Ray around one `Session` (see the module doc). Made remote in `RayEngine`."""

    def __init__(self, session_id: str, spec: SessionSpec, portrait_ref: list[Any], suffix: str, config: AppConfig,
                 animator_factory: AnimatorFactory = default_animator_factory,
                 background_ref: list[Any] | None = None) -> None:
        t_init = time.time()
        ray = import_ray()
        # the portrait bytes live in the object store, owned (kept alive) by the front server's handle,
        # so a re-created actor reads them again; nested in a list so Ray passes the reference, not the value
        portrait: bytes | None = ray.get(portrait_ref[0]) if portrait_ref else None
        ctx = ray.get_runtime_context()
        self.node_id: str = ctx.get_node_id()
        self.restarted = bool(ctx.was_current_actor_reconstructed)
        self.error: tuple[str, str, str, int] | None = None
        self.startup_s: dict[str, float] = {}
        self._tmps: list[str] = []
        front_path = spec.portrait
        if portrait is not None:  # this node may not share a disk with the front server
            spec = dataclasses.replace(spec, portrait=self._local_copy(session_id, portrait, suffix))
        if background_ref and spec.background:  # the uploaded background picture, likewise
            picture: bytes = ray.get(background_ref[0])
            local = self._local_copy(session_id, picture, Path(spec.background[6:]).suffix or ".png")
            spec = dataclasses.replace(spec, background=f"image:{local}")
        self.session = Session(session_id, spec, config, animator_factory)
        t_prepare = time.time()
        try:
            self.session.prepare()
            t_start = time.time()
            if getattr(self.session.animator, "batched", False):
                from src.serve.ray_deploy import share_through_serve

                self.session.shared_models = share_through_serve(self.session.animator, config)
            self.session.start()
            # where a (re-)created actor's start-up time goes: its process (interpreter, ray, this module's imports)
            # before __init__, then the session's preparing and starting
            self.startup_s = {"process": round(t_init - _process_started(), 3), "portrait": round(t_prepare - t_init, 3),
                              "prepare": round(t_start - t_prepare, 3), "start": round(time.time() - t_start, 3)}
        except Exception as exc:  # noqa: BLE001 - reported by ready(), the engine turns it into an HTTP error
            module, name, message, status = encode_error(exc)
            if self._tmps:  # name the front server's file, as the local engine does
                message = message.replace(self._tmps[0], front_path)
            self.error = (module, name, message, status)
            self.session.stop("failed to start")
        if self.restarted:
            log.warning("session %s re-created on node %s", session_id, self.node_id[:8])

    def _local_copy(self, session_id: str, data: bytes, suffix: str) -> str:
        fd, path = tempfile.mkstemp(prefix=f"puppetcam-{session_id}-", suffix=suffix)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        self._tmps.append(path)
        return path

    def ready(self) -> tuple[str, tuple[str, str, str, int] | None]:
        return self.node_id, self.error

    def where(self) -> tuple[str, bool, int]:
        """(node id, re-created after a loss, this process id)."""
        return self.node_id, self.restarted, os.getpid()

    def startup(self) -> dict[str, float]:
        """Seconds this actor's start took: process (to __init__), portrait, prepare, start."""
        return self.startup_s

    def call(self, method: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        try:
            return True, getattr(self.session, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the front server re-raises it (see decode_error)
            return False, encode_error(exc)

    def push_pcm(self, samples_48k: np.ndarray) -> None:
        self.session.push_pcm(samples_48k)

    def end_pcm(self) -> None:
        self.session.end_pcm()

    def stop(self, reason: str | None = None) -> None:
        self.session.stop(reason)
        for path in self._tmps:
            Path(path).unlink(missing_ok=True)


# -- the handle the HTTP layer holds --------------------------------------------------------------

class RaySessionHandle:
    """`SessionHandle` for a session in an actor; remembers the last info for while the actor moves."""

    def __init__(self, session_id: str, actor: Any, spec: SessionSpec, node_id: str) -> None:
        self.id = session_id
        self.actor = actor
        self.spec = spec
        self.node_id = node_id
        self._last_info: dict[str, Any] | None = None
        self.lost: str | None = None  # set when Ray gave the actor up for good
        self.portrait_ref: list[Any] = []  # keeps the portrait in the object store for re-creations

    def _call(self, method: str, *args: Any, timeout: float = CALL_TIMEOUT_S, **kwargs: Any) -> Any:
        ray = import_ray()
        from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError

        try:
            ok, value = ray.get(self.actor.call.remote(method, *args, **kwargs), timeout=timeout)
        except ActorDiedError as exc:
            if not self._dead_for_good():  # a call in flight when the node died: the actor is being re-created
                raise SessionError(f"session {self.id} is moving to another node; try again in a few seconds", 503) from None
            self.lost = f"its actor died and cannot be re-created ({str(exc).splitlines()[0]})"
            raise SessionError(f"session {self.id} ended: {self.lost}", 409) from None
        except (ActorUnavailableError, RayActorError, GetTimeoutError):
            raise SessionError(f"session {self.id} is moving to another node; try again in a few seconds", 503) from None
        if not ok:
            raise decode_error(value)
        return value

    def _dead_for_good(self) -> bool:
        """The GCS's word: DEAD (no restarts left), not RESTARTING or ALIVE."""
        try:
            from ray._private.state import actors

            return str(actors(actor_id=self.actor._actor_id.hex()).get("State")) == "DEAD"
        except Exception:  # noqa: BLE001 - unknown: treat as moving; the reaper asks again
            return False

    def offer(self, sdp: str, role: Literal["studio", "viewer"], remote: str = "?") -> tuple[int, dict[str, Any]]:
        return self._call("offer", sdp, role, remote)

    def say(self, text: str, voice: str) -> int:
        return int(self._call("say", text, voice))

    def interrupt(self) -> None:
        self._call("interrupt")

    def push_pcm(self, samples_48k: np.ndarray) -> None:
        self.actor.push_pcm.remote(samples_48k)  # in order, not waited for: the jitter buffer absorbs the rest

    def end_pcm(self) -> None:
        self.actor.end_pcm.remote()

    def set_controls(self, **controls: Any) -> dict[str, Any]:
        return self._call("set_controls", **controls)

    def set_expression(self, name: str, intensity: float = 0.8, hold_s: float | None = None) -> dict[str, Any]:
        return self._call("set_expression", name, intensity, hold_s)

    def set_background(self, spec: str) -> dict[str, Any]:
        return self._call("set_background", spec)

    def info(self) -> dict[str, Any]:
        try:
            info: dict[str, Any] = self._call("info", timeout=3.0)
        except SessionError:
            if self._last_info is None:
                raise
            return {**self._last_info, "state": "restarting" if self.lost is None else "stopped", "fps": 0.0}
        self._last_info = info
        return info

    def failure(self) -> str | None:
        if self.lost is not None:
            return self.lost
        try:
            return self._call("failure", timeout=3.0)
        except SessionError:
            return self.lost  # moving: not a failure (yet)

    def idle_s(self) -> float:
        try:
            return float(self._call("idle_s", timeout=3.0))
        except SessionError:
            return 0.0

    def startup(self, timeout: float = CALL_TIMEOUT_S) -> dict[str, float]:
        """Where the actor's (last) start-up time went (see SessionActor.startup)."""
        ray = import_ray()
        return dict(ray.get(self.actor.startup.remote(), timeout=timeout))

    def where(self, timeout: float = CALL_TIMEOUT_S) -> tuple[str, bool, int]:
        ray = import_ray()
        return tuple(ray.get(self.actor.where.remote(), timeout=timeout))


# -- the engine -----------------------------------------------------------------------------------

class RayAdmission(Admission):
    """`--max-sessions`, then room in the cluster: free CPUs for one more session actor."""

    def __init__(self, engine: RayEngine, max_sessions: int, retry_after_s: int) -> None:
        super().__init__(max_sessions, engine.num_cpus, cores=1, budget_fraction=1.0, retry_after_s=retry_after_s)
        self.engine = engine

    def check(self, sessions: int) -> Refusal | None:
        if sessions + 1 > self.max_sessions:
            return super().check(sessions)
        free = self.engine.free_cpus()
        if free + 1e-9 < self.engine.num_cpus:
            return Refusal("cpu", f"the Ray cluster has {free:g} free CPUs and a session asks for {self.engine.num_cpus:g} "
                           "(serve.ray.session_num_cpus); add a node (ray start --address=HEAD:6379) or try again later",
                           self.retry_after_s)
        return None


class RayEngine:
    """Sessions as Ray actors (see the module doc). `address`: None starts a local Ray on loopback."""

    name = "ray"

    def __init__(self, config: AppConfig, animator_factory: AnimatorFactory = default_animator_factory,
                 address: str | None = None) -> None:
        ray = import_ray()
        self.config = config
        rc = config.serve.ray
        self.num_cpus = rc.session_num_cpus
        self.animator_factory = animator_factory
        self.address = address if address is not None else rc.address
        self.started_ray = False
        if not ray.is_initialized():
            if is_loopback_address(self.address):
                use_loopback()
            env = {"PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)}
            if self.address is None:
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, runtime_env={"env_vars": env},
                         _system_config=FAST_FAILURE_SYSTEM_CONFIG, configure_logging=False, log_to_driver=False)
                self.started_ray = True
            else:
                try:
                    ray.init(address=self.address, runtime_env={"env_vars": env}, configure_logging=False, log_to_driver=False)
                except (ConnectionError, ValueError) as exc:
                    raise UserError(f"--ray-address {self.address}: no Ray cluster there ({str(exc).splitlines()[0]}); "
                                    "start one with `ray start --head` or leave --ray-address out") from None
        self._actor_cls = ray.remote(SessionActor)
        self._handles: dict[str, RaySessionHandle] = {}
        self._creating = 0
        self._lock = threading.Lock()
        self.admission = RayAdmission(self, config.serve.max_sessions, config.serve.retry_after_s)

    def free_cpus(self) -> float:
        ray = import_ray()
        with self._lock:
            creating = self._creating
        return float(ray.available_resources().get("CPU", 0.0)) - creating * self.num_cpus

    def create(self, spec: SessionSpec) -> RaySessionHandle:
        ray = import_ray()
        session_id = secrets.token_hex(6)
        portrait_ref = [ray.put(Path(spec.portrait).read_bytes())] if spec.portrait else []
        background_ref = []
        if spec.background and spec.background.lower().startswith("image:"):
            background_ref = [ray.put(Path(spec.background[6:]).read_bytes())]
        rc = self.config.serve.ray
        actor = self._actor_cls.options(
            num_cpus=self.num_cpus, max_restarts=rc.max_restarts, max_task_retries=0, max_concurrency=8,
            scheduling_strategy="SPREAD",  # sessions spread over the nodes (a lost node takes fewer with it)
            name=f"puppetcam-session-{session_id}",
        ).remote(session_id, spec, portrait_ref, Path(spec.portrait).suffix or ".png", self.config, self.animator_factory,
                 background_ref)
        with self._lock:
            self._creating += 1
        try:
            node_id, error = ray.get(actor.ready.remote(), timeout=CREATE_TIMEOUT_S)
        except Exception as exc:
            ray.kill(actor, no_restart=True)
            if isinstance(exc, ray.exceptions.GetTimeoutError):
                raise SessionError("the Ray cluster found no room for the session in time; add a node or try again "
                                   "later", 503) from None
            raise
        finally:
            with self._lock:
                self._creating -= 1
        if error is not None:
            ray.kill(actor, no_restart=True)
            raise decode_error(error)
        handle = RaySessionHandle(session_id, actor, spec, node_id)
        handle.portrait_ref = portrait_ref + background_ref  # kept alive for a re-created actor
        with self._lock:
            self._handles[session_id] = handle
        log.info("session %s runs on node %s", session_id, node_id[:8])
        return handle

    def get(self, session_id: str) -> RaySessionHandle | None:
        with self._lock:
            return self._handles.get(session_id)

    def list(self) -> list[RaySessionHandle]:
        with self._lock:
            return list(self._handles.values())

    def delete(self, session_id: str, reason: str | None = None) -> bool:
        ray = import_ray()
        with self._lock:
            handle = self._handles.pop(session_id, None)
        if handle is None:
            return False
        try:
            ray.get(handle.actor.stop.remote(reason), timeout=CALL_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the actor goes either way
            log.debug("session %s did not stop cleanly: %s", session_id, exc)
        before = float(ray.available_resources().get("CPU", 0.0))
        ray.kill(handle.actor, no_restart=True)
        # DELETE frees everything: wait (briefly) until the cluster shows the CPUs back, so admission sees them
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and float(ray.available_resources().get("CPU", 0.0)) < before + self.num_cpus - 1e-6:
            time.sleep(0.05)
        return True

    def batch_sizes(self) -> dict[str, dict[int, int]]:
        """Rows per Serve batch -> batches, per model (for /metrics). Asked from a plain thread: Serve's
        handles refuse blocking calls on an event loop, and /metrics is called on one."""
        from concurrent.futures import ThreadPoolExecutor

        from src.serve.ray_deploy import deployment_batch_sizes

        with ThreadPoolExecutor(1, thread_name_prefix="ray-batch-sizes") as pool:
            return pool.submit(deployment_batch_sizes).result(timeout=10)

    def close(self) -> None:
        for h in self.list():
            self.delete(h.id, "server shutdown")
        ray = import_ray()
        if self.started_ray:
            ray.shutdown()

    @staticmethod
    def wait_moved(handle: RaySessionHandle, lost_node: str, timeout: float = 30.0) -> float:
        """Seconds until a session answers again from a node other than `lost_node`; for tests and the benchmark."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if handle.where(timeout=1.0)[0] != lost_node:
                    return time.monotonic() - t0
                time.sleep(0.05)
            except Exception:  # noqa: BLE001 - still moving
                time.sleep(0.05)
        raise TimeoutError(f"session {handle.id} did not come back within {timeout:g} s")


from src.serve.engine import ENGINES  # noqa: E402 - registered here; engine.py names this module lazily

ENGINES.register("ray", RayEngine)
