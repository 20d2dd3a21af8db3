"""OnnxModel: spec checks, provider selection, static/dynamic batching, fp16 casting, timing, TensorRT cache metadata."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from src.animation.onnx_session import (
    BATCH,
    ModelSpec,
    OnnxModel,
    available_providers,
    check_trt_metadata,
    select_providers,
    write_trt_metadata,
)
from src.core.config import OnnxConfig
from src.core.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
CPU = OnnxConfig(provider="cpu", warmup_runs=1)


def linear_model(path: Path, batch: int | str, n_in: int = 4, n_out: int = 3, dtype: int = TensorProto.FLOAT,
                 in_name: str = "x", out_name: str = "y", seed: int = 0) -> np.ndarray:  # fmt: skip
    """y = x @ W + 1 (rows independent), with a fixed or symbolic batch axis. Returns W."""
    w = np.random.default_rng(seed).normal(size=(n_in, n_out)).astype(np.float32)
    np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    graph = helper.make_graph(
        [helper.make_node("MatMul", [in_name, "w"], ["m"]), helper.make_node("Add", ["m", "one"], [out_name])],
        "linear",
        [helper.make_tensor_value_info(in_name, dtype, [batch, n_in])],
        [helper.make_tensor_value_info(out_name, dtype, [batch, n_out])],
        [numpy_helper.from_array(w.astype(np_dtype), "w"), numpy_helper.from_array(np.ones(n_out, np_dtype), "one")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


SPEC = ModelSpec({"x": (BATCH, 4)}, {"y": (BATCH, 3)})


def test_static_batch_split_padded_and_concatenated_in_order(tmp_path: Path) -> None:
    w = linear_model(tmp_path / "m.onnx", batch=2)
    model = OnnxModel(tmp_path / "m.onnx", SPEC, CPU)
    assert model.static_batch == 2
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)  # 5 = 2 + 2 + 1 (padded)
    y = model.run({"x": x})["y"]
    assert y.shape == (5, 3)
    np.testing.assert_allclose(y, x @ w + 1, atol=1e-5)


def test_dynamic_batch_runs_whole_batch_and_respects_max_batch(tmp_path: Path) -> None:
    w = linear_model(tmp_path / "d.onnx", batch="N")
    calls: list[tuple[str, float]] = []
    model = OnnxModel(tmp_path / "d.onnx", SPEC, CPU, on_timing=lambda n, ms: calls.append((n, ms)), max_batch=3)
    assert model.static_batch is None
    x = np.arange(28, dtype=np.float32).reshape(7, 4)
    np.testing.assert_allclose(model.run({"x": x})["y"], x @ w + 1, atol=1e-4)
    assert len(model.timings_ms) == 1 and calls[0][0] == "d" and calls[0][1] > 0


def test_fp16_model_gets_fp16_inputs_and_returns_float32(tmp_path: Path) -> None:
    w = linear_model(tmp_path / "h.onnx", batch=1, dtype=TensorProto.FLOAT16)
    model = OnnxModel(tmp_path / "h.onnx", SPEC, CPU)
    assert model.input_dtypes["x"] == np.float16
    x = np.array([[0.5, -1.0, 2.0, 0.25]], np.float32)
    y = model.run({"x": x})["y"]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, x @ w + 1, atol=2e-2)


def test_warmup_and_dummy_feeds(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", batch=1)
    model = OnnxModel(tmp_path / "m.onnx", SPEC, OnnxConfig(provider="cpu", warmup_runs=3))
    model.warmup()
    assert model.dummy_feeds(4)["x"].shape == (4, 4)
    assert len(model.timings_ms) == 0  # warm-up runs are not frame timings


def test_missing_file_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model file .*nope\.onnx: not found"):
        OnnxModel(tmp_path / "nope.onnx", SPEC, CPU)


def test_wrong_shape_names_file_tensor_expected_and_found(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", batch=1, n_in=5)
    with pytest.raises(ModelError) as e:
        OnnxModel(tmp_path / "m.onnx", SPEC, CPU)
    msg = str(e.value)
    assert "m.onnx" in msg and "input 'x'" in msg and "[B,4]" in msg and "[1,5]" in msg and "\n" not in msg


def test_wrong_name_lists_what_the_file_has(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", batch=1, in_name="input")
    with pytest.raises(ModelError) as e:
        OnnxModel(tmp_path / "m.onnx", SPEC, CPU)
    assert "expected input 'x'" in str(e.value) and "input [1,4]" in str(e.value)
    linear_model(tmp_path / "o.onnx", batch=1, out_name="out")
    with pytest.raises(ModelError, match="expected output 'y'"):
        OnnxModel(tmp_path / "o.onnx", SPEC, CPU)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot be loaded by onnxruntime"):
        OnnxModel(tmp_path / "junk.onnx", SPEC, CPU)


def test_provider_selection() -> None:
    assert select_providers("cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    full = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "AzureExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("auto", full) == ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("cuda", full) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert select_providers("auto", ["AzureExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(ModelError) as e:
        select_providers("tensorrt", ["AzureExecutionProvider", "CPUExecutionProvider"])
    msg = str(e.value)
    assert "TensorrtExecutionProvider is not available" in msg and "available: AzureExecutionProvider, CPUExecutionProvider" in msg
    assert "\n" not in msg


@pytest.mark.skipif("CUDAExecutionProvider" in available_providers(), reason="CUDA is available here")
def test_requesting_cuda_without_it_is_one_line_error(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", batch=1)
    with pytest.raises(ModelError, match="CUDAExecutionProvider is not available"):
        OnnxModel(tmp_path / "m.onnx", SPEC, OnnxConfig(provider="cuda"))


def test_trt_cache_for_another_gpu_or_version_refused(tmp_path: Path) -> None:
    here = {"gpu": "NVIDIA GeForce RTX 3090", "tensorrt": "10.3.0"}
    write_trt_metadata(tmp_path, here, fp16=True)
    check_trt_metadata(tmp_path, here)  # same machine: fine
    with pytest.raises(ModelError) as e:
        check_trt_metadata(tmp_path, {"gpu": "NVIDIA A100", "tensorrt": "10.3.0"})
    assert "built for GPU 'NVIDIA GeForce RTX 3090'" in str(e.value) and "'NVIDIA A100'" in str(e.value)
    with pytest.raises(ModelError, match="TensorRT version '10.3.0'"):
        check_trt_metadata(tmp_path, {"gpu": "NVIDIA GeForce RTX 3090", "tensorrt": "8.6.1"})
    empty = tmp_path / "fresh"
    check_trt_metadata(empty, here)  # nothing built yet: fine
    (empty).mkdir()
    (empty / "model.engine").write_bytes(b"x")
    with pytest.raises(ModelError, match="engines without"):
        check_trt_metadata(empty, here)


def test_build_trt_says_what_is_missing_and_exits_2(tmp_path: Path) -> None:
    linear_model(tmp_path / "m.onnx", batch=1)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_trt.py"), "--models", str(tmp_path / "m.onnx")],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    if run.returncode == 0:
        pytest.skip("TensorRT and an NVIDIA GPU are present: engines were built")
    assert run.returncode == 2
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "missing" in lines[0]
    assert any(w in lines[0] for w in ("tensorrt", "NVIDIA GPU", "TensorrtExecutionProvider"))


@pytest.mark.gpu
@pytest.mark.skipif("CUDAExecutionProvider" not in available_providers(), reason="needs an NVIDIA GPU with onnxruntime-gpu (none here)")
def test_gpu_io_binding_matches_cpu(tmp_path: Path) -> None:
    w = linear_model(tmp_path / "m.onnx", batch="N")
    model = OnnxModel(tmp_path / "m.onnx", SPEC, OnnxConfig(provider="cuda"))
    assert model.on_gpu
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(model.run({"x": x})["y"], x @ w + 1, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif("TensorrtExecutionProvider" not in available_providers(), reason="needs TensorRT and an NVIDIA GPU (none here)")
def test_gpu_tensorrt_fp16_engine_cache(tmp_path: Path) -> None:
    w = linear_model(tmp_path / "m.onnx", batch=1)
    cfg = OnnxConfig(provider="tensorrt", fp16=True, trt_cache_dir=str(tmp_path / "trt"))
    model = OnnxModel(tmp_path / "m.onnx", SPEC, cfg)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(model.run({"x": x})["y"], x @ w + 1, atol=1e-2)


def test_runtime_animators_do_not_import_torch() -> None:
    """A user without torch can run the .onnx models: the runtime modules never import it."""
    code = ("import sys; import src.animation.onnx_session, src.animation.fallback, src.animation.liveportrait, "
            "src.animation.lipsync_unet; print('torch' in sys.modules)")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-500:]
    assert run.stdout.strip() == "False"
