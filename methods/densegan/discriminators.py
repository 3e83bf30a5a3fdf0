"""Discriminators beyond the DCGAN classifier (issue #6), and the one builder from the config.

``discriminator:`` keys added to the dense-block GAN's config (all optional; without them the builder
returns exactly ``model.Discriminator`` and training is unchanged):

* ``kind: dcgan | patchgan | gradient``
    ``dcgan``    one logit per image (``model.Discriminator``).
    ``patchgan`` Markovian discriminator (Isola et al. 2017, Sec. 3.2.2): the same strided convs but no
      global pooling; a final 3x3 conv gives one logit per receptive-field patch, (N, h, w).
    ``gradient`` intensity and gradient judged apart (GIDGAN-style, Zhou et al. 2022): two DCGAN
      branches, one on the image, one on its Sobel gradient magnitude; (N, 2) logits, column 0 the
      intensity judgement and column 1 the gradient judgement, each trained against its own label.
* ``spectral_norm: true`` -- every conv/linear weight re-parametrised by
  ``torch.nn.utils.parametrizations.spectral_norm`` (Miyato et al. 2018): W / sigma_max(W) with one
  power iteration per training forward pass. Batch norm is left as configured (``batch_norm``).
* ``dual: true`` -- two discriminators of the chosen kind, one per source (DDcGAN, Ma et al. 2020):
  D_A judges F against A, D_B judges F against B. The training loop detects ``dual`` and gives each its
  own real images; the generator's adversarial term is the mean over both.
* ``init: default | dcgan`` -- PyTorch's default initialisation, or DCGAN's N(0, 0.02) (``dcgan_init_``).

References
----------
P. Isola, J.-Y. Zhu, T. Zhou, A. A. Efros, "Image-to-image translation with conditional adversarial
networks", CVPR 2017.
T. Miyato, T. Kataoka, M. Koyama, Y. Yoshida, "Spectral normalization for generative adversarial
networks", ICLR 2018.
J. Ma, H. Xu, J. Jiang, X. Mei, X.-P. Zhang, "DDcGAN: a dual-discriminator conditional generative
adversarial network for multi-resolution image fusion", IEEE TIP 29, 2020.
GIDGAN: H. Zhou et al., "Unified gradient- and intensity-discriminator generative adversarial network
for image fusion", Information Fusion, 2022 (the idea used here: separate intensity and gradient judges;
the branch design is ours).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from common.errors import UserError
from methods.densegan.losses import gradient_magnitude
from methods.densegan.model import Discriminator, DiscriminatorConfig

KINDS = ("dcgan", "patchgan", "gradient")
PLUS_KEYS = ("kind", "spectral_norm", "dual", "init")


def _strided_features(config: DiscriminatorConfig) -> tuple[nn.Sequential, int]:
    """The DCGAN conv stack of ``model.Discriminator`` (shared so both stay one design)."""
    return Discriminator(config).features, config.base_channels * 2 ** (config.layers - 1)


class PatchDiscriminator(nn.Module):
    """PatchGAN: DCGAN strided convs, then a 3x3 conv to one logit per patch -> (N, h, w)."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.features, width = _strided_features(config)
        self.classifier = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)).squeeze(1)


class GradientIntensityDiscriminator(nn.Module):
    """Two DCGAN branches: D_int(x) and D_grad(|grad x|) (Sobel L1 magnitude) -> (N, 2) logits."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.intensity = Discriminator(config)
        self.gradient = Discriminator(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.intensity(x), self.gradient(gradient_magnitude(x))], dim=1)


class DualDiscriminator(nn.Module):
    """DDcGAN: one discriminator per source. ``forward(x_a, x_b=None)`` -> cat(D_A(x_a), D_B(x_b or x_a)).

    The training loop calls ``d(cat(A, F), cat(B, F))`` for the discriminator step (chunks: D_A(A),
    D_A(F), D_B(B), D_B(F)) and ``d(F)`` for the generator step (both judge F). One Adam over both
    members equals two Adams with the same settings (Adam is per parameter), so one optimizer serves.
    """

    dual = True

    def __init__(self, make):
        super().__init__()
        self.d_a = make()
        self.d_b = make()

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([self.d_a(x_a), self.d_b(x_a if x_b is None else x_b)], dim=0)


def apply_spectral_norm(module: nn.Module) -> nn.Module:
    """Spectral-normalise every Conv2d/Linear weight of ``module`` in place (returns it)."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            spectral_norm(layer)
    return module


INITS = ("default", "dcgan")


def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN initialisation in place (Radford et al. 2016, Sec. 4; the reference ``weights_init``):
    conv and linear weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), every bias 0."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return module


def build_discriminator(section: dict | None) -> nn.Module:
    """The discriminator of a ``discriminator:`` config section (``PLUS_KEYS`` + DiscriminatorConfig keys).

    Without any of ``PLUS_KEYS`` (or with their defaults) this is ``model.Discriminator(config)`` exactly,
    built with the same random draws, so existing configs train bit for bit as before.
    """
    section = dict(section or {})
    kind = section.pop("kind", "dcgan")
    use_sn = bool(section.pop("spectral_norm", False))
    dual = bool(section.pop("dual", False))
    init = section.pop("init", "default")
    if init not in INITS:
        raise UserError(f"discriminator config: init must be one of {', '.join(INITS)}, got {init!r}")
    if kind not in KINDS:
        raise UserError(f"discriminator config: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    config = DiscriminatorConfig.from_dict(section)
    cls = {"dcgan": Discriminator, "patchgan": PatchDiscriminator, "gradient": GradientIntensityDiscriminator}[kind]

    def make() -> nn.Module:
        d = cls(config)
        if init == "dcgan":
            dcgan_init_(d)
        return apply_spectral_norm(d) if use_sn else d

    return DualDiscriminator(make) if dual else make()


def discriminator_inputs(discriminator, a: torch.Tensor, b: torch.Tensor, detail: torch.Tensor,
                         fused: torch.Tensor) -> tuple[tuple, tuple]:
    """(real inputs, fake inputs) of the discriminator step, each a tuple of forward arguments.

    One discriminator: real = the detail-rich source, fake = F. A dual one (DDcGAN): real = (A, B) for
    (D_A, D_B), fake = (F, F). Real and fake go through separate forward passes, so batch norm never
    normalises a batch that mixes them (as in the DCGAN reference and BasicSR).
    """
    if getattr(discriminator, "dual", False):
        return (a, b), (fused, fused)
    return (detail,), (fused,)
