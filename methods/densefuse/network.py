"""densefuse's network in plain torch (the method, its processing and its citation: ``methods.densefuse``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from methods.pretrained import load_network, published
from methods.densefuse import STRATEGIES


class ReflectConv(nn.Module):
    """Reflection-pad 1, 3x3 convolution with bias, ReLU (every DenseFuse layer)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv2d = nn.Conv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect")))


class DenseLayer(nn.Module):
    """One dense-block step: the input concatenated with a ``ReflectConv`` of it."""

    def __init__(self, in_channels: int, growth: int = 16):
        super().__init__()
        self.dense_conv = ReflectConv(in_channels, growth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.dense_conv(x)], dim=1)


class DenseBlock(nn.Module):
    def __init__(self, in_channels: int = 16, growth: int = 16, layers: int = 3):
        super().__init__()
        self.denseblock = nn.Sequential(*[DenseLayer(in_channels + i * growth, growth) for i in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.denseblock(x)


def l1_fusion(features: list[torch.Tensor], radius: int = 1) -> torch.Tensor:
    """DenseFuse's l1-norm rule (Eq. 7-9) on (B, C, H, W) feature maps: block-averaged l1 activity weights."""
    activity = [phi.abs().sum(dim=1, keepdim=True) for phi in features]
    if radius > 0:
        size = 2 * radius + 1
        # zero-padded mean over the block (count_include_pad), as a (2r+1)^2 sum divided by (2r+1)^2
        activity = [F.avg_pool2d(c, size, stride=1, padding=radius) for c in activity]
    total = sum(activity)
    silent = total <= 0                              # no activity anywhere in the block: equal weights
    safe_total = torch.where(silent, torch.ones_like(total), total)
    weights = [torch.where(silent, torch.full_like(c, 1 / len(activity)), c / safe_total) for c in activity]
    return sum(w * phi for w, phi in zip(weights, features))


class DenseFuse(nn.Module):
    """DenseFuse grey network: ``forward(*images)`` encodes each (B, 1, H, W) input, fuses, decodes."""

    def __init__(self, strategy: str = "addition", l1_radius: int = 1):
        super().__init__()
        if strategy not in STRATEGIES:
            raise UserError(f"densefuse: unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
        self.strategy, self.l1_radius = strategy, int(l1_radius)
        self.conv1 = ReflectConv(1, 16)
        self.DB1 = DenseBlock(16)
        self.conv2 = ReflectConv(64, 64)
        self.conv3 = ReflectConv(64, 32)
        self.conv4 = ReflectConv(32, 16)
        self.conv5 = ReflectConv(16, 1)

    def encoder(self, x: torch.Tensor) -> torch.Tensor:
        return self.DB1(self.conv1(x))

    def fusion(self, features: list[torch.Tensor]) -> torch.Tensor:
        if self.strategy == "addition":
            return sum(features) / len(features)
        return l1_fusion(features, self.l1_radius)

    def decoder(self, f: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(f))))

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fusion([self.encoder(x) for x in images]))


def densefuse_network(strategy: str = "addition", l1_radius: int = 1, weights: str | Path | None = None,
                      device: str = "cpu") -> DenseFuse:
    """The DenseFuse network with its weights, loaded once per file; the rule is set per call."""
    if strategy not in STRATEGIES:
        raise UserError(f"densefuse: unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    net = load_network(DenseFuse, (), published("densefuse", "densefuse_gray.model"), weights, device,
                       "DenseFuse (grey)")
    net.strategy, net.l1_radius = strategy, int(l1_radius)
    return net
