"""Train the lip-sync U-Net on one person's talking video. Tools only (imports torch).

Data: the avatar template (frames with a face, crop boxes, mel windows). Each
sample is (reference = a random closed-mouth frame's inner crop, masked = this
frame's inner crop with the mouth blacked out, mel window) -> this frame's
inner crop (SyncTalk_2D samples any frame as the reference; closed-mouth ones
keep a briefly trained network from copying the reference's mouth). Loss: L1 over the crop plus a heavier L1
on the mouth area. Resumable: `last.pt` holds model, optimizer and epoch.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from src.animation.lipsync_unet.checkpoint import load_checkpoint, save_checkpoint
from src.animation.lipsync_unet.geometry import BORDER, crop_box, mouth_mask, network_input, network_output_to_bgr
from src.animation.lipsync_unet.model import UNetConfig, build_model
from src.animation.lipsync_unet.template import AvatarTemplate, prepare_template
from src.config import AppConfig
from src.errors import ModelError

log = logging.getLogger(__name__)

MOUTH_WEIGHT = 4.0
LAST = "last.pt"


@dataclass
class TrainReport:
    checkpoint: Path
    epochs_done: int
    losses: list[float] = field(default_factory=list)  # mean loss per epoch (this run)
    previews: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    frames: int = 0
    steps: int = 0  # optimizer steps in this run


def load_dataset(template: AvatarTemplate, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(inner crops [n, S, S, 3] uint8 BGR, mel windows [n, 1, 80, 16])."""
    cs = size + 2 * BORDER
    inner = slice(BORDER, BORDER + size)
    crops = np.stack([crop_box(template.frame(i), template.boxes[i], cs)[inner, inner] for i in range(len(template))])
    return crops, template.mels.astype(np.float32)


def augment_mels(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[b, 1, 80, 16] normalised log-mel windows with a random level (+-7.5 dB), a masked band of up
    to 8 mel bins (SpecAugment) and a little noise: a few minutes of one voice is little data, and a
    network that can read the exact spectrum memorises the training sentences instead of the sounds."""
    out = mel.copy()
    b = len(out)
    out += rng.uniform(-0.6, 0.6, size=(b, 1, 1, 1)).astype(np.float32)
    for k in range(b):
        if rng.random() < 0.5:
            w = int(rng.integers(1, 9))
            f0 = int(rng.integers(0, out.shape[2] - w))
            out[k, :, f0 : f0 + w, :] = out[k].mean()
    out += rng.normal(0.0, 0.05, size=out.shape).astype(np.float32)
    return np.clip(out, -4.0, 4.0)


def make_batch(
    crops: np.ndarray, mels: np.ndarray, idx: np.ndarray, rng: np.random.Generator, ref_pool: np.ndarray,
    augment: bool = True,
) -> tuple[torch.Tensor, ...]:  # fmt: skip
    """Reference: a random closed-mouth frame (any pose), so the mouth shape can only come from the audio."""
    refs = rng.choice(ref_pool, size=len(idx))
    image = np.stack([network_input(crops[r], crops[i]) for i, r in zip(idx, refs, strict=True)])
    target = crops[idx][..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    mel = augment_mels(mels[idx], rng) if augment else mels[idx]
    return torch.from_numpy(image), torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(np.ascontiguousarray(target))


def loss_fn(pred: torch.Tensor, target: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
    err = (pred - target).abs()
    return err.mean() + MOUTH_WEIGHT * (err * mouth).sum() / (mouth.sum() * pred.shape[0] * 3 + 1e-6)


def _progress(epoch: int, epochs: int, done: int, total: int, loss: float, t0: float) -> None:
    width = 24
    frac = done / max(total, 1)
    bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
    rate = done / max(time.monotonic() - t0, 1e-6)
    sys.stderr.write(f"\repoch {epoch}/{epochs} [{bar}] {frac:4.0%} loss {loss:.4f} {rate:5.1f} batch/s")
    sys.stderr.flush()


def write_preview(path: Path, model: torch.nn.Module, crops: np.ndarray, mels: np.ndarray, picks: np.ndarray, refs: np.ndarray) -> Path:
    """One row per picked frame (with its run-time reference): masked input | prediction | target."""
    model.eval()
    with torch.no_grad():
        image = torch.from_numpy(np.stack([network_input(crops[refs[i]], crops[i]) for i in picks]))
        pred = model(image, torch.from_numpy(mels[picks])).numpy()
    rows = []
    for j, i in enumerate(picks):
        masked = network_output_to_bgr(image[j, 3:].numpy())
        rows.append(np.concatenate([masked, network_output_to_bgr(pred[j]), crops[i]], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(rows, axis=0))
    model.train()
    return path


def train_lipsync(
    video: str | Path,
    out_dir: str | Path,
    config: AppConfig,
    *,
    size: int = 160,
    epochs: int = 20,
    batch_size: int = 8,
    lr: float = 2e-3,
    max_minutes: float | None = None,
    resume: bool = True,
    seed: int = 0,
    progress: bool = True,
    width: int | None = None,
) -> TrainReport:
    """Train (or continue training) and return where the checkpoint is."""
    t_start = time.monotonic()
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    template = AvatarTemplate.load(prepare_template(video, config))
    crops, mels = load_dataset(template, size)
    cfg = UNetConfig.for_size(size)
    if width:
        cfg = UNetConfig(size=size, width=width, audio_dim=cfg.audio_dim)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    start_epoch = 0
    last = out / LAST
    if resume and last.is_file():
        ckpt = load_checkpoint(last)
        if UNetConfig(**ckpt["unet"]) != cfg:
            raise ModelError(
                f"checkpoint {last}: trained with {ckpt['unet']}, now asked for {cfg.to_dict()}; use another --out or the same size"
            )
        model.load_state_dict(ckpt["model"])
        if "optimizer" in ckpt:
            opt.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt.get("epoch", 0))
        rng = np.random.default_rng(seed + start_epoch)
        log.info("resuming %s at epoch %d", last, start_epoch)
    mouth = torch.from_numpy(mouth_mask(size))[None, None]
    picks = np.linspace(0, len(crops) - 1, num=min(4, len(crops))).astype(int)
    report = TrainReport(checkpoint=last, epochs_done=start_epoch, frames=len(crops))
    deadline = t_start + max_minutes * 60.0 if max_minutes is not None else None
    model.train()
    for epoch in range(start_epoch, epochs):
        order = rng.permutation(len(crops))
        batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        total, t0, last_print, done = 0.0, time.monotonic(), 0.0, 0
        out_of_time = False
        for b, idx in enumerate(batches):
            if deadline is not None and time.monotonic() > deadline:
                out_of_time = True  # stop mid-epoch: the checkpoint keeps this epoch's number, a resume redoes it
                break
            image, mel, target = make_batch(crops, mels, idx, rng, template.closed)
            loss = loss_fn(model(image, mel), target, mouth)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            done = b + 1
            if progress and (time.monotonic() - last_print > 0.5 or b + 1 == len(batches)):
                last_print = time.monotonic()
                _progress(epoch + 1, epochs, b + 1, len(batches), total / (b + 1), t0)
        if progress:
            sys.stderr.write("\n")
        if done:
            report.losses.append(total / done)
            report.steps += done
        report.epochs_done = epoch + (0 if out_of_time else 1)
        save_checkpoint(last, model, {"optimizer": opt.state_dict(), "epoch": report.epochs_done, "losses": report.losses})
        report.previews.append(write_preview(out / f"preview_epoch{epoch + 1:03d}.png", model, crops, mels, picks,
                                             template.reference_index))
        if out_of_time or (deadline is not None and time.monotonic() > deadline):
            break
    report.seconds = time.monotonic() - t_start
    return report
