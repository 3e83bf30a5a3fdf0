"""gesenet's network in plain torch (the method, its processing and its citation: ``methods.gesenet``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.pretrained import load_network, published


def gumbel_softmax(logits: torch.Tensor, dim: int, generator: torch.Generator | None, tau: float = 1.0):
    """softmax((logits + g) / tau) over ``dim`` with standard Gumbel noise g drawn from ``generator``."""
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    while bool((u == 0).any()):                            # log(0): redraw, as the authors do
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    return ((logits - (-u.log()).log()) / tau).softmax(dim)


class ConvLeaky(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, slope: float = 0.2):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), self.slope)


class Conv1x1(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SobelMagnitude(nn.Module):
    """|Gx| + |Gy| per channel with the released (fixed Sobel) depth-wise kernels."""

    def __init__(self, channels: int):
        super().__init__()
        self.convx = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.convy = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convx(x).abs() + self.convy(x).abs()


class TwoLayerDense(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLeaky(channels, channels)
        self.conv2 = ConvLeaky(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, self.conv1(x)], dim=1)
        return torch.cat([x, self.conv2(x)], dim=1)


class EdgeEnhancement(nn.Module):
    """EEM: dense features and Sobel edges, each to ``out_channels`` by 1x1 convs, summed, leaky ReLU 0.1."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.dense = TwoLayerDense(in_channels)
        self.convdown = Conv1x1(3 * in_channels, out_channels)
        self.sobelconv = SobelMagnitude(in_channels)
        self.convup = Conv1x1(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.convdown(self.dense(x)) + self.convup(self.sobelconv(x)), 0.1)


class MaskedConvStack(nn.Module):
    """RMM's body: four 3x3 convs whose channels are split dense / sparse by a Gumbel-sampled channel mask;
    sparse channels act only inside the spatial mask; a 1x1 conv collects all four outputs."""

    def __init__(self, channels: int, layers: int = 4):
        super().__init__()
        self.ch_mask = nn.Parameter(torch.zeros(1, channels, layers, 2))
        self.body = nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(layers)])
        self.collect = nn.Conv2d(channels * layers, channels, 1)

    def forward(self, x: torch.Tensor, spatial: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        mask = gumbel_softmax(self.ch_mask, 3, generator)
        dense = [mask[:, :, i:i + 1, :1] for i in range(len(self.body))]
        sparse = [mask[:, :, i:i + 1, 1:] for i in range(len(self.body))]
        outputs, fea = [], x
        for i, conv in enumerate(self.body):
            if i == 0:
                fea = conv(fea)
                fea = fea * sparse[0] * spatial + fea * dense[0]
            else:
                fea_d, fea_s = conv(fea * dense[i - 1]), conv(fea * sparse[i - 1])
                fea = (fea_d * sparse[i] * spatial + fea_d * dense[i]
                       + fea_s * sparse[i] * spatial + fea_s * dense[i] * spatial)
            fea = F.relu(fea)
            outputs.append(fea)
        return self.collect(torch.cat(outputs, dim=1))


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv_du = nn.Sequential(nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(),
                                     nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(F.adaptive_avg_pool2d(x, 1))


class RegionMask(nn.Module):
    """RMM: Gumbel-sampled spatial mask, masked conv stack, channel attention, residual."""

    def __init__(self, channels: int = 32):
        super().__init__()
        quarter = channels // 4
        self.spa_mask = nn.Sequential(nn.Conv2d(channels, quarter, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                                      nn.Conv2d(quarter, quarter, 3, padding=1), nn.ReLU(),
                                      nn.ConvTranspose2d(quarter, 2, 3, 2, 1, output_padding=1))
        self.body = MaskedConvStack(channels)
        self.ca = ChannelAttention(channels)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        spatial = gumbel_softmax(self.spa_mask(x), 1, generator)[:, 1:]
        return self.ca(self.body(x, spatial, generator)) + x


class GlobalRefinement(nn.Module):
    """GRM: spatial feature transform of the fused features by a condition (the MRI's EEM features)."""

    def __init__(self):
        super().__init__()
        self.SFT_scale_conv0 = nn.Conv2d(32, 32, 3, padding=1)
        self.SFT_scale_conv1 = nn.Conv2d(32, 64, 3, padding=1)
        self.SFT_shift_conv0 = nn.Conv2d(32, 32, 1)
        self.SFT_shift_conv1 = nn.Conv2d(32, 64, 1)
        self.SFT2 = nn.Conv2d(128, 64, 3, padding=1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(condition), 0.1))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(condition), 0.1))
        return F.leaky_relu(self.SFT2(torch.cat([x, scale], dim=1)), 0.01) + shift


class TanhOutput(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 3, padding=1)
        self.bn = nn.BatchNorm2d(1)                       # released but unused by the forward pass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x)) / 2 + 0.5


class GeSeNet(nn.Module):
    """GeSeNet: ``forward(other, mri, generator)`` on (B, 1, H, W) inputs in [0, 1]; H and W even."""

    def __init__(self):
        super().__init__()
        self.vis_conv, self.vis_eem, self.vis_rmm = ConvLeaky(1, 16), EdgeEnhancement(16, 32), RegionMask(32)
        self.inf_conv, self.inf_eem, self.inf_rmm = ConvLeaky(1, 16), EdgeEnhancement(16, 32), RegionMask(32)
        self.sft = GlobalRefinement()
        self.decoder2 = ConvLeaky(96, 32)
        self.decoder1 = TanhOutput(32)

    def forward(self, other: torch.Tensor, mri: torch.Tensor, generator: torch.Generator | None = None):
        other_edges = self.vis_eem(self.vis_conv(other))
        other_regions = self.vis_rmm(other_edges, generator)
        mri_edges = self.inf_eem(self.inf_conv(mri))
        mri_regions = self.inf_rmm(mri_edges, generator)
        x = self.sft(torch.cat([other_regions, mri_regions], dim=1), mri_edges)
        return self.decoder1(self.decoder2(torch.cat([x, other_edges], dim=1)))


def gesenet_network(weights: str | Path | None = None, device: str = "cpu") -> GeSeNet:
    """The GeSeNet network with its weights (``weights`` or the cached ``GeSeNet.pth``), loaded once per file."""
    return load_network(GeSeNet, (), published("gesenet", "GeSeNet.pth"), weights, device)
