"""U-Net checkpoints: plain dicts of tensors and numbers, loaded with torch.load(weights_only=True).

A file that needs arbitrary unpickling (it carries code or custom objects) is
refused with a one-line ModelError. Tools only (imports torch).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from src.core.errors import ModelError
from src.training.lipsync_unet.model import LipSyncUNet, UNetConfig, build_model


def save_checkpoint(path: Path, model: LipSyncUNet, extra: dict[str, Any] | None = None) -> None:
    """Atomically write {"unet": config dict, "model": state dict, **extra}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"unet": model.cfg.to_dict(), "model": model.state_dict(), **(extra or {})}, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict; ModelError (one line) when missing, not ours, or carrying code."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ModelError(f"checkpoint {p}: not found; train one with scripts/train_lipsync.py --video TALKING.mp4")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(
            f"checkpoint {p}: contains pickled code or objects, refused (loaded with weights_only=True); "
            "use a checkpoint saved by scripts/train_lipsync.py"
        ) from None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file fails in many ways inside torch.load
        raise ModelError(
            f"checkpoint {p}: unreadable ({type(exc).__name__}); use a checkpoint saved by scripts/train_lipsync.py"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "unet" not in ckpt:
        raise ModelError(f"checkpoint {p}: not a lip-sync U-Net checkpoint (needs 'unet' and 'model'); use scripts/train_lipsync.py")
    return ckpt


def model_from_checkpoint(path: str | Path) -> tuple[LipSyncUNet, dict[str, Any]]:
    ckpt = load_checkpoint(path)
    try:
        cfg = UNetConfig(**ckpt["unet"])
        model = build_model(cfg)
        model.load_state_dict(ckpt["model"])
    except (TypeError, RuntimeError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise ModelError(f"checkpoint {Path(path)}: does not match the U-Net definition ({first}); retrain it") from None
    return model.eval(), ckpt
