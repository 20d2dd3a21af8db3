"""Export the U-Net to ONNX (dynamic batch) and check ONNX Runtime against PyTorch. Tools only (torch)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.core.errors import ModelError
from src.training.lipsync_unet.checkpoint import model_from_checkpoint
from src.training.lipsync_unet.model import LipSyncUNet, UNetConfig, build_model, example_inputs

PARITY_TOLERANCE = 1e-4
OPSET = 17


def random_model(size: int, seed: int = 0, audio_feature_dim: int = 0) -> LipSyncUNet:
    """Random weights with non-trivial BatchNorm statistics (cost does not depend on weight values)."""
    torch.manual_seed(seed)
    model = build_model(UNetConfig.for_size(size, audio_feature_dim))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert m.running_mean is not None and m.running_var is not None  # BatchNorm2d tracks running stats by default
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def to_onnx_bytes(model: LipSyncUNet) -> bytes:
    model = model.eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            model,
            example_inputs(model.cfg, 1),
            buf,  # type: ignore[arg-type]  # the TorchScript exporter (dynamo=False) writes to a file object too; torch annotates paths only
            input_names=["image", "audio"],
            output_names=["out"],
            dynamic_axes={"image": {0: "B"}, "audio": {0: "B"}, "out": {0: "B"}},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter needs no onnxscript
        )
    return buf.getvalue()


def parity(model: LipSyncUNet, onnx_model: bytes | str | Path, batch: int = 2, seed: int = 1) -> float:
    """Max |ONNX Runtime - PyTorch| on the same random input."""
    import onnxruntime as ort

    torch.manual_seed(seed)
    image, audio = example_inputs(model.cfg, batch)
    with torch.no_grad():
        ref = model.eval()(image, audio).numpy()
    src = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    got = sess.run(["out"], {"image": image.numpy(), "audio": audio.numpy()})[0]
    return float(np.abs(got - ref).max())


def export_unet(out_path: str | Path, checkpoint: str | Path | None = None, size: int = 160, seed: int = 0) -> dict[str, Any]:
    """Export a checkpoint (or random weights when None) and verify parity; returns a summary."""
    model = model_from_checkpoint(checkpoint)[0] if checkpoint else random_model(size, seed)
    data = to_onnx_bytes(model)
    diff = parity(model, data)
    if diff > PARITY_TOLERANCE:
        raise ModelError(f"export {out_path}: ONNX Runtime differs from PyTorch by {diff:.2e} (> {PARITY_TOLERANCE}); not written")
    out = Path(out_path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return {"path": str(out), "size": model.cfg.size, "width": model.cfg.width, "max_abs_diff": diff, "bytes": len(data)}
