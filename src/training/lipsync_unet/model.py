"""The audio-driven lip-sync U-Net in PyTorch (SyncTalk_2D / Ultralight style, our own definition).

Inputs per frame: `image` [B, 6, S, S] = concat(reference, masked) / 255 (RGB) and
`audio` [B, 1, 80, 16] = a Wav2Lip-style log-mel window (200 ms around the frame),
or [B, F] features from an external audio encoder. Output: `out` [B, 3, S, S] in
[0, 1] (sigmoid). S is 160 (from 168 crops) or 320 (from 328 crops).

The image path is a 5-level U-Net of depthwise-separable convolutions (cheap on a
CPU); the mel window goes through a small conv encoder to a vector that is tiled
over the bottleneck. Only the export/training tools and their tests import this
module: the runtime runs the exported ONNX file with onnxruntime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

N_MELS = 80
MEL_WINDOW = 16


@dataclass(frozen=True)
class UNetConfig:
    """Architecture settings (stored in checkpoints as a plain dict)."""

    size: int = 160
    width: int = 12  # channels at full resolution; doubles per level up to 8x
    audio_dim: int = 64  # audio vector length
    audio_feature_dim: int = 0  # > 0: the audio input is an external encoder's [B, F] features instead of mel

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def for_size(cls, size: int, audio_feature_dim: int = 0) -> UNetConfig:
        """Default widths: 160 is sized for >= 25 fps at batch 1 on a 2-core CPU and for training in minutes
        there (width 12: 0.4 s per batch of 8, 3x forward cost for the backward pass); 320 for quality."""
        if size not in (160, 320):
            raise ValueError(f"size must be 160 or 320, not {size}")
        return cls(size=size, width=12 if size == 160 else 24, audio_dim=64, audio_feature_dim=audio_feature_dim)


class ConvBNAct(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int | tuple[int, int] = 1, groups: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class SepConv(nn.Sequential):
    """Depthwise 3x3 (optionally strided) + pointwise 1x1: ~8x cheaper than a full 3x3 conv."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(ConvBNAct(cin, cin, 3, stride, groups=cin), ConvBNAct(cin, cout, 1))


class AudioEncoder(nn.Module):
    """[B, 1, 80, 16] log-mel -> [B, D]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            ConvBNAct(1, 16, 3, (2, 1)),  # 40 x 16
            ConvBNAct(16, 32, 3, 2),  # 20 x 8
            ConvBNAct(32, 48, 3, 2),  # 10 x 4
            ConvBNAct(48, 64, 3, 2),  # 5 x 2
            nn.Conv2d(64, dim, (5, 2)),  # 1 x 1
            nn.ReLU(inplace=True),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel).flatten(1)


class LipSyncUNet(nn.Module):
    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        ch = [w, 2 * w, 4 * w, 8 * w, 8 * w]  # full, /2, /4, /8, /16
        self.stem = ConvBNAct(6, ch[0], 3, 1)
        self.down = nn.ModuleList([SepConv(ch[i], ch[i + 1], stride=2) for i in range(4)])
        self.refine = nn.ModuleList([SepConv(ch[i + 1], ch[i + 1]) for i in range(4)])
        if cfg.audio_feature_dim > 0:
            self.audio: nn.Module = nn.Sequential(nn.Linear(cfg.audio_feature_dim, cfg.audio_dim), nn.ReLU(inplace=True))
        else:
            self.audio = AudioEncoder(cfg.audio_dim)
        self.fuse = ConvBNAct(ch[4] + cfg.audio_dim, ch[4], 1)
        self.up = nn.ModuleList([SepConv(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(4))])
        self.head = nn.Conv2d(ch[0], 3, 3, 1, 1)

    def forward(self, image: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(image)]
        x = skips[0]
        for down, refine in zip(self.down, self.refine, strict=True):
            x = refine(down(x))
            skips.append(x)
        a = self.audio(audio)  # [B, D]
        a = a[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        x = self.fuse(torch.cat([x, a], dim=1))
        for i, up in enumerate(self.up):
            skip = skips[3 - i]
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = up(torch.cat([x, skip], dim=1))
        return torch.sigmoid(self.head(x))


def build_model(cfg: UNetConfig) -> LipSyncUNet:
    return LipSyncUNet(cfg)


def example_inputs(cfg: UNetConfig, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.rand(batch, 6, cfg.size, cfg.size)
    audio = torch.rand(batch, cfg.audio_feature_dim) if cfg.audio_feature_dim > 0 else torch.rand(batch, 1, N_MELS, MEL_WINDOW) * 8 - 4
    return image, audio
