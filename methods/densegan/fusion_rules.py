"""Feature-fusion rules for encoder-decoder fusion networks, behind one registry.

Every rule fuses K >= 2 feature maps ``phi_k`` of shape (N, C, H, W) (one per source, from the shared
encoder) into one map of the same shape. Each rule exists twice, kornia style: as a plain function
(``lmax_fusion(features)``) and as a small parameter-free ``nn.Module`` (``LmaxFusion()(features)``), so a
network can hold it as a layer. ``FUSION_RULES`` maps a name to the function; ``fusion_layer(name)``
returns the module. A new rule is one decorated function.

References
----------
C. Zhao, T. Wang, B. Lei, "Medical image fusion method based on dense block and deep convolutional
generative adversarial network", Neural Computing and Applications 33(12), 2021 (published online 13 Oct 2020) (the Lmax-norm rule).
H. Li, X.-J. Wu, "DenseFuse: a fusion approach to infrared and visible images", IEEE TIP 28(5), 2019
(the addition and l1-norm rules, Eqs. 1-3).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import UserError

FusionFn = Callable[[Sequence[torch.Tensor]], torch.Tensor]
FUSION_RULES: dict[str, FusionFn] = {}

# Activity maps are non-negative; a position where every source has zero activity has all-zero
# features too, so any weights give the same (zero) result there: the clamp only avoids 0/0.
_TINY = 1e-12


def register_fusion_rule(name: str):
    """Decorator: register ``fn(features) -> fused`` under ``name``."""
    def decorate(fn: FusionFn) -> FusionFn:
        if name in FUSION_RULES:
            raise ValueError(f"fusion rule {name!r} registered twice")
        FUSION_RULES[name] = fn
        return fn
    return decorate


def get_fusion_rule(name: str) -> FusionFn:
    try:
        return FUSION_RULES[name]
    except KeyError:
        raise UserError(f"unknown fusion rule {name!r} (known: {', '.join(FUSION_RULES)})") from None


def _stack(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """(K, N, C, H, W) from K same-shaped feature maps."""
    if len(features) < 2:
        raise ValueError(f"a fusion rule needs at least two feature maps, got {len(features)}")
    shapes = {tuple(f.shape) for f in features}
    if len(shapes) != 1:
        raise ValueError(f"feature maps differ in shape: {sorted(shapes)}")
    return torch.stack(tuple(features), dim=0)


def activity_weighted(stacked: torch.Tensor, activity: torch.Tensor) -> torch.Tensor:
    """Soft-weighted sum: w_k = act_k / sum_j act_j per position, fused = sum_k w_k phi_k.

    ``stacked`` is (K, N, C, H, W); ``activity`` is (K, N, 1, H, W), non-negative.
    """
    weights = activity / activity.sum(dim=0, keepdim=True).clamp_min(_TINY)
    return (weights * stacked).sum(dim=0)


@register_fusion_rule("lmax")
def lmax_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Lmax-norm rule (Zhao, Wang, Lei 2021): activity = L-infinity norm over channels.

    act_k(x, y) = max_c |phi_k^c(x, y)|, w_k = act_k / sum_j act_j, F = sum_k w_k phi_k.

    Notes
    -----
    Two sources without autograd (inference) take a short path with the same value (to float rounding,
    ~1e-7): act = max(max_c phi, -min_c phi) and F = phi_b + w_a (phi_a - phi_b), which skips the
    stacked copy and the full-size |phi| (about 3x faster on a 256x256 pair). Training keeps the general
    form, so the shipped weights are reproduced bit for bit by their training command.
    """
    if len(features) == 2 and not torch.is_grad_enabled():
        phi_a, phi_b = features
        if phi_a.shape != phi_b.shape:
            raise ValueError(f"feature maps differ in shape: {sorted({tuple(phi_a.shape), tuple(phi_b.shape)})}")
        act_a = torch.maximum(phi_a.amax(dim=1, keepdim=True), phi_a.amin(dim=1, keepdim=True).neg_())
        act_b = torch.maximum(phi_b.amax(dim=1, keepdim=True), phi_b.amin(dim=1, keepdim=True).neg_())
        weight_a = act_a / (act_a + act_b).clamp_min_(_TINY)
        return torch.addcmul(phi_b, weight_a, phi_a - phi_b)
    stacked = _stack(features)
    return activity_weighted(stacked, stacked.abs().amax(dim=2, keepdim=True))


@register_fusion_rule("l1")
def l1_fusion(features: Sequence[torch.Tensor], radius: int = 1) -> torch.Tensor:
    """DenseFuse l1-norm rule (Li and Wu 2019, Eqs. 1-3).

    C_k = ||phi_k(x, y)||_1 over channels, averaged over a (2r+1)^2 block (r = 1, zero padding counted,
    as DenseFuse's ``avg_pool2d`` does), w_k = C_k / sum_j C_j, F = sum_k w_k phi_k.
    """
    stacked = _stack(features)
    k, n, _, h, w = stacked.shape
    l1 = stacked.abs().sum(dim=2).reshape(k * n, 1, h, w)
    activity = F.avg_pool2d(l1, 2 * radius + 1, stride=1, padding=radius).reshape(k, n, 1, h, w)
    return activity_weighted(stacked, activity)


@register_fusion_rule("addition")
def addition_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """DenseFuse addition rule: F = sum_k phi_k."""
    return _stack(features).sum(dim=0)


@register_fusion_rule("mean")
def mean_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Element-wise mean: F = (1/K) sum_k phi_k."""
    return _stack(features).mean(dim=0)


@register_fusion_rule("max")
def max_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Element-wise choose-max: F = max_k phi_k (per channel and position)."""
    return _stack(features).amax(dim=0)


class FusionLayer(nn.Module):
    """A registered fusion rule as a parameter-free layer: ``FusionLayer("lmax")(phi_a, phi_b)``."""

    def __init__(self, rule: str = "lmax"):
        super().__init__()
        self.rule = rule
        self.fn = get_fusion_rule(rule)

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return self.fn(features)

    def extra_repr(self) -> str:
        return f"rule={self.rule!r}"


class LmaxFusion(FusionLayer):
    def __init__(self):
        super().__init__("lmax")


class L1Fusion(FusionLayer):
    def __init__(self):
        super().__init__("l1")


class AdditionFusion(FusionLayer):
    def __init__(self):
        super().__init__("addition")


class MeanFusion(FusionLayer):
    def __init__(self):
        super().__init__("mean")


class MaxFusion(FusionLayer):
    def __init__(self):
        super().__init__("max")


def fusion_layer(rule: str) -> FusionLayer:
    """The module form of a registered rule."""
    return FusionLayer(rule)
