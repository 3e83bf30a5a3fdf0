"""matr's network in plain torch (the method, its processing and its citation: ``methods.matr``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.pretrained import load_network, published


class AdaptiveConv(nn.Conv2d):
    """3x3 convolution (no bias, zero padding 1) whose kernel is gated per sample by the input's context.

    For ``in_channels`` up to 16 (the released network: 2 and 16), where the authors' channel grouping is
    a single group."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        taps = kernel_size * kernel_size
        latent = taps // 2 + 1
        self.ce = nn.Linear(taps, latent, bias=False)           # context encoding of each pooled channel
        self.ce_bn = nn.BatchNorm1d(in_channels)
        self.ci_bn2 = nn.BatchNorm1d(in_channels)
        self.ci = nn.Linear(in_channels, out_channels, bias=False)   # channel interaction
        self.ci_bn = nn.BatchNorm1d(out_channels)
        self.gd = nn.Linear(latent, taps, bias=False)           # gate decoding, per input channel
        self.gd2 = nn.Linear(latent, taps, bias=False)          # gate decoding, per output channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k = self.kernel_size[0]
        context = self.ce(F.adaptive_avg_pool2d(x, k).reshape(b, c, k * k))           # (b, c, latent)
        per_input = self.gd(F.relu(self.ce_bn(context)))                               # (b, c, k*k)
        mixed = self.ci(F.relu(self.ci_bn2(context)).transpose(1, 2)).transpose(1, 2)  # (b, out, latent)
        per_output = self.gd2(F.relu(self.ci_bn(mixed)))                               # (b, out, k*k)
        gate = torch.sigmoid(per_input.view(b, 1, c, k, k) + per_output.view(b, self.out_channels, 1, k, k))
        kernels = (gate * self.weight.unsqueeze(0)).reshape(b * self.out_channels, c, k, k)
        out = F.conv2d(x.reshape(1, b * c, h, w), kernels, padding=self.padding, groups=b)
        return out.view(b, self.out_channels, h, w)


class Basic3x3(nn.Module):
    """Adaptive 3x3 convolution, batch norm, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = AdaptiveConv(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(self.conv1(x)))


class SelfAttention1x1(nn.Module):
    """Window attention with a 1x1 window: each token attends to itself only, so the output is
    proj(v). ``qkv`` (query and key rows included), the one-entry relative position table and its index are
    the released parameters."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros(1, num_heads))
        self.register_buffer("relative_position_index", torch.zeros(1, 1, dtype=torch.long))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        value = self.qkv(tokens).unflatten(-1, (3, -1))[..., 2, :]
        return self.proj(value)


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int = 16, num_heads: int = 8, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention1x1(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.reshape(-1, c)      # the authors' x.view(B, H, W, C) of a (B, C, H, W) map: no permute
        tokens = tokens + self.attn(self.norm1(tokens))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return tokens.view(b, c, h, w)


class BasicLayer(nn.Module):
    def __init__(self, dim: int = 16, depth: int = 3, num_heads: int = 8):
        super().__init__()
        self.blocks = nn.ModuleList([TransformerBlock(dim, num_heads) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class OutputConv(nn.Module):
    """1x1 convolution without bias, tanh."""

    def __init__(self, in_channels: int, out_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv1(x))


class MATR(nn.Module):
    """MATR for a (B, 2, H, W) input (channel 0 the other image, channel 1 the MRI); returns (B, 1, H, W)."""

    def __init__(self, in_channels: int = 2, width: int = 16, embed_dim: int = 96):
        super().__init__()
        self.convInput = Basic3x3(in_channels, width)
        self.conv = Basic3x3(width, width)
        self.convolutional_out = OutputConv(width, 1)
        self.patch_embed = nn.Module()
        self.patch_embed.norm = nn.LayerNorm(embed_dim)       # released but unused by the forward pass
        self.basicLayer = BasicLayer(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.convInput(x)
        total = 0
        for _ in range(3):             # scale k: `conv` applied k times, the transformer, `conv` once more
            scale = self.conv(scale)
            total = total + self.conv(self.basicLayer(scale))
        return self.convolutional_out(total)


def matr_network(weights: str | Path | None = None, device: str = "cpu") -> MATR:
    """The MATR network with its weights (``weights`` or the cached ``model_10.pth``), loaded once per file."""
    return load_network(MATR, (), published("matr", "model_10.pth"), weights, device)
