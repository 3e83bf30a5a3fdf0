"""Dense-block DCGAN fusion (Zhao, Wang, Lei 2021) and its ablations, registered as trainable methods.

Registered names (all ``fn(a, b, *, weights=None, fusion_rule=None, device="cpu")``; ``fusion_rule=None``
uses the rule stored with the weights):

* ``densegan``                -- full model: dense-block encoder, Lmax fusion, detail + SSIM losses
* ``densegan-nodense``        -- plain conv encoder (same depth, parameters and MACs), no dense connections
* ``densegan-noloss``         -- trained without the detail and SSIM losses (adversarial + intensity only)
* ``densegan-noloss-nodense`` -- both ablations
* ``densegan-lean``           -- full model with a lean decoder 64-32-16-8-1 (~3.4 instead of ~5.8 GMAC)
* ``densegan-plus``           -- the issue-#6 options that beat the seed (MODEL_CARD_plus.md)
* ``densegan-equivariant``    -- trained with an equivariant-imaging loss (``losses_plus.equivariance_loss``)
* ``densegan-perceptual``     -- trained with a perceptual loss from a frozen autoencoder (``perceptual.py``)

By default each uses its shipped generator ``methods/weights/<name>.safetensors`` (see
methods/weights/MODEL_CARD.md; all come from the training campaign, campaigns/harvard). ``weights=PATH`` takes any safetensors file written by
``methods.densegan.train``: a final ``<run>/generator.safetensors``, an epoch checkpoint
``<run>/checkpoints/epoch_NNNN.safetensors`` (4-digit epoch; G and D inside, G is used) or a run folder
(its generator.safetensors); relative paths are tried from the working directory, then the repository
root. That is the contract for epoch sweeps in datasets.yaml (bench/sweeps.py):
``{method: densegan, epochs: [1, 2, 4], weights: "runs/densegan-cpu/checkpoints/epoch_{epoch:04d}.safetensors"}``
gives ``densegan@1`` ... . The network is rebuilt from the file's own ``generator_config`` metadata, so a
checkpoint of any variant works under any variant name. ``complexity(**params)`` (the registry's hook,
bench/report.py) returns ``{"parameters", "macs"}`` per 256x256 pair counted from that model. ``fusion_rule`` swaps the feature-fusion rule at test time (``lmax``,
``addition``, ``mean``, ``max``, ``l1``). Torch is imported on first use, not when ``methods`` is imported.

References
----------
C. Zhao, T. Wang, B. Lei, "Medical image fusion method based on dense block and deep convolutional
generative adversarial network", Neural Computing and Applications 33(12), 2021 (published online 13 Oct 2020).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from common.errors import UserError
from methods.registry import one_of, register_method

REPO = Path(__file__).resolve().parents[2]
WEIGHTS_DIR = REPO / "methods" / "weights"
CITATION = ("C. Zhao, T. Wang, B. Lei, Medical image fusion method based on dense block and deep "
            "convolutional generative adversarial network, Neural Comput. Appl. 33(12), 2021")
VARIANTS = {
    "densegan": "Dense-block DCGAN fusion (Zhao et al. 2021): dense encoder, Lmax rule, detail+SSIM losses.",
    "densegan-nodense": "Dense-block GAN ablation: plain conv encoder, no dense connections.",
    "densegan-noloss": "Dense-block GAN ablation: trained without detail and SSIM losses.",
    "densegan-noloss-nodense": "Dense-block GAN ablation: plain encoder and no detail/SSIM losses.",
    "densegan-lean": "Dense-block GAN with a lean decoder (64-32-16-8-1), ~3.4 GMAC per 256x256 pair.",
    # issue #6: the best combination of the new fusion rules, discriminators and losses (MODEL_CARD_plus.md)
    "densegan-plus": "Dense-block GAN plus (issue #6): best study combination of fusion rule, discriminator, losses.",
    # issue #21: the equivariance and perceptual priors as loss terms (campaign runs, like the ablations)
    "densegan-equivariant": "Dense-block GAN trained with an equivariant-imaging loss (flips, rot90, shifts).",
    "densegan-perceptual": "Dense-block GAN trained with a perceptual loss from its own frozen autoencoder's encoder.",
}


def shipped_weights(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        raise UserError(f"no shipped weights {path} for {name!r}: train them with `python -m bench train "
                        f"--method {name}` and copy runs/{name}-cpu/generator.safetensors there, or pass weights=PATH")
    return path


def resolve_weights(name: str, weights: str | Path | None) -> Path:
    """The safetensors file a variant fuses with.

    ``None`` -> the shipped ``methods/weights/<name>.safetensors``; a file -> itself (a shipped-form
    generator or a training checkpoint ``<run>/checkpoints/epoch_NNNN.safetensors``); a run folder -> its
    final ``generator.safetensors``. A relative path is taken from the working directory, else from the
    repository root (so suite files can say ``runs/densegan-cpu/checkpoints/epoch_{epoch:04d}.safetensors``).
    """
    if weights is None or weights == "":
        return shipped_weights(name)
    path = Path(weights)
    if not path.is_absolute() and not path.exists() and (REPO / path).exists():
        path = REPO / path
    if path.is_dir():
        path = path / "generator.safetensors"
    if not path.is_file():
        raise UserError(f"{name}: weights file {path} not found")
    return path.resolve()


@lru_cache(maxsize=16)
def _cached_generator(path: str, mtime_ns: int, fusion_rule: str, device: str):
    import torch

    from methods.densegan.checkpoint import load_generator
    # channels-last (NHWC) convolutions are ~1.6x faster on CPU for these narrow layers (bench/speed/densegan.py)
    return load_generator(Path(path), fusion_rule, device).to(memory_format=torch.channels_last)


def cached_generator(path: str | Path, fusion_rule: str | None = None, device: str = "cpu"):
    """The generator in ``path`` with ``fusion_rule`` (None: the rule stored with the weights), loaded once
    per (file version, rule, device)."""
    path = Path(path).resolve()
    return _cached_generator(str(path), path.stat().st_mtime_ns, fusion_rule, device)


def fuse_with_generator(a: np.ndarray, b: np.ndarray, weights: str | Path, fusion_rule: str | None = None,
                        device: str = "cpu") -> np.ndarray:
    """F = G(A, B) for grey float32 (H, W) sources in [0, 1]; returns float32 (H, W) in [0, 1].

    ``fusion_rule`` None keeps the rule stored with the weights (a learned RFN block stays in place). Bands
    or torch's intra-op threads, whichever is faster on the machine as it is (``inference.auto_bands``)."""
    from methods.densegan.inference import fuse_arrays

    return fuse_arrays(cached_generator(weights, fusion_rule, device), a, b, bands="auto")


@lru_cache(maxsize=32)
def _complexity(path: str, mtime_ns: int, size: int) -> dict:
    from methods.densegan.checkpoint import load_generator

    return _count(load_generator(Path(path)), size)


def generator_complexity(name: str, weights: str | Path | None = None, size: int = 256) -> dict:
    """``{"parameters": int, "macs": int}`` of variant ``name``'s generator for one size x size pair.

    Counted from the model in the weights file (``model.count_macs``: every Conv2d/Linear, both encoder
    passes included; the parameter-free fusion rule adds no MACs).
    """
    if weights is None and not (WEIGHTS_DIR / f"{name}.safetensors").is_file():
        return dict(_config_complexity(name, size))     # cost does not depend on the weights' values
    path = resolve_weights(name, weights)
    return dict(_complexity(str(path), path.stat().st_mtime_ns, size))


@lru_cache(maxsize=16)
def _config_complexity(name: str, size: int) -> dict:
    """Complexity of a randomly initialised generator built from ``methods/configs/<name>.yaml``."""
    from methods.densegan.model import Generator, GeneratorConfig
    from methods.densegan.train import resolve_config

    return _count(Generator(GeneratorConfig.from_dict(resolve_config(name)["model"])), size)


def _count(generator, size: int) -> dict:
    import torch

    from methods.densegan.model import count_macs, count_parameters

    x = torch.zeros(1, 1, size, size)
    return {"parameters": count_parameters(generator), "macs": count_macs(generator, x, x)}


def _register(name: str, summary: str) -> None:
    # fusion_rule None = the rule the weights were trained with (a learned RFN block is kept; every
    # shipped seed-family file was trained with lmax, so their default result is that rule's)
    def fuse_variant(a: np.ndarray, b: np.ndarray, *, weights: str | None = None, fusion_rule: str | None = None,
                     device: str = "cpu") -> np.ndarray:
        return fuse_with_generator(a, b, resolve_weights(name, weights), fusion_rule, device)

    def complexity(weights: str | None = None, **_ignored) -> dict:
        return generator_complexity(name, weights)

    fuse_variant.__name__ = fuse_variant.__qualname__ = name.replace("-", "_")
    fuse_variant.__doc__ = summary
    register_method(name, citation=CITATION, trainable=True, complexity=complexity,
                    allowed={"fusion_rule": one_of(_fixed_fusion_rules)})(fuse_variant)


def _fixed_fusion_rules() -> tuple:
    """The rules a generator's fusion layer can be swapped to at test time (imports torch: called lazily)."""
    import methods.densegan.rules_plus  # noqa: F401  (registers the extra fixed rules)
    from methods.densegan.fusion_rules import FUSION_RULES

    return tuple(FUSION_RULES)


for _name, _summary in VARIANTS.items():
    _register(_name, _summary)
