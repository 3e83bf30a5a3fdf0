"""More feature-fusion rules for the dense-block GAN (issue #6), registered into ``FUSION_RULES``.

Fixed (parameter-free) rules, usable in training (``model.fusion_rule``) and at test time
(``fusion_rule=`` of every densegan method):

* ``l1-softmax``   -- DenseFuse l1-norm activity, spatially smoothed, turned into weights by a true
  soft-max with a temperature relative to the local activity level.
* ``nestfuse``     -- NestFuse spatial attention (l1-norm + soft-max) averaged with channel attention
  from nuclear-norm pooling (Li, Wu, Durrani 2020; nuclear pooling as in RFN-Nest's fusion strategy code).
* ``nestfuse-avg`` -- the same with global average pooling for the channel attention (cheaper).
* ``local-energy`` -- our noise-robust rule: local feature energy over all channels and a Gaussian
  neighbourhood, minus a robust (MAD) noise floor, as the activity (see ``local_energy_fusion``).

Learned rule (``model.fusion_rule: rfn``): ``ResidualFusionNetwork``, RFN-Nest's residual fusion block
(Li, Wu, Kittler 2021), trained in a second stage with the encoder and decoder frozen
(``train.init_from`` + ``train.freeze``, see methods/configs/densegan-plus-rfn.yaml). ``make_fusion`` is
the one builder the generator uses: a learned rule's module, else ``FusionLayer(rule)``.

References
----------
H. Li, X.-J. Wu, "DenseFuse: a fusion approach to infrared and visible images", IEEE TIP 28(5), 2019.
H. Li, X.-J. Wu, T. Durrani, "NestFuse: an infrared and visible image fusion architecture based on nest
connection and spatial/channel attention models", IEEE TIM 69(12), 2020 (Eqs. 3-8).
H. Li, X.-J. Wu, J. Kittler, "RFN-Nest: an end-to-end residual fusion network for infrared and visible
images", Information Fusion 73, 2021 (Sec. 3.2, Fig. 4: the RFN block).
D. L. Donoho, I. M. Johnstone, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81(3), 1994
(the MAD noise estimate sigma = median|x| / 0.6745).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from methods.densegan.fusion_rules import (_TINY, FusionLayer, _stack, activity_weighted,
                                           register_fusion_rule)

# Temperature of ``l1-softmax`` relative to the mean activity at a position: exp(C_k / (T * mean_j C_j)).
SOFTMAX_TEMPERATURE = 0.25
# Gaussian neighbourhood of ``local-energy`` (sigma in feature pixels, truncated at 3 sigma).
ENERGY_SIGMA = 1.5
MAD_TO_SIGMA = 0.6745     # median |N(0, s^2)| = 0.6745 s


def _smooth(maps: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 2-D filtering of (K, N, 1, H, W) maps with a (s, s) kernel, reflection padding."""
    k, n, c, h, w = maps.shape
    r = kernel.shape[-1] // 2
    flat = F.pad(maps.reshape(k * n * c, 1, h, w), (r, r, r, r), mode="reflect" if min(h, w) > r else "replicate")
    return F.conv2d(flat, kernel[None, None].to(maps)).reshape(k, n, c, h, w)


def gaussian_kernel(sigma: float, leave_centre_out: bool = False) -> torch.Tensor:
    """(s, s) Gaussian kernel (radius 3 sigma) summing to 1; optionally with a zero centre tap."""
    radius = max(1, int(round(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    kernel = g[:, None] * g[None, :]
    if leave_centre_out:
        kernel[radius, radius] = 0.0
    return kernel / kernel.sum()


@register_fusion_rule("l1-softmax")
def l1_softmax_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """DenseFuse l1-norm activity, spatially smoothed, soft-max weights.

    C_k = ||phi_k(x, y)||_1 (over channels) averaged over a 3x3 block (DenseFuse Eq. 2), then
    w_k = exp(C_k / tau) / sum_j exp(C_j / tau) with tau = T * mean_j C_j (T = ``SOFTMAX_TEMPERATURE``).

    Notes
    -----
    DenseFuse's own rule (``l1``) normalises the activities linearly (w_k = C_k / sum C_j), which never
    reaches a clear choice: twice the activity only gives 2/3 of the weight. A temperature relative to the
    local mean makes the rule scale-free (features of any magnitude give the same weights) and sharper:
    with T = 0.25 twice the activity gives w = 0.94. Weights sum to 1; equal activities give 1/K each.
    """
    stacked = _stack(features)
    k, n, _, h, w = stacked.shape
    l1 = stacked.abs().sum(dim=2).reshape(k * n, 1, h, w)
    activity = F.avg_pool2d(l1, 3, stride=1, padding=1).reshape(k, n, 1, h, w)
    tau = SOFTMAX_TEMPERATURE * activity.mean(dim=0, keepdim=True).clamp_min(_TINY)
    weights = torch.softmax(activity / tau, dim=0)
    return (weights * stacked).sum(dim=0)


def spatial_attention_fusion(stacked: torch.Tensor) -> torch.Tensor:
    """NestFuse spatial attention (Eqs. 3-5): l1-norm over channels, w_k = C_k / sum_j C_j."""
    return activity_weighted(stacked, stacked.abs().sum(dim=2, keepdim=True))


def channel_attention_fusion(stacked: torch.Tensor, pooling: str = "nuclear") -> torch.Tensor:
    """NestFuse channel attention (Eqs. 6-8): one global statistic per channel and source, normalised.

    ``pooling``: ``nuclear`` = sum of the singular values of the (H, W) channel map (RFN-Nest's choice),
    ``average`` = global average pooling. beta_k^c = P_k^c / sum_j P_j^c, F^c = sum_k beta_k^c phi_k^c.
    """
    if pooling == "nuclear":
        pooled = torch.linalg.matrix_norm(stacked, ord="nuc")[..., None, None]      # (K, N, C, 1, 1)
    elif pooling == "average":
        pooled = stacked.abs().mean(dim=(3, 4), keepdim=True)
    else:
        raise ValueError(f"channel-attention pooling must be 'nuclear' or 'average', got {pooling!r}")
    weights = pooled / pooled.sum(dim=0, keepdim=True).clamp_min(_TINY)
    return (weights * stacked).sum(dim=0)


@register_fusion_rule("nestfuse")
def nestfuse_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """NestFuse: mean of the spatial-attention and (nuclear-norm) channel-attention fusions (Eq. 9)."""
    stacked = _stack(features)
    return 0.5 * (spatial_attention_fusion(stacked) + channel_attention_fusion(stacked, "nuclear"))


@register_fusion_rule("nestfuse-avg")
def nestfuse_average_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """NestFuse with average-pooled channel attention (the cheaper pooling of the paper)."""
    stacked = _stack(features)
    return 0.5 * (spatial_attention_fusion(stacked) + channel_attention_fusion(stacked, "average"))


def mad_noise_variance(stacked: torch.Tensor) -> torch.Tensor:
    """Robust per-source noise variance of feature maps, (K, N, 1, 1, 1).

    The finest-scale detail d = phi - 3x3 box mean of phi is dominated by noise where the features are
    smooth; its median absolute value over channels and positions / 0.6745 estimates the noise sigma
    (Donoho and Johnstone 1994). For white noise the box residual has var(d) = var(n) * 8/9 (the box mean
    includes the centre), hence sigma_n^2 = (MAD / 0.6745)^2 * 9/8.
    """
    k, n, c, h, w = stacked.shape
    flat = stacked.reshape(k * n * c, 1, h, w)
    residual = flat - F.avg_pool2d(F.pad(flat, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    mad = residual.abs().reshape(k, n, -1).median(dim=2).values
    return ((mad / MAD_TO_SIGMA) ** 2 * 9.0 / 8.0).reshape(k, n, 1, 1, 1)


@register_fusion_rule("local-energy")
def local_energy_fusion(features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Noise-robust rule (ours): leave-one-out local energy of all channels, noise levels equalised.

    Activity of source k at (x, y):

        E_k(x, y) = G'_sigma * ( (1/C) sum_c phi_k^c(x, y)^2 )           (local second moment)
        S_k(x, y) = max(E_k(x, y) - sigma_k^2 + mean_j sigma_j^2, 0)      (noise levels equalised)
        w_k = S_k / sum_j S_j   (1/K where every S_j = 0),   F = sum_k w_k phi_k

    G'_sigma is a Gaussian (sigma = 1.5 feature pixels) with its centre tap removed (renormalised), and
    sigma_k^2 the source's feature-noise variance from the median absolute deviation of its finest-scale
    feature detail (``mad_noise_variance``).

    Notes
    -----
    Why not the maximum: Lmax's activity max_c |phi_k^c| is an extreme-value statistic of one sample. With
    noisy features it is dominated by the largest noise sample, so the weights follow the noise -- and they
    lean *towards* the noisier source (its peaks are higher), so the fused features keep more noise than
    a plain average (the demo in tests/test_densegan_plus.py measures it). Three choices fix that:
    (1) the second moment over all C channels and ~20 neighbours is a statistic of the whole local
    distribution, with a relative fluctuation ~ 1/sqrt(20 C) instead of the max's; (2) leaving the centre
    sample out makes the weight at a position independent of that position's (spatially white) noise, so
    the weighting cannot correlate with, and amplify, the noise it is applied to; (3) replacing each
    source's own noise variance by the common mean stops a noisy source from winning by its noise energy
    (a clean and a noisy copy of one signal get equal weights), while where two sources are equally noisy
    the rule is the plain energy rule. Where one source clearly carries more signal energy it is still
    chosen (w -> 1), as in Lmax.
    """
    stacked = _stack(features)
    energy = _smooth(stacked.pow(2).mean(dim=2, keepdim=True), gaussian_kernel(ENERGY_SIGMA, leave_centre_out=True))
    noise = mad_noise_variance(stacked)
    signal = (energy - noise + noise.mean(dim=0, keepdim=True)).clamp_min(0.0)
    total = signal.sum(dim=0, keepdim=True)
    uniform = torch.full_like(signal, 1.0 / stacked.shape[0])
    weights = torch.where(total > _TINY, signal / total.clamp_min(_TINY), uniform)
    return (weights * stacked).sum(dim=0)


class ResidualFusionNetwork(nn.Module):
    """RFN-Nest's residual fusion block (Li, Wu, Kittler 2021, Fig. 4), for two sources.

    conv3x3(phi_a), conv3x3(phi_b) -> concat -> conv1x1 -> conv3x3 -> conv3x3 (the "fusion branch")
    plus a residual branch conv3x3(concat(phi_a, phi_b)); the output is their sum. ReLU after every conv
    but the last of each branch. Initialised so that the output starts as the mean (phi_a + phi_b) / 2
    (the last conv of the fusion branch is zero, the residual conv averages the two inputs at its
    centre tap), which keeps stage 2 from starting off far from the frozen decoder's input range.
    """

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.conv_a = nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect")
        self.conv_b = nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect")
        self.fuse = nn.Sequential(nn.Conv2d(2 * c, c, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1, padding_mode="reflect"))
        self.residual = nn.Conv2d(2 * c, c, 3, padding=1, padding_mode="reflect")
        self.act = nn.ReLU(inplace=True)
        with torch.no_grad():
            self.fuse[-1].weight.zero_()
            self.fuse[-1].bias.zero_()
            self.residual.weight.zero_()
            self.residual.bias.zero_()
            eye = torch.eye(c)
            self.residual.weight[:, :c, 1, 1] = 0.5 * eye
            self.residual.weight[:, c:, 1, 1] = 0.5 * eye

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        if len(features) != 2:
            raise ValueError(f"the residual fusion network fuses two feature maps, got {len(features)}")
        phi_a, phi_b = features
        both = torch.cat([phi_a, phi_b], dim=1)
        branch = self.fuse(torch.cat([self.act(self.conv_a(phi_a)), self.act(self.conv_b(phi_b))], dim=1))
        return branch + self.residual(both)


LEARNED_FUSION = {"rfn": ResidualFusionNetwork}


def make_fusion(rule: str, channels: int) -> nn.Module:
    """The fusion layer of a generator: a learned block (``rfn``) or a registered fixed rule."""
    if rule in LEARNED_FUSION:
        return LEARNED_FUSION[rule](channels)
    return FusionLayer(rule)


def load_stage_one(generator: nn.Module, train_section: dict) -> nn.Module:
    """RFN-Nest's second stage: start from a trained generator and freeze its encoder/decoder.

    ``train.init_from``: a densegan weights file (shipped generator or training checkpoint); its
    tensors are loaded where names and shapes match (the encoder and decoder; a fixed-rule generator has
    no fusion parameters, so the learned block keeps its initialisation). ``train.freeze``: submodule
    names whose parameters stop training, ``[encoder, decoder]`` for RFN-Nest (Li et al. 2021, Sec. 3.3:
    the auto-encoder is trained first, then fixed while the RFN learns). Without ``init_from`` and
    ``freeze`` nothing happens. The stage-2 loss is the config's generator loss (RFN-Nest's own is a
    detail (SSIM) term plus a feature term; our SSIM + detail + intensity terms play that role).
    """
    from common.errors import UserError
    from methods.densegan import resolve_weights
    from methods.densegan.checkpoint import load_weights, unprefixed

    source = train_section.get("init_from")
    if source:
        tensors, _ = load_weights(resolve_weights("densegan", source))
        tensors = unprefixed(tensors, "generator") or tensors
        own = generator.state_dict()
        matching = {k: v for k, v in tensors.items() if k in own and own[k].shape == v.shape}
        if not any(k.startswith("encoder.") for k in matching):
            raise UserError(f"train.init_from {source}: no encoder weights that fit this generator")
        generator.load_state_dict(matching, strict=False)
    for name in train_section.get("freeze") or ():
        module = getattr(generator, name, None)
        if not isinstance(module, nn.Module):
            raise UserError(f"train.freeze: generator has no submodule {name!r} (encoder, fusion, decoder)")
        for p in module.parameters():
            p.requires_grad_(False)
    return generator
