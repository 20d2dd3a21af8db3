"""`serve --engine ray` on a real two-node Ray cluster on loopback: sessions spread over the nodes,
a lost node's sessions come back on the other with the same id and token, and the API is the local one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")

from src.bench.ray_cluster import kill_node, two_node_cluster
from tests.support.serve import ServeServer, create, http, view, wait_for


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with two_node_cluster(cpus_per_node=4) as c:
        yield c


@pytest.fixture(scope="module")
def ray_server(cluster: Any, make_config: Any) -> Iterator[ServeServer]:
    from src.serve.ray_engine import RayEngine

    cfg = make_config("serve.max_sessions=6", "serve.ray.session_num_cpus=1", size=128)
    engine = RayEngine(cfg)
    with ServeServer(cfg, engine, admission=engine.admission) as srv:
        yield srv


def test_sessions_spread_and_come_back_after_node_loss(cluster: Any, ray_server: ServeServer) -> None:
    engine = ray_server.engine
    made = []
    try:
        for _ in range(4):
            status, _, body = create(ray_server.base, driver="text")
            assert status == 201, body
            made.append(body)
        head_id = cluster.head_node.node_id
        worker_id = cluster.worker.node_id
        where = {b["id"]: engine.get(b["id"]).where()[0] for b in made}
        assert sorted(where.values()).count(head_id) == 2 and sorted(where.values()).count(worker_id) == 2, where
        moving = [b for b in made if where[b["id"]] == worker_id]
        staying = [b for b in made if where[b["id"]] == head_id]
        for b in made:
            url = f"{ray_server.base}/api/sessions/{b['id']}"
            assert wait_for(lambda u=url, t=b["token"]: http("GET", u, token=t)[2].get("frames", 0) > 5, 60)
        got = asyncio.run(view(ray_server.base, moving[0]["id"], moving[0]["viewer_token"], 2.0))
        assert got.status == 200 and got.frames > 0, got.error
        before = {b["id"]: http("GET", f"{ray_server.base}/api/sessions/{b['id']}", token=b["token"])[2]["frames"]
                  for b in staying}

        pids = kill_node(cluster, cluster.worker)
        assert pids
        t0 = time.monotonic()
        for b in moving:  # same id, same token, now on the head node
            engine.wait_moved(engine.get(b["id"]), worker_id, timeout=60)
            node, restarted, _ = engine.get(b["id"]).where()
            assert node == head_id and restarted
        moved_s = time.monotonic() - t0
        for b in moving:
            url = f"{ray_server.base}/api/sessions/{b['id']}"
            assert wait_for(lambda u=url, t=b["token"]: http("GET", u, token=t)[2].get("state") == "running", 30)
        # a viewer connecting again (as the pages do by themselves) receives frames from the new node
        got = asyncio.run(view(ray_server.base, moving[0]["id"], moving[0]["viewer_token"], 2.0))
        assert got.status == 200 and got.frames > 0, got.error
        # the other sessions did not notice: still running, frames still growing
        for b in staying:
            url = f"{ray_server.base}/api/sessions/{b['id']}"
            status, _, info = http("GET", url, token=b["token"])
            assert status == 200 and info["state"] == "running" and info["frames"] > before[b["id"]]
        print(f"moved sessions answered again after {moved_s:.1f} s")
    finally:
        for b in made:
            http("DELETE", f"{ray_server.base}/api/sessions/{b['id']}", token=b["token"])


# -- the serve API contract, against the ray engine (the same tests as tests/serve/test_serve_api.py) ----------

from tests.serve.test_serve_api import (  # noqa: E402 - the contract tests, collected again against this engine
    test_background_per_session_and_live,
    test_bad_create_fields,
    test_bad_offers,
    test_bad_portraits,
    test_bad_say_requests,
    test_bad_websocket_audio_is_closed_with_a_reason,
    test_expression_route,
    test_health_ready_and_metrics,
    test_json_create_and_form_body_limits,
    test_max_sessions_is_503_with_retry_after,
    test_openapi_document,
    test_portrait_without_a_face_is_422_with_the_cli_advice,
    test_tokens_missing_and_wrong,
    test_unknown_session_and_route,
    test_uploaded_portrait_makes_a_session,
    text_session,
)

CONTRACT = [test_background_per_session_and_live, test_bad_create_fields, test_bad_offers, test_expression_route,
            test_bad_portraits, test_bad_say_requests,
            test_bad_websocket_audio_is_closed_with_a_reason, test_health_ready_and_metrics,
            test_json_create_and_form_body_limits, test_max_sessions_is_503_with_retry_after, test_openapi_document,
            test_portrait_without_a_face_is_422_with_the_cli_advice, test_tokens_missing_and_wrong,
            test_unknown_session_and_route, test_uploaded_portrait_makes_a_session, text_session]


@pytest.fixture(scope="module")
def server(cluster: Any, make_config: Any) -> Iterator[ServeServer]:
    """The contract tests' server (same settings as tests/serve/test_serve_api.py), on the ray engine."""
    from src.serve.ray_engine import RayEngine

    cfg = make_config("serve.max_sessions=2", "serve.session_cpu_cores=0.01", "serve.max_upload_bytes=2000000",
                      "serve.ray.session_num_cpus=1")
    engine = RayEngine(cfg)
    with ServeServer(cfg, engine, admission=engine.admission) as srv:
        yield srv


def test_no_room_in_the_cluster_is_503(cluster: Any, make_config: Any) -> None:
    import ray

    from src.serve.ray_engine import RayEngine

    nodes = [n for n in ray.nodes() if n["Alive"]]  # each node has 4 CPUs; a session asking for 4 fills one
    cfg = make_config("serve.max_sessions=10", "serve.ray.session_num_cpus=4")
    engine = RayEngine(cfg)
    # the earlier tests' actors give their CPUs back shortly after they end
    assert wait_for(lambda: engine.free_cpus() >= 4 * len(nodes), 30), ray.available_resources()
    made = []
    with ServeServer(cfg, engine, admission=engine.admission) as srv:
        try:
            for _ in nodes:
                status, _, body = create(srv.base, driver="none", output_size_px="128")
                assert status == 201, body
                made.append(body)
            assert wait_for(lambda: engine.free_cpus() < 4, 10)
            status, headers, body = create(srv.base, driver="none")
            assert status == 503 and "session_num_cpus" in body["error"] and int(headers["Retry-After"]) > 0
        finally:
            for b in made:
                http("DELETE", f"{srv.base}/api/sessions/{b['id']}", token=b["token"])


def test_lipsync_sessions_batch_through_the_serve_deployment(cluster: Any, make_config: Any, tmp_path: Any) -> None:
    """Three `lipsync-unet` sessions (actors) speaking at once: one Ray Serve U-Net deployment batches their frames."""
    pytest.importorskip("torch", reason="torch (requirements-train.txt) is needed to export the test U-Net")
    from pathlib import Path

    from src.serve.ray_engine import RayEngine
    from src.training.lipsync_unet.export import export_unet
    from tests.animation.test_lipsync_unet_runtime import bench_module, espeak

    unet = tmp_path / "unet160.onnx"
    export_unet(unet, None, size=160)  # random weights: the batching is what is measured
    audio = espeak("Hello there, open wide and say papa.", tmp_path / "s.wav")
    video = tmp_path / "talking.mp4"
    bench_module().make_talking_video(video, Path(__file__).resolve().parents[2] / "assets" / "portrait.png", audio,
                                      15.0, size=256)
    cfg = make_config("animation.onnx.provider=cpu", "animation.onnx.warmup_runs=1", f"animation.lipsync_unet.onnx_path={unet}",
                      f"animation.lipsync_unet.template={video}", "pipeline.fps=15", "serve.ray.session_num_cpus=0.5")
    engine = RayEngine(cfg)
    with ServeServer(cfg, engine, admission=engine.admission) as srv:
        made = []
        try:
            for _ in range(3):
                status, _, body = create(srv.base, driver="text", animator="lipsync-unet")
                assert status == 201, body
                made.append(body)
            for s in made:
                http("POST", f"{srv.base}/api/sessions/{s['id']}/say", {"text": "Open wide and say papa, again and again."},
                     token=s["token"])

            def batched() -> bool:
                return any(k >= 2 for k in engine.batch_sizes().get("lipsync_unet", {}))

            assert wait_for(batched, 30, interval=0.5), engine.batch_sizes()
            assert 'puppetcam_serve_batches_total{animator="lipsync_unet"' in http("GET", f"{srv.base}/metrics")[2]
            for s in made:  # every session animates (a busy machine may take a while for its first frames)
                url = f"{srv.base}/api/sessions/{s['id']}"
                assert wait_for(lambda u=url, t=s["token"]: http("GET", u, token=t)[2].get("frames", 0) > 0, 30)
                assert http("GET", url, token=s["token"])[2]["state"] == "running"
            print("\nbatch sizes formed by the Serve deployment:", engine.batch_sizes())
        finally:
            for b in made:
                http("DELETE", f"{srv.base}/api/sessions/{b['id']}", token=b["token"])
