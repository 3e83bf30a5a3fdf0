"""MATR (Tang et al. 2022): multiscale adaptive transformer fusion of a 2-channel (other, MRI) input.

Registered as ``matr(a, b, *, weights=None, device="cpu")``. The network is the authors'
``Networks/net.py`` ``MODEL(in_channel=2)`` written anew in plain torch (paper Sec. III, Fig. 2):

* ``AdaptiveConv`` -- the paper's adaptive convolution (Sec. III-A; the context-gated convolution of Lin
  et al., ECCV 2020, as the authors' ``layers.py`` implements it): the 3x3 kernel is modulated per sample
  by a sigmoid gate built from the input's 3x3 adaptive average pool, G = sigmoid(gd(ReLU(BN(ce(pool))))
  + gd2(ReLU(BN(ci(ReLU(BN(ce(pool)))))))), W' = G * W, then an ordinary zero-padded 3x3 convolution;
* ``Basic3x3`` = adaptive conv, batch norm, ReLU; the encoder applies ``convInput`` (2 -> 16) and then the
  one shared ``conv`` (16 -> 16) one, two and three times for the three scales;
* ``TransformerBlock`` x 3 (one shared ``basicLayer`` for all scales, Sec. III-B): with the released
  window size 1 each token attends only to itself (softmax over one score = 1), so attention is the
  projection of the value, x + proj(v(LN(x))), followed by x + MLP(LN(x)) (GELU, ratio 4). The
  authors' block reshapes the (B, C, H, W) map with ``view(B, H, W, C)``, which reinterprets memory
  instead of moving channels last; the tokens are therefore runs of 16 consecutive values of the
  (B, C, H, W) layout, and this port keeps that (the weights were trained with it);
* each scale is ``conv`` again, the three are summed and a 1x1 convolution with tanh gives the output.
  ``patch_embed.norm`` is in the released state dict but unused by the forward pass; it is kept so that
  keys match strictly.

Slots and processing, as the authors' ``Test.py`` (and ``../shared/peers/outputs/matr``): channel 0 is
``a``, the "other" image (CT, PET/SPECT luma), channel 1 is ``b``, the MRI; the network is not symmetric.
Inputs in [0, 1]; the output is clipped to [0, 1] (the authors' script casts without clipping, which wraps
negative values round to 255), times 255, rounded to the nearest integer and returned divided by 255. The
authors' ``astype(np.uint8)`` truncates, but the reference outputs in ``../shared/peers/outputs/matr`` are
rounded: on CT-MRI pair 16009 truncation matches 40 % of their pixels and rounding 99.997 %.

Weights: ``weights=FILE``, else ``model_10.pth`` in the cache that ``python -m bench weights fetch matr``
fills (``methods/pretrained.py``).

References
----------
W. Tang, F. He, Y. Liu, Y. Duan, "MATR: Multimodal medical image fusion via multiscale adaptive
transformer", IEEE Transactions on Image Processing 31, 5134-5149, 2022. Code and weights:
https://github.com/tthinking/MATR
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from methods.pretrained import load_network, network_complexity, published, weights_check
from methods.registry import register_method

CITATION = ("W. Tang, F. He, Y. Liu, Y. Duan, MATR: Multimodal medical image fusion via multiscale adaptive "
            "transformer, IEEE Trans. Image Process. 31, 2022")


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


def matr_complexity(**_ignored) -> dict:
    """Parameters and MACs on one 256x256 pair (every convolution and linear layer, each use counted)."""
    return network_complexity(MATR().eval(), torch.zeros(1, 2, 256, 256))


@register_method("matr", citation=CITATION, complexity=matr_complexity,
                 unavailable=weights_check(published("matr", "model_10.pth")))
def matr(a: np.ndarray, b: np.ndarray, *, weights: str | None = None, device: str = "cpu") -> np.ndarray:
    """MATR (Tang et al. 2022): adaptive convolutions and a transformer on three scales, authors' weights."""
    net = matr_network(weights, device)
    with torch.inference_mode():
        x = torch.from_numpy(np.stack([a, b]).astype(np.float32))[None].to(device)
        out = net(x)[0, 0].clamp(0, 1).mul(255).cpu().numpy()
    return np.floor(out + np.float32(0.5)) / np.float32(255)     # rounded, as the reference outputs are
