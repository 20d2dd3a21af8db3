"""`scripts/benchmark.py --serve --engine ray`: the ray engine's figures on a two-node loopback cluster.

* added latency: the same text-driven sessions on the local engine and on Ray actors; per-frame
  capture-to-output latency (p50 of the sessions' p50) and the front server's call round trip;
* batches: `lipsync-unet` 160 sessions (random-weight U-Net) speaking at once through the Serve deployment;
* node loss: the worker node is killed (by pid); seconds until each moved session delivers frames again.
Everything runs on this one machine (2 cores shared): figures are noisy, the batch run is CPU bound.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from src.bench.ray_cluster import kill_node, two_node_cluster
from src.core.config import AppConfig
from src.serve.runner import BackgroundServer

SAY = "Open wide and say papa, again and again, and then once more for the record."


def _create(base: str, **fields: Any) -> dict[str, Any]:
    from scripts.serve_client import create

    status, _, body = create(base, **fields)
    if status != 201:
        raise RuntimeError(f"session not created: {status} {body}")
    return body


def _handle(engine: Any, session_id: str) -> Any:
    """The engine's handle for a session this benchmark made (it exists until the benchmark deletes it)."""
    handle = engine.get(session_id)
    assert handle is not None, f"session {session_id} is gone"
    return handle


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 2)


def _latency_run(srv: BackgroundServer, sessions: int, duration_s: float) -> dict[str, Any]:
    from scripts.serve_client import http

    made = [_create(srv.base, driver="text") for _ in range(sessions)]
    try:
        for b in made:
            http("POST", f"{srv.base}/api/sessions/{b['id']}/say", {"text": SAY}, token=b["token"])
        time.sleep(duration_s)
        rtt: list[float] = []
        p50s: list[float] = []
        for b in made:
            handle = srv.engine.get(b["id"])
            assert handle is not None
            for _ in range(20):
                t0 = time.perf_counter()
                info = handle.info()
                rtt.append((time.perf_counter() - t0) * 1000)
            if info["latency_ms"]["p50"] is not None:
                p50s.append(float(info["latency_ms"]["p50"]))
        return {"sessions": sessions, "frame_latency_p50_ms": round(statistics.median(p50s), 1) if p50s else None,
                "call_rtt_ms": {"p50": _p(rtt, 0.5), "p95": _p(rtt, 0.95)}}
    finally:
        for b in made:
            http("DELETE", f"{srv.base}/api/sessions/{b['id']}", token=b["token"])


def added_latency(config: AppConfig, sessions: int, duration_s: float) -> dict[str, Any]:
    from src.serve.ray_engine import RayEngine

    cfg = config.model_copy(deep=True)
    cfg.serve.session_cpu_cores = 0.01
    cfg.serve.max_sessions = max(cfg.serve.max_sessions, sessions)
    cfg.serve.ray.session_num_cpus = 0.5
    with BackgroundServer(cfg) as srv:
        local = _latency_run(srv, sessions, duration_s)
    engine = RayEngine(cfg)
    with BackgroundServer(cfg, engine, admission=engine.admission) as srv:
        ray = _latency_run(srv, sessions, duration_s)
    lp, rp = local["frame_latency_p50_ms"], ray["frame_latency_p50_ms"]
    return {"local": local, "ray": ray, "added_frame_latency_p50_ms": round(rp - lp, 1) if lp and rp else None}


def unet_batches(config: AppConfig, sessions: int, duration_s: float, workdir: Path) -> dict[str, Any]:
    import subprocess

    from scripts.serve_client import http
    from src.bench.neural import make_talking_video
    from src.serve.ray_engine import RayEngine
    from src.training.lipsync_unet.export import export_unet

    unet = workdir / "unet160.onnx"
    export_unet(unet, None, size=160)  # random weights: the batching is what is measured
    wav = workdir / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "Hello there, open wide and say papa."], check=True)
    subprocess.run(["sox", str(wav), "-r", "16000", "-c", "1", "-b", "16", str(wav.with_suffix(".16k.wav"))], check=True)
    import wave

    import numpy as np

    with wave.open(str(wav.with_suffix(".16k.wav"))) as wf:
        audio = np.frombuffer(wf.readframes(wf.getnframes()), np.int16).astype(np.float32) / 32768.0
    video = workdir / "talking.mp4"
    make_talking_video(video, Path(__file__).resolve().parents[2] / "assets" / "portrait.png", audio, 15.0, size=256)
    cfg = config.model_copy(deep=True)
    lu = cfg.animation.lipsync_unet
    lu.onnx_path, lu.template = str(unet), str(video)
    cfg.animation.onnx.provider = "cpu"
    cfg.serve.max_sessions = max(cfg.serve.max_sessions, sessions)
    cfg.serve.ray.session_num_cpus = 0.1
    engine = RayEngine(cfg)
    with BackgroundServer(cfg, engine, admission=engine.admission) as srv:
        made = [_create(srv.base, driver="text", animator="lipsync-unet", output_size_px="160") for _ in range(sessions)]
        try:
            before = engine.batch_sizes().get("lipsync_unet", {})
            for b in made:
                http("POST", f"{srv.base}/api/sessions/{b['id']}/say", {"text": SAY}, token=b["token"])
            time.sleep(duration_s)
            after = engine.batch_sizes().get("lipsync_unet", {})
            infos = [_handle(engine, b["id"]).info() for b in made]
        finally:
            for b in made:
                http("DELETE", f"{srv.base}/api/sessions/{b['id']}", token=b["token"])
    sizes = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0) > 0}
    runs = sum(sizes.values())
    p95 = [float(i["latency_ms"]["p95"]) for i in infos if i["latency_ms"]["p95"] is not None]
    return {"sessions": sessions, "batch_sizes": sizes, "mean_batch": round(sum(k * v for k, v in sizes.items()) / runs, 2)
            if runs else None, "frame_latency_p95_ms_median": round(statistics.median(p95), 1) if p95 else None,
            "fps_per_session": [round(float(i["fps"]), 1) for i in infos],
            "latency_budget_ms": cfg.pipeline.latency_budget_ms}


def node_loss(config: AppConfig, cluster: Any) -> dict[str, Any]:
    from scripts.serve_client import http
    from src.serve.ray_engine import RayEngine

    cfg = config.model_copy(deep=True)
    cfg.serve.ray.session_num_cpus = 1
    engine = RayEngine(cfg)
    worker = cluster.worker.node_id
    with BackgroundServer(cfg, engine, admission=engine.admission) as srv:
        made = [_create(srv.base, driver="text") for _ in range(4)]
        try:
            moving = [b for b in made if _handle(engine, b["id"]).where()[0] == worker]
            time.sleep(3.0)
            kill_node(cluster, cluster.worker)
            t0 = time.monotonic()
            times: dict[str, float] = {}
            seen: dict[str, int] = {}
            while len(times) < len(moving) and time.monotonic() - t0 < 60:
                for b in moving:
                    if b["id"] in times:
                        continue
                    h = _handle(engine, b["id"])
                    try:
                        node, restarted, _ = h.where(timeout=1.0)
                        frames = int(h.info()["frames"]) if node != worker else 0
                    except Exception:  # noqa: BLE001 - still moving
                        continue
                    if node != worker and frames > 0 and frames > seen.get(b["id"], 0) and b["id"] in seen:
                        times[b["id"]] = round(time.monotonic() - t0, 2)
                    if node != worker:
                        seen[b["id"]] = frames
                time.sleep(0.05)
            startup = [_handle(engine, b["id"]).startup() for b in moving if b["id"] in times]
        finally:
            for b in made:
                http("DELETE", f"{srv.base}/api/sessions/{b['id']}", token=b["token"])
    values = sorted(times.values())
    return {"moved_sessions": len(moving), "seconds_to_frames_again": values, "p95_s": _p(values, 0.95),
            "recreated_actor_startup_s": startup,
            "note": "includes Ray noticing the node (health checks every 0.5 s, 3 misses) and re-creating the actor; "
                    "recreated_actor_startup_s: the new actor's process start (interpreter, ray, imports) to __init__, "
                    "then the session's portrait, prepare and start"}


def measure_serve_ray(config: AppConfig, sessions: int, duration_s: float, unet_sessions: int = 8) -> dict[str, Any]:
    report: dict[str, Any] = {"note": "two Ray nodes on 127.0.0.1 on this one 2-core machine (shared): noisy"}
    with two_node_cluster(cpus_per_node=4) as cluster, tempfile.TemporaryDirectory(prefix="puppetcam-ray-") as tmp:
        report["added_latency"] = added_latency(config, sessions, duration_s)
        if unet_sessions > 0:
            report["unet_batches"] = unet_batches(config, unet_sessions, duration_s, Path(tmp))
        report["node_loss"] = node_loss(config, cluster)
    return report
