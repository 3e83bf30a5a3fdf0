"""Generator (dense-block encoder, fusion layer, decoder) and DCGAN discriminator.

Zhao, Wang, Lei (2021) describe G as an encoder with a dense block, a fusion layer using the Lmax norm
and a decoder, and D as a DCGAN-style classifier. The paper's abstract is all that could be found
publicly; the layer sizes below follow DenseFuse (Li and Wu 2019), on which the paper builds, and every
size is a config value (``model:`` and ``discriminator:`` in methods/configs/densegan.yaml):

Encoder (shared by both sources, ``encoder: dense``)
    C1: 3x3 conv 1 -> 16, then a dense block of three 3x3 convs with growth 16, each fed the
    concatenation of C1's output and all earlier block outputs: 16 -> 16, 32 -> 16, 48 -> 16;
    output = concat = 64 channels. ReLU after every conv; reflection padding (no border darkening).
Encoder ablation (``encoder: plain``)
    the same depth and the same sum of in*out channels (so the same parameters and MACs), no dense
    connections: 1 -> 16 -> 16 -> 16 -> 64.
Fusion layer
    a registered rule (``fusion_rules.FUSION_RULES``), ``lmax`` by default.
Decoder
    3x3 convs 64 -> decoder_channels... -> 1, ReLU between, then ``output_activation``: ``clamp`` to
    [0, 1] with a straight-through gradient (default; a first run with a sigmoid left the black background
    at ~0.03 grey after the short CPU training, which costs SSIM) or ``sigmoid``.
    DenseFuse's decoder is 64-64-32-16-1 (``decoder_channels: [64, 32, 16]``, ~5.8 GMAC per 256x256
    pair); the lean variant ``[32, 16, 8]`` costs ~3.4 GMAC.
Discriminator
    DCGAN (Radford et al. 2016): 4x4 stride-2 convs doubling the width from ``base_channels``,
    batch norm on all but the first, LeakyReLU(0.2), then global average pooling and a linear layer to
    one real/fake logit (global pooling makes D take any patch size).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from common.errors import UserError
from methods.densegan.fusion_rules import FusionLayer
from methods.densegan.rules_plus import make_fusion      # fixed rules and the learned RFN block


def _known_keys(cls, d: dict | None, section: str) -> dict:
    """A copy of config section ``d``; a key that is not a field of ``cls`` is a UserError."""
    d = dict(d or {})
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise UserError(f"{section} config: unknown key(s) {', '.join(unknown)}")
    return d


@dataclass(frozen=True)
class GeneratorConfig:
    encoder: str = "dense"                 # dense | plain
    stem_channels: int = 16
    growth: int = 16
    dense_layers: int = 3
    decoder_channels: tuple[int, ...] = (64, 32, 16)
    fusion_rule: str = "lmax"
    output_activation: str = "clamp"       # clamp (straight-through) | sigmoid

    @classmethod
    def from_dict(cls, d: dict | None) -> "GeneratorConfig":
        d = _known_keys(cls, d, "model")
        if "decoder_channels" in d:
            d["decoder_channels"] = tuple(int(c) for c in d["decoder_channels"])
        cfg = cls(**d)
        if cfg.encoder not in ("dense", "plain"):
            raise UserError(f"model config: encoder must be 'dense' or 'plain', got {cfg.encoder!r}")
        if cfg.output_activation not in OUTPUT_ACTIVATIONS:
            raise UserError(f"model config: output_activation must be one of {', '.join(OUTPUT_ACTIVATIONS)}, "
                            f"got {cfg.output_activation!r}")
        return cfg

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decoder_channels"] = list(self.decoder_channels)
        return d

    @property
    def feature_channels(self) -> int:
        return self.stem_channels + self.dense_layers * self.growth


@dataclass(frozen=True)
class DiscriminatorConfig:
    base_channels: int = 32
    layers: int = 4
    leaky_slope: float = 0.2
    batch_norm: bool = True

    @classmethod
    def from_dict(cls, d: dict | None) -> "DiscriminatorConfig":
        return cls(**_known_keys(cls, d, "discriminator"))


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect")


class DenseEncoder(nn.Module):
    """C1 then a dense block: layer i sees concat(C1 output, outputs of layers < i)."""

    def __init__(self, stem: int = 16, growth: int = 16, layers: int = 3):
        super().__init__()
        self.stem = conv3x3(1, stem)
        self.block = nn.ModuleList(conv3x3(stem + i * growth, growth) for i in range(layers))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.act(self.stem(x))
        for conv in self.block:
            feats = torch.cat([feats, self.act(conv(feats))], dim=1)
        return feats


class PlainEncoder(nn.Module):
    """Ablation: C1 then ``layers`` plain convs 16 -> 16 ... -> 64; same depth, params and MACs as dense."""

    def __init__(self, stem: int = 16, growth: int = 16, layers: int = 3):
        super().__init__()
        widths = [stem] * layers + [stem + layers * growth]
        self.stem = conv3x3(1, stem)
        self.block = nn.ModuleList(conv3x3(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:]))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        for conv in self.block:
            x = self.act(conv(x))
        return x


class StraightThroughClamp(nn.Module):
    """Clamp to [0, 1] in the forward pass, identity gradient in the backward pass.

    Unlike a sigmoid it reaches 0 exactly (black background stays black, which SSIM-type metrics reward);
    unlike a plain clamp it never stops the gradient, so out-of-range pixels are still pulled back.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x.clamp(0.0, 1.0) - x).detach()


OUTPUT_ACTIVATIONS = {"clamp": StraightThroughClamp, "sigmoid": nn.Sigmoid}


class Decoder(nn.Module):
    """3x3 convs feature_channels -> channels... -> 1; ReLU between, output mapped to [0, 1]."""

    def __init__(self, in_channels: int = 64, channels: tuple[int, ...] = (64, 32, 16), output: str = "clamp"):
        super().__init__()
        widths = [in_channels, *channels]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [conv3x3(c_in, c_out), nn.ReLU(inplace=True)]
        layers += [conv3x3(widths[-1], 1), OUTPUT_ACTIVATIONS[output]()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Generator(nn.Module):
    """G(a, b) = decoder(fusion(encoder(a), encoder(b))); a, b, output: (N, 1, H, W) in [0, 1]."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        encoder_cls = DenseEncoder if config.encoder == "dense" else PlainEncoder
        self.encoder = encoder_cls(config.stem_channels, config.growth, config.dense_layers)
        self.fusion = make_fusion(config.fusion_rule, config.feature_channels)
        self.decoder = Decoder(config.feature_channels, config.decoder_channels, config.output_activation)

    def set_fusion_rule(self, rule: str) -> None:
        self.fusion = FusionLayer(rule)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        # One encoder pass over both sources (batch concat) instead of two: same result, one conv call.
        feats = self.encoder(torch.cat([a, b], dim=0))
        phi_a, phi_b = feats.chunk(2, dim=0)
        return self.decoder(self.fusion(phi_a, phi_b))


class Discriminator(nn.Module):
    """DCGAN classifier: strided 4x4 convs, batch norm, LeakyReLU, global pool, one logit per image."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for i in range(config.layers):
            c_out = config.base_channels * 2 ** i
            layers.append(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not (config.batch_norm and i > 0)))
            if config.batch_norm and i > 0:    # DCGAN: no batch norm on the input layer
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(config.leaky_slope, inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3))).squeeze(1)


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass, counted on every Conv2d and Linear by forward hooks.

    A Conv2d costs out.numel() * (C_in / groups) * kH * kW (bias adds ignored); a Linear costs
    out.numel() * in_features. Pointwise ops (ReLU, fusion rule, padding) are not counted.
    """
    total = 0

    def conv_hook(module, _inp, out):
        nonlocal total
        kh, kw = module.kernel_size
        total += out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module, _inp, out):
        nonlocal total
        total += out.numel() * module.in_features

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
