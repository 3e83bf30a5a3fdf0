"""Dense-block DCGAN fusion (Zhao, Wang, Lei 2021) and its ablations, registered as trainable methods.

Registered names (all ``fn(a, b, *, weights=None, fusion_rule="lmax", device="cpu")``):

* ``densegan``                -- full model: dense-block encoder, Lmax fusion, detail + SSIM losses
* ``densegan-nodense``        -- plain conv encoder (same depth, parameters and MACs), no dense connections
* ``densegan-noloss``         -- trained without the detail and SSIM losses (adversarial + intensity only)
* ``densegan-noloss-nodense`` -- both ablations
* ``densegan-lean``           -- full model with a lean decoder 64-32-16-8-1 (~3.4 instead of ~5.8 GMAC)

By default each uses its shipped generator ``methods/weights/<name>.safetensors`` (see
methods/weights/MODEL_CARD.md); ``weights=PATH`` takes any generator or training checkpoint written by
``methods.densegan.train``; ``fusion_rule`` swaps the feature-fusion rule at test time (``lmax``,
``addition``, ``mean``, ``max``, ``l1``). Torch is imported on first use, not when ``methods`` is imported.

References
----------
C. Zhao, T. Wang, B. Lei, "Medical image fusion method based on dense block and deep convolutional
generative adversarial network", Neural Computing and Applications 33:6595-6610, 2021.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from bench.errors import UserError
from methods.registry import register_method

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
CITATION = ("C. Zhao, T. Wang, B. Lei, Medical image fusion method based on dense block and deep "
            "convolutional generative adversarial network, Neural Comput. Appl. 33:6595-6610, 2021")
VARIANTS = {
    "densegan": "Dense-block DCGAN fusion (Zhao et al. 2021): dense encoder, Lmax rule, detail+SSIM losses.",
    "densegan-nodense": "Dense-block GAN ablation: plain conv encoder, no dense connections.",
    "densegan-noloss": "Dense-block GAN ablation: trained without detail and SSIM losses.",
    "densegan-noloss-nodense": "Dense-block GAN ablation: plain encoder and no detail/SSIM losses.",
    "densegan-lean": "Dense-block GAN with a lean decoder (64-32-16-8-1), ~3.4 GMAC per 256x256 pair.",
}


def shipped_weights(name: str) -> Path:
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        raise UserError(f"no shipped weights {path} for {name!r}: train them with `python -m bench train "
                        f"--method {name}` and copy runs/{name}-cpu/generator.safetensors there, or pass weights=PATH")
    return path


@lru_cache(maxsize=16)
def cached_generator(path: str, fusion_rule: str, device: str):
    """The generator in ``path`` with ``fusion_rule``, loaded once per (path, rule, device)."""
    from methods.densegan.checkpoint import load_generator
    return load_generator(Path(path), fusion_rule, device)


def fuse_with_generator(a: np.ndarray, b: np.ndarray, weights: str | Path, fusion_rule: str = "lmax",
                        device: str = "cpu") -> np.ndarray:
    """F = G(A, B) for grey float32 (H, W) sources in [0, 1]; returns float32 (H, W) in [0, 1]."""
    import torch

    generator = cached_generator(str(Path(weights).resolve()), fusion_rule, device)
    with torch.inference_mode():
        ta = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None].to(device)
        tb = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))[None, None].to(device)
        fused = generator(ta, tb)[0, 0].cpu().numpy()
    return np.clip(fused, 0.0, 1.0).astype(np.float32)


def _register(name: str, summary: str) -> None:
    def fuse_variant(a: np.ndarray, b: np.ndarray, *, weights: str | None = None, fusion_rule: str = "lmax",
                     device: str = "cpu") -> np.ndarray:
        return fuse_with_generator(a, b, weights or shipped_weights(name), fusion_rule, device)

    fuse_variant.__name__ = fuse_variant.__qualname__ = name.replace("-", "_")
    fuse_variant.__doc__ = summary
    register_method(name, citation=CITATION, trainable=True)(fuse_variant)


for _name, _summary in VARIANTS.items():
    _register(_name, _summary)
