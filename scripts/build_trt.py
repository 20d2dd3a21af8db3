#!/usr/bin/env python3
"""Build fp16 TensorRT engines for the ONNX models (through onnxruntime's TensorRT execution provider cache).

    .venv/bin/python scripts/build_trt.py --models /path/to/liveportrait_onnx out/unet160.onnx [--fp32]

Needs the `tensorrt` Python package, an NVIDIA GPU (nvidia-smi) and an onnxruntime build with
TensorrtExecutionProvider; otherwise it exits 2 with one line saying what is missing. Each model
is loaded once with trt_engine_cache_enable so TensorRT builds and stores its engine in
animation.onnx.trt_cache_dir; puppetcam_trt.json next to the engines records the GPU and
TensorRT version, and a cache built for another GPU or TensorRT version is refused at load time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def missing_requirements() -> list[str]:
    """What this machine lacks for TensorRT (empty when everything is there)."""
    from src.animation.onnx_session import available_providers, trt_environment

    env = trt_environment()
    missing = []
    if not env["tensorrt"]:
        missing.append("the tensorrt Python package")
    if not env["gpu"]:
        missing.append("an NVIDIA GPU (nvidia-smi finds none)")
    if "TensorrtExecutionProvider" not in available_providers():
        missing.append("onnxruntime with TensorrtExecutionProvider (onnxruntime-gpu)")
    return missing


def onnx_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        files += sorted(p.glob("*.onnx")) if p.is_dir() else [p]
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Build TensorRT engines (fp16) for ONNX models.")
    ap.add_argument("--models", nargs="+", required=True, help=".onnx files or folders of them")
    ap.add_argument("--fp32", action="store_true", help="build fp32 engines instead of fp16")
    ap.add_argument("--cache-dir", default=None, help="engine cache (default: animation.onnx.trt_cache_dir)")
    args = ap.parse_args(argv)
    missing = missing_requirements()
    if missing:
        print(f"build_trt: cannot build TensorRT engines here: missing {', '.join(missing)}; run on a machine with an NVIDIA GPU",
              file=sys.stderr)  # fmt: skip
        return 2
    from src.animation.onnx_session import BATCH, ModelSpec, OnnxModel, trt_environment, write_trt_metadata
    from src.core.config import OnnxConfig, load_config

    files = onnx_files(args.models)
    absent = [str(f) for f in files if not f.is_file()]
    if absent or not files:
        print(f"build_trt: no such model file(s): {', '.join(absent) or 'none given'}; pass .onnx files or folders", file=sys.stderr)
        return 2
    cfg = load_config().animation.onnx
    cache = Path(args.cache_dir or cfg.trt_cache_dir).expanduser()
    onnx_cfg = OnnxConfig(provider="tensorrt", fp16=not args.fp32, warmup_runs=1, trt_cache_dir=str(cache))
    # Remove stale metadata first: the engines are about to be (re)built for this machine.
    (cache / "puppetcam_trt.json").unlink(missing_ok=True)
    for f in files:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        spec = ModelSpec({i.name: (BATCH, *i.shape[1:]) for i in sess.get_inputs()}, {})
        model = OnnxModel(f, spec, onnx_cfg)
        model.warmup(1)  # the first run builds and caches the engine
        print(f"built {f.name}: providers {', '.join(model.providers)}")
    write_trt_metadata(cache, trt_environment(), fp16=not args.fp32)
    print(f"engines in {cache}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
