"""DenseFuse (Li & Wu 2019): a dense-block auto-encoder whose encoder features are fused by a fixed rule.

Registered as ``densefuse(a, b, *, strategy="addition", l1_radius=1, weights=None, device="cpu")``. The
network is the authors' PyTorch ``net.py`` (grey model) written anew in plain torch (paper Fig. 1,
Sec. III-A): every convolution is 3x3 on a reflection-padded input, with bias and ReLU (the PyTorch release
applies ReLU after the last layer as well, and so does this port);

* encoder: C1 (1 -> 16), then a dense block of three convolutions (16 -> 16 each), each output concatenated
  to its input, giving 64 feature maps;
* fusion layer (Sec. III-C): ``addition`` -- the PyTorch release's ``(phi_1 + phi_2) / 2``, the mean
  of the two feature maps (the paper's addition strategy, Eq. 6, halved; the release's weights were
  used with the half), or ``l1`` -- the l1-norm strategy (Eq. 7-9): activity
  C_i = ||phi_i(x, y)||_1 over the 64 channels, averaged over a (2r + 1)^2 block (``l1_radius`` r; the
  paper uses r = 1, the authors' TensorFlow release r = 0), weights w_i = C_i / (C_1 + C_2), f = sum w_i phi_i;
* decoder: C2 (64 -> 64), C3 (64 -> 32), C4 (32 -> 16), C5 (16 -> 1).

Slots and processing, as the authors' ``test_image.py`` (and ``../shared/peers/outputs/densefuse``): ``a``
is the "other" image (CT, PET/SPECT luma) and ``b`` the MRI, encoded separately and fused with symmetric
rules. Inputs are grey values in [0, 255] (float, no normalisation); the output is clamped to [0, 255] and
truncated to uint8 (``astype('uint8')``), returned divided by 255. Only ``addition`` has a reference output.

Weights: ``weights=FILE``, else ``densefuse_gray.model`` in the cache that ``python -m bench weights fetch
densefuse`` fills (``methods/pretrained.py``).

References
----------
H. Li, X.-J. Wu, "DenseFuse: A fusion approach to infrared and visible images", IEEE Transactions on
Image Processing 28(5), 2614-2623, 2019. Code and weights: https://github.com/hli1221/densefuse-pytorch
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import UserError
from methods.pretrained import load_network, network_complexity, published, weights_check
from methods.registry import between, one_of, register_method

CITATION = ("H. Li, X.-J. Wu, DenseFuse: A fusion approach to infrared and visible images, "
            "IEEE Trans. Image Process. 28(5), 2019")
STRATEGIES = ("addition", "l1")


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


def densefuse_complexity(**_ignored) -> dict:
    """Parameters and MACs on one 256x256 pair (two encoder passes, one decoder pass); rule-free."""
    return network_complexity(DenseFuse(), *[torch.zeros(1, 1, 256, 256)] * 2)


@register_method("densefuse", citation=CITATION, complexity=densefuse_complexity,
                 unavailable=weights_check(published("densefuse", "densefuse_gray.model")),
                 allowed={"strategy": one_of(STRATEGIES), "l1_radius": between(0, 16)})
def densefuse(a: np.ndarray, b: np.ndarray, *, strategy: str = "addition", l1_radius: int = 1,
              weights: str | None = None, device: str = "cpu") -> np.ndarray:
    """DenseFuse (Li & Wu 2019): dense-block encoder, addition or l1-norm feature fusion, authors' weights."""
    net = densefuse_network(strategy, l1_radius, weights, device)
    with torch.inference_mode():
        inputs = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32) * np.float32(255))[None, None]
                  .to(device) for x in (a, b)]
        out = net(*inputs)[0, 0].clamp(0, 255).cpu().numpy()
    return out.astype(np.uint8).astype(np.float32) / np.float32(255)   # truncation, as astype('uint8')
