"""Train the lip-sync U-Net on one person's talking video. Tools only (imports torch).

Data: the avatar template (frames with a face, crop boxes, mel windows). Each
sample is (reference = a random closed-mouth frame's inner crop, masked = the
inner crop of a frame 4-12 frames away with the mouth blacked out, mel window)
-> this frame's inner crop. Closed-mouth references keep a briefly trained
network from copying the reference's mouth (SyncTalk_2D samples any frame). The
masked input comes from a neighbour because what stays visible of a frame (the
nose, the crop's placement) still tells its own mouth opening (a ridge
regression reads it at r = 0.44 from the nose strip); a neighbour 160-480 ms
away has the same pose to within a pixel or two but an unrelated mouth (r = 0.10),
so the mouth can only come from the audio. At run time the masked input is the
frame itself. Loss: L1 over the crop plus a heavier L1 on the mouth area, plus an
auxiliary loss that makes the audio vector predict the frame's measured mouth
opening through a linear probe (training only, not exported): pixel losses alone
teach the audio path slowly, and a few CPU minutes then fit the training
sentences without learning the sounds. Resumable: `last.pt` holds model, probe,
optimizer and epoch.
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

from src.animation.lipsync_unet.geometry import BORDER, crop_box, mouth_mask, network_input, network_output_to_bgr
from src.animation.lipsync_unet.template import AvatarTemplate, prepare_template
from src.core.config import AppConfig
from src.core.errors import ModelError
from src.training.lipsync_unet.checkpoint import load_checkpoint, save_checkpoint
from src.training.lipsync_unet.model import LipSyncUNet, UNetConfig, build_model

log = logging.getLogger(__name__)

MOUTH_WEIGHT = 4.0
AUX_WEIGHT = 0.2  # the mouth-opening probe's squared error, on standardised openings
NEIGHBOUR = (4, 12)  # the masked input's frame: this many frames before or after the target (inclusive)
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
    """Reference: a random closed-mouth frame (any pose); masked input: a neighbour of the target
    (`neighbours`); so the mouth shape can only come from the audio."""
    refs = rng.choice(ref_pool, size=len(idx))
    masked = neighbours(idx, len(crops), rng)
    image = np.stack([network_input(crops[r], crops[j]) for j, r in zip(masked, refs, strict=True)])
    target = crops[idx][..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    mel = augment_mels(mels[idx], rng) if augment else mels[idx]
    return torch.from_numpy(image), torch.from_numpy(np.ascontiguousarray(mel)), torch.from_numpy(np.ascontiguousarray(target))


def neighbours(idx: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """For each target frame, a frame NEIGHBOUR[0]..NEIGHBOUR[1] frames before or after it, inside 0..n-1
    (mirrored to the other side at the ends; the target itself only when the video is too short)."""
    idx = np.asarray(idx, np.int64)
    off = rng.integers(NEIGHBOUR[0], NEIGHBOUR[1] + 1, size=len(idx)) * rng.choice([-1, 1], size=len(idx))
    j = idx + off
    j = np.where((j < 0) | (j >= n), idx - off, j)
    return np.where((j < 0) | (j >= n), idx, j)


def standardised(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return (v - v.mean()) / max(float(v.std()), 1e-6)


def loss_fn(pred: torch.Tensor, target: torch.Tensor, mouth: torch.Tensor) -> torch.Tensor:
    err = (pred - target).abs()
    return err.mean() + MOUTH_WEIGHT * (err * mouth).sum() / (mouth.sum() * pred.shape[0] * 3 + 1e-6)


class AudioTap:
    """Keeps the audio vector of the last forward pass (a forward hook: no second encoder pass)."""

    def __init__(self, model: LipSyncUNet) -> None:
        self.value: torch.Tensor | None = None
        self._handle = model.audio.register_forward_hook(self._keep)

    def _keep(self, _module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
        self.value = output

    def close(self) -> None:
        self._handle.remove()


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
    probe = torch.nn.Linear(cfg.audio_dim, 1)
    opt = torch.optim.Adam([*model.parameters(), *probe.parameters()], lr=lr)
    start_epoch = 0
    last = out / LAST
    if resume and last.is_file():
        ckpt = load_checkpoint(last)
        if UNetConfig(**ckpt["unet"]) != cfg:
            raise ModelError(
                f"checkpoint {last}: trained with {ckpt['unet']}, now asked for {cfg.to_dict()}; use another --out or the same size"
            )
        model.load_state_dict(ckpt["model"])
        if "probe" in ckpt and "optimizer" in ckpt:
            probe.load_state_dict(ckpt["probe"])
            opt.load_state_dict(ckpt["optimizer"])
        start_epoch = int(ckpt.get("epoch", 0))
        rng = np.random.default_rng(seed + start_epoch)
        log.info("resuming %s at epoch %d", last, start_epoch)
    mouth = torch.from_numpy(mouth_mask(size))[None, None]
    opening = torch.from_numpy(standardised(template.mouth_open))[:, None]
    tap = AudioTap(model)
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
            assert tap.value is not None
            loss = loss + AUX_WEIGHT * torch.nn.functional.mse_loss(probe(tap.value), opening[idx])
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
        save_checkpoint(last, model, {"optimizer": opt.state_dict(), "probe": probe.state_dict(), "epoch": report.epochs_done,
                                      "losses": report.losses})  # fmt: skip
        report.previews.append(write_preview(out / f"preview_epoch{epoch + 1:03d}.png", model, crops, mels, picks,
                                             template.reference_index))
        if out_of_time or (deadline is not None and time.monotonic() > deadline):
            break
    tap.close()
    report.seconds = time.monotonic() - t_start
    return report
