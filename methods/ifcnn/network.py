"""IFCNN's network in plain torch (the method, its processing and its citation: ``methods.ifcnn``)."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError
from methods.ifcnn import SCHEMES, snapshot
from methods.pretrained import load_network


class ReplicateConvBlock(nn.Module):
    """Replicate-pad 1, 3x3 convolution without bias, batch norm, ReLU (IFCNN's CONV2 and CONV3)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(F.pad(x, (1, 1, 1, 1), mode="replicate"))))


class IFCNN(nn.Module):
    """IFCNN for any number of same-size (B, 3, H, W) inputs; returns (B, 3, H, W) (paper Fig. 2)."""

    def __init__(self, scheme: str = "max"):
        super().__init__()
        if scheme not in SCHEMES:
            raise UserError(f"ifcnn: unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
        self.scheme = scheme
        self.conv1 = nn.Conv2d(3, 64, 7, bias=False)      # ResNet-101 conv1, used with stride 1
        self.conv2 = ReplicateConvBlock(64)
        self.conv3 = ReplicateConvBlock(64)
        self.conv4 = nn.Conv2d(64, 3, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(F.pad(x, (3, 3, 3, 3), mode="replicate")))

    def fuse_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        stacked = torch.stack(features)
        if self.scheme == "max":                              # Eq. (4)
            return stacked.amax(dim=0)
        if self.scheme == "sum":                              # Eq. (5)
            return stacked.sum(dim=0)
        return stacked.mean(dim=0)                            # Eq. (6)

    def forward(self, *images: torch.Tensor) -> torch.Tensor:
        return self.conv4(self.conv3(self.fuse_features([self.features(x) for x in images])))


def ifcnn_network(scheme: str = "max", weights: str | Path | None = None, device: str = "cpu") -> IFCNN:
    """The IFCNN of ``scheme`` with its weights (``weights`` or the cached snapshot), loaded once per file."""
    if scheme not in SCHEMES:
        raise UserError(f"ifcnn: unknown scheme {scheme!r} (known: {', '.join(SCHEMES)})")
    return load_network(IFCNN, (scheme,), snapshot(scheme), weights, device, f"IFCNN-{scheme.upper()}")
