"""Cross-session batching: one worker per model joins concurrent sessions' rows into one run."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from src.animation.onnx_session import BATCH, ModelSpec, OnnxModel
from src.core.config import OnnxConfig
from src.serve.batching import BatchingModel, BatchWorker, ModelBatchers
from tests.animation.test_onnx_session import linear_model

CPU = OnnxConfig(provider="cpu", warmup_runs=1)
SPEC = ModelSpec({"x": (BATCH, 4)}, {"y": (BATCH, 3)})


def test_concurrent_callers_are_batched_and_get_their_own_rows(tmp_path: Path) -> None:
    w = linear_model(tmp_path / "m.onnx", batch="B")
    worker = BatchWorker(OnnxModel(tmp_path / "m.onnx", SPEC, CPU), max_rows=8, wait_s=0.03)
    errors: list[str] = []
    barrier = threading.Barrier(4)

    def session(seed: int) -> None:
        rng = np.random.default_rng(seed)
        for _ in range(15):
            barrier.wait()
            x = rng.normal(size=(1 + seed % 2, 4)).astype(np.float32)
            y = worker.submit({"x": x})["y"]
            if y.shape != (len(x), 3) or not np.allclose(y, x @ w + 1, atol=1e-5):
                errors.append(f"session {seed} got another's rows")

    threads = [threading.Thread(target=session, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    worker.stop()
    assert not errors
    assert max(worker.sizes) > 2, worker.sizes  # rows of several sessions in one run
    assert sum(k * v for k, v in worker.sizes.items()) == 15 * (1 + 2 + 1 + 2)


def test_share_swaps_every_onnx_model_and_keeps_one_copy(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", batch="B")

    class Holder:
        def __init__(self) -> None:
            self.unet = OnnxModel(tmp_path / "m.onnx", SPEC, CPU, name="unet")
            self.models = {"enc": OnnxModel(tmp_path / "m.onnx", SPEC, CPU, name="enc")}

    batchers = ModelBatchers(max_rows=4, wait_s=0.01)
    a, b = Holder(), Holder()
    first_unet = a.unet
    assert batchers.share(a) == 2 and batchers.share(b) == 2
    assert isinstance(a.unet, BatchingModel) and isinstance(b.models["enc"], BatchingModel)
    assert len(batchers.workers) == 2 and batchers.workers[(str(tmp_path / "m.onnx"), "unet")].model is first_unet
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(a.unet.run({"x": x})["y"], b.unet.run({"x": x})["y"])
    sizes: dict[str, Any] = batchers.batch_sizes()
    assert set(sizes) == {"unet", "enc"}
    batchers.close()


def test_lipsync_sessions_share_one_batched_unet(tmp_path: Path, make_config: Any) -> None:
    """Three `lipsync-unet` sessions speaking at once: their frames go through one U-Net in batches."""
    import pytest

    pytest.importorskip("torch", reason="torch (requirements-train.txt) is needed to export the test U-Net")
    from src.training.lipsync_unet.export import export_unet
    from tests.animation.test_lipsync_unet_runtime import bench_module, espeak
    from tests.support.serve import ServeServer, create, http, wait_for

    unet = tmp_path / "unet160.onnx"
    export_unet(unet, None, size=160)
    audio = espeak("Hello there, open wide and say papa.", tmp_path / "s.wav")
    video = tmp_path / "talking.mp4"
    bench_module().make_talking_video(video, Path(__file__).resolve().parents[2] / "assets" / "portrait.png", audio,
                                      15.0, size=256)
    cfg = make_config("animation.onnx.provider=cpu", "animation.onnx.warmup_runs=1", f"animation.lipsync_unet.onnx_path={unet}",
                      f"animation.lipsync_unet.template={video}", "pipeline.fps=15", "serve.session_cpu_cores=0.01",
                      "serve.batch_wait_ms=40")
    with ServeServer(cfg) as srv:
        made = []
        for _ in range(3):
            status, _, body = create(srv.base, driver="text", animator="lipsync-unet")
            assert status == 201, body
            made.append(body)
        for s in made:
            assert srv.engine.get(s["id"]).shared_models >= 1
        assert len(srv.engine.batchers.workers) == 1  # one U-Net for the three sessions
        for s in made:
            http("POST", f"{srv.base}/api/sessions/{s['id']}/say", {"text": "Open wide and say papa, again and again."},
                 token=s["token"])

        def batched() -> bool:
            sizes = srv.engine.batch_sizes().get("lipsync_unet", {})
            return any(k >= 2 for k in sizes)

        assert wait_for(batched, 20), srv.engine.batch_sizes()
        metrics = http("GET", f"{srv.base}/metrics")[2]
        assert 'puppetcam_serve_batches_total{animator="lipsync_unet",size="2"}' in metrics or \
            'puppetcam_serve_batches_total{animator="lipsync_unet",size="3"}' in metrics
        print("\nbatch sizes formed:", srv.engine.batch_sizes())
