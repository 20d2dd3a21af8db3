"""One ONNX Runtime session wrapper for every neural model.

`OnnxModel(path, spec, cfg)` opens a model with the providers chosen in config
(`auto | tensorrt | cuda | cpu`), checks the file's tensors against the spec the
animator expects, casts inputs to the model's dtypes (fp16 models take fp16),
splits batches that exceed a static batch dimension, uses I/O binding on GPU
providers, and records per-call wall time in `timings_ms` (and an optional
callback) so the pipeline can report it in its stage metrics.

Runtime animators use this module only (onnxruntime, never torch).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.core.config import OnnxConfig
from src.core.errors import ModelError
from src.core.runtime.threads import onnx_session_options

log = logging.getLogger(__name__)

BATCH = "B"  # marks the batch axis in a spec shape; the file may have a fixed size there or a symbolic one
Dim = int | str | None  # int = exact size, BATCH = batch axis, None = any size

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
GPU_PROVIDERS = {"TensorrtExecutionProvider", "CUDAExecutionProvider"}
TRT_METADATA_FILE = "puppetcam_trt.json"  # written by scripts/build_trt.py next to the engine cache

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class ModelSpec:
    """The tensors an animator expects of one model file: name -> shape (see `Dim`)."""

    inputs: Mapping[str, tuple[Dim, ...]]
    outputs: Mapping[str, tuple[Dim, ...]]


def _fmt_shape(shape: tuple[Any, ...] | list[Any]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def select_providers(requested: str, available: list[str] | None = None) -> list[str]:
    """Provider names in priority order for `requested` (auto | tensorrt | cuda | cpu).

    `auto` takes the best available (TensorRT, then CUDA, then CPU). A provider
    that is not available is a one-line ModelError listing the available ones.
    """
    available = available_providers() if available is None else available
    if requested == "auto":
        chain: list[str] = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available]
        return [*chain, "CPUExecutionProvider"]
    if requested not in PROVIDERS:
        raise ModelError(f"animation.onnx.provider {requested!r}: unknown; use one of auto, {', '.join(PROVIDERS)}")
    name = PROVIDERS[requested]
    if name not in available:
        raise ModelError(
            f"animation.onnx.provider {requested!r}: {name} is not available in this onnxruntime; "
            f"available: {', '.join(available)}; use provider auto or cpu"
        )
    chain = {"tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider"], "cuda": ["CUDAExecutionProvider"], "cpu": []}[requested]
    return [p for p in chain if p in available] + ["CPUExecutionProvider"]


# --- TensorRT engine cache metadata --------------------------------------------------------------


def trt_environment() -> dict[str, str]:
    """What a TensorRT engine depends on here: GPU name and TensorRT version ('' when absent)."""
    env = {"gpu": "", "tensorrt": ""}
    try:
        import tensorrt

        env["tensorrt"] = str(tensorrt.__version__)
    except Exception:  # noqa: BLE001 - any import failure means "no TensorRT"
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10)
            env["gpu"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
        except (OSError, subprocess.SubprocessError):
            pass
    return env


def write_trt_metadata(cache_dir: Path, env: Mapping[str, str], fp16: bool) -> Path:
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / TRT_METADATA_FILE
    path.write_text(json.dumps({**env, "fp16": fp16}, indent=2))
    return path


def check_trt_metadata(cache_dir: Path, env: Mapping[str, str] | None = None) -> None:
    """Refuse an engine cache built for another GPU or TensorRT version (one-line ModelError).

    A cache folder without engines is fine (TensorRT builds them on first use).
    """
    meta_path = cache_dir / TRT_METADATA_FILE
    if not meta_path.is_file():
        engines = list(cache_dir.glob("*.engine")) if cache_dir.is_dir() else []
        if engines:
            raise ModelError(f"TensorRT cache {cache_dir}: engines without {TRT_METADATA_FILE}; rebuild with scripts/build_trt.py")
        return
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        raise ModelError(f"TensorRT cache {meta_path}: unreadable metadata; rebuild with scripts/build_trt.py") from None
    env = trt_environment() if env is None else env
    for key, what in (("gpu", "GPU"), ("tensorrt", "TensorRT version")):
        if str(meta.get(key, "")) != str(env.get(key, "")):
            raise ModelError(
                f"TensorRT cache {cache_dir}: built for {what} {meta.get(key) or 'unknown'!r}, this machine has "
                f"{env.get(key) or 'none'!r}; rebuild with scripts/build_trt.py or delete the folder"
            )


# --- the session wrapper ---------------------------------------------------------------------------


class OnnxModel:
    """A checked ONNX Runtime session with batching, dtype casting, timing and warm-up."""

    def __init__(
        self,
        path: str | Path,
        spec: ModelSpec,
        cfg: OnnxConfig | None = None,
        *,
        name: str | None = None,
        on_timing: Callable[[str, float], None] | None = None,
        max_batch: int | None = None,
        available: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.cfg = cfg or OnnxConfig()
        self.path = Path(path).expanduser()
        self.name = name or self.path.stem
        self.spec = spec
        self.on_timing = on_timing
        self.max_batch = max_batch  # split dynamic batches larger than this (memory bound)
        self.timings_ms: deque[float] = deque(maxlen=512)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path}: not found; check the path in config.yaml (animation.*)")
        providers = select_providers(self.cfg.provider, available)
        opts = onnx_session_options(ort.SessionOptions(), self.cfg.intra_op_threads)  # sized pools that sleep when idle
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provider_args: list[Any] = []
        for p in providers:
            if p == "TensorrtExecutionProvider":
                cache = Path(self.cfg.trt_cache_dir).expanduser()
                check_trt_metadata(cache)
                provider_args.append(
                    (p, {"trt_fp16_enable": self.cfg.fp16, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)})
                )
            elif p == "CUDAExecutionProvider":
                provider_args.append((p, {"device_id": self.cfg.cuda_device_id}))
            else:
                provider_args.append(p)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=provider_args)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types for a bad file
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"model file {self.path}: cannot be loaded by onnxruntime ({first}); re-export it") from None
        self.providers = self.session.get_providers()
        self.on_gpu = bool(GPU_PROVIDERS & set(self.providers))
        self._inputs = {i.name: i for i in self.session.get_inputs()}
        self._outputs = [o.name for o in self.session.get_outputs()]
        self.input_dtypes = {n: _ORT_DTYPES.get(i.type, np.float32) for n, i in self._inputs.items()}
        self.static_batch = self._check_spec()

    # -- checks --

    def _check_spec(self) -> int | None:
        """Compare the file's tensors with the spec; return the static batch size (None if dynamic)."""
        found_in = {n: tuple(i.shape) for n, i in self._inputs.items()}
        found_out = {o.name: tuple(o.shape) for o in self.session.get_outputs()}
        static: int | None = None
        dynamic = False
        for kind, expected, found in (("input", self.spec.inputs, found_in), ("output", self.spec.outputs, found_out)):
            for tname, shape in expected.items():
                if tname not in found:
                    raise ModelError(
                        f"model file {self.path}: expected {kind} {tname!r} {_fmt_shape(shape)}, found {kind}s "
                        f"{', '.join(f'{k} {_fmt_shape(v)}' for k, v in found.items()) or 'none'}; use the matching export"
                    )
                got = found[tname]
                bad = len(got) != len(shape)
                for want, have in zip(shape, got, strict=False):
                    if bad:
                        break
                    if want == BATCH:
                        if isinstance(have, int):
                            static = have if static is None else min(static, have)
                        else:
                            dynamic = True
                    elif isinstance(want, int) and isinstance(have, int) and want != have:
                        bad = True
                if bad:
                    raise ModelError(
                        f"model file {self.path}: {kind} {tname!r} expected shape {_fmt_shape(shape)}, found {_fmt_shape(got)}; "
                        "use the matching export"
                    )
        extra = sorted(set(found_in) - set(self.spec.inputs))
        if extra:
            raise ModelError(f"model file {self.path}: unexpected input(s) {', '.join(extra)}; expected {', '.join(self.spec.inputs)}")
        return None if dynamic or static is None else static

    # -- running --

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    def _cast(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: np.ascontiguousarray(v, dtype=self.input_dtypes.get(k, np.float32)) for k, v in feeds.items()}

    def _run_once(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.on_gpu:
            return self._run_bound(feeds)
        return self.session.run(self._outputs, feeds)

    def _run_bound(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        # I/O binding: inputs are copied to the device once, outputs allocated there and copied back once
        # (exercised only where CUDA exists; tests marked gpu).
        binding = self.session.io_binding()
        for k, v in feeds.items():
            binding.bind_cpu_input(k, v)
        for o in self._outputs:
            binding.bind_output(o, "cuda", self.cfg.cuda_device_id)
        self.session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on a batch (every input has the batch on axis 0); outputs are float32 for float models."""
        t0 = time.perf_counter()
        cast = self._cast(feeds)
        n = next(iter(cast.values())).shape[0] if cast else 1
        chunk = self.static_batch or self.max_batch or n
        if n <= chunk and (self.static_batch is None or n == self.static_batch):
            outs = self._run_once(cast)
        else:
            parts: list[list[np.ndarray]] = []
            for s in range(0, n, chunk):
                piece = {k: v[s : s + chunk] for k, v in cast.items()}
                m = next(iter(piece.values())).shape[0]
                if self.static_batch is not None and m < self.static_batch:
                    # Pad the last piece to the static batch; the padding rows are dropped below.
                    piece = {k: np.concatenate([v, np.repeat(v[-1:], self.static_batch - m, axis=0)]) for k, v in piece.items()}
                parts.append([o[:m] for o in self._run_once(piece)])
            outs = [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(self._outputs))]
        result = {k: (v.astype(np.float32) if v.dtype == np.float16 else v) for k, v in zip(self._outputs, outs, strict=True)}
        ms = (time.perf_counter() - t0) * 1000.0
        self.timings_ms.append(ms)
        if self.on_timing is not None:
            self.on_timing(self.name, ms)
        return result

    def dummy_feeds(self, batch: int = 1, dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
        """Zeros shaped by the spec (symbolic non-batch axes take `dims[name]` or 1)."""
        feeds = {}
        for tname, shape in self.spec.inputs.items():
            got = self._inputs[tname].shape
            concrete = []
            for want, have in zip(shape, got, strict=True):
                if want == BATCH:
                    concrete.append(batch)
                elif isinstance(have, int):
                    concrete.append(have)
                elif isinstance(want, int):
                    concrete.append(want)
                else:
                    concrete.append((dims or {}).get(tname, 1))
            feeds[tname] = np.zeros(concrete, dtype=self.input_dtypes[tname])
        return feeds

    def warmup(self, runs: int | None = None) -> None:
        """A few runs on zeros so the first real frame does not pay for allocation and autotuning."""
        feeds = self.dummy_feeds(self.static_batch or 1)
        for _ in range(self.cfg.warmup_runs if runs is None else runs):
            self.session.run(self._outputs, feeds)

    def mean_ms(self) -> float:
        return float(np.mean(self.timings_ms)) if self.timings_ms else 0.0

    def close(self) -> None:
        self.session = None
