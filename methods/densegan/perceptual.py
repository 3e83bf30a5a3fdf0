"""Perceptual loss for the dense-block GAN from the project's own frozen encoder (no download).

The feature network is DenseFuse's first stage (Li & Wu, IEEE TIP 28(5), 2019, Sec. III-B): the
encoder-decoder trained alone to reconstruct single source images, with

    L_ae = L_pixel + lambda L_ssim,   L_pixel = ||O - I||_2^2 (mean),   L_ssim = 1 - SSIM(O, I)   (Eqs. 4-6)

(lambda = 100, one of the paper's values). Here that is a ``Generator`` with the ``mean`` fusion rule
fed the same image twice, so G(I, I) = decoder(encoder(I)): the saved file is an ordinary generator file
(``methods/weights/densegan-autoencoder.safetensors``, written by ``python -m bench.autoencoder``) and its encoder, frozen, is the feature network.

The loss (``loss.lambda_perceptual``; layers ``loss.perceptual_layers`` among ``stem``, ``dense1`` ...
``denseN``; file ``loss.perceptual_weights``, default the shipped one):

    L_perc = mean over the chosen layers l of  mean | phi_l(F) - max(phi_l(A), phi_l(B)) |

F's features should carry, per channel and position, the stronger of the two sources' activations (the
feature-space form of the max-intensity and max-gradient targets; in the spirit of the perceptual
losses of Johnson et al. 2016 as used by fusion networks such as DenseFuse's successors).
"""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from common.errors import UserError
from methods.densegan.checkpoint import load_generator, save_generator
from methods.densegan.losses import ssim
from methods.densegan.model import DenseEncoder, Generator, GeneratorConfig

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "densegan-autoencoder.safetensors"
SSIM_WEIGHT = 100.0


def layer_names(encoder: nn.Module) -> list[str]:
    return ["stem", *(f"dense{i + 1}" for i in range(len(encoder.block)))]


class EncoderFeatures(nn.Module):
    """The chosen block outputs of a frozen dense encoder: ``forward(x) -> [phi_l(x) for l in layers]``."""

    def __init__(self, encoder: DenseEncoder, layers):
        super().__init__()
        if not isinstance(encoder, DenseEncoder):
            raise UserError("perceptual loss: the feature network must have the dense encoder")
        known = layer_names(encoder)
        layers = list(layers or known)
        unknown = sorted(set(layers) - set(known))
        if unknown:
            raise UserError(f"loss config: perceptual_layers has unknown {', '.join(unknown)} (known: {', '.join(known)})")
        self.encoder, self.layers = encoder, layers
        self.encoder.requires_grad_(False).eval()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        enc = self.encoder
        outputs = {"stem": enc.act(enc.stem(x))}
        feats = outputs["stem"]
        for i, conv in enumerate(enc.block):
            out = enc.act(conv(feats))
            outputs[f"dense{i + 1}"] = out
            feats = torch.cat([feats, out], dim=1)
        return [outputs[name] for name in self.layers]


@lru_cache(maxsize=4)
def feature_network(path: str, layers: tuple, device: str) -> EncoderFeatures:
    """The frozen encoder of the autoencoder file ``path`` (loaded once per process)."""
    if not Path(path).is_file():
        raise UserError(f"perceptual loss: no feature network {path}; train it with "
                        f"python -m bench.autoencoder")
    return EncoderFeatures(load_generator(Path(path)).encoder, layers).to(device)


def perceptual_loss(features: EncoderFeatures, fused, a, b) -> torch.Tensor:
    """mean_l mean | phi_l(F) - max(phi_l(A), phi_l(B)) | (targets carry no gradient)."""
    with torch.no_grad():
        goals = [torch.maximum(fa, fb) for fa, fb in zip(features(a), features(b))]
    return torch.stack([(f - g).abs().mean() for f, g in zip(features(fused), goals)]).mean()


def perceptual_term(cfg: dict, fused, a, b) -> torch.Tensor:
    """L_perc for a ``loss:`` config section (the feature network from ``perceptual_weights``)."""
    path = str(Path(cfg.get("perceptual_weights") or WEIGHTS).resolve())
    layers = tuple(cfg.get("perceptual_layers") or ())
    return perceptual_loss(feature_network(path, layers, str(fused.device)), fused, a, b)


def autoencoder_loss(output: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """DenseFuse's L_pixel + 100 L_ssim (Eqs. 4-6)."""
    return ((output - image) ** 2).mean() + SSIM_WEIGHT * (1.0 - ssim(output, image))


TRAINING_DATASETS = ("harvard_ct_mri_casewise_train", "harvard_pet_mri_casewise_train",
                     "harvard_spect_mri_casewise_train")
VALIDATION_DATASETS = ("harvard_ct_mri_val", "harvard_pet_mri_val", "harvard_spect_mri_val")


def train_autoencoder(out: Path, datasets, steps: int = 1000, batch: int = 16, patch: int = 64, seed: int = 0,
                      names=TRAINING_DATASETS, lr: float = 1e-4, val_every: int = 25) -> Path:
    """Train the dense encoder and decoder to reconstruct single source images; save as a generator file.

    ``datasets`` resolves the dataset ``names`` (bench's registry; ``python -m bench.autoencoder``). ``lr``
    1e-4 is DenseFuse's (Sec. IV-A). At 1e-3, the rate of the first shipped network, the loss does not fall:
    ``python -m bench.autoencoder --steps 1500 --lr 1e-3`` logged 64.4, 77.1, 79.3, 74.2 at steps 50 to 200
    (the shipped 400-step file ended at 70.1; its validation reconstruction SSIM is 0.508). At 1e-4 it fell
    to 32.3 by step 100 and then rose again (60.1 at step 200, 74.9 at step 450), so the saved network is
    the one with the best SSIM on fixed validation patches, checked every ``val_every`` steps (early
    stopping on validation; the test parts play no part)."""
    import copy

    from methods.densegan.data import FusionPairs

    torch.manual_seed(seed)
    model = Generator(GeneratorConfig(fusion_rule="mean"))
    data = FusionPairs({"datasets": list(names), "patch_size": patch, "rot90": True,
                        "patches_per_pair": max(1, steps * batch // 1000 + 1)}, seed=seed, datasets=datasets)
    loader = torch.utils.data.DataLoader(data, batch_size=batch // 2, shuffle=True,
                                         generator=torch.Generator().manual_seed(seed), drop_last=True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    val_patches = validation_patches(datasets, patch, seed)
    best = (-1.0, 0, None)                          # (validation patch SSIM, step, state)
    done, losses = 0, []
    while done < steps:
        for a, b, _ in loader:
            images = torch.cat([a, b])              # every source is a reconstruction target of its own
            loss = autoencoder_loss(model(images, images), images)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            done += 1
            if done % val_every == 0 or done == steps:
                with torch.no_grad():
                    score = float(ssim(model(val_patches, val_patches), val_patches))
                if score > best[0]:
                    best = (score, done, copy.deepcopy(model.state_dict()))
                print(f"step {done}/{steps}: loss {sum(losses[-val_every:]) / len(losses[-val_every:]):.4f}, "
                      f"validation patch SSIM {score:.4f} (best {best[0]:.4f} at step {best[1]})", file=sys.stderr)
            if done >= steps:
                break
    model.load_state_dict(best[2])
    val_ssim = reconstruction_ssim(model, datasets, VALIDATION_DATASETS)
    print(f"step {best[1]}'s network: validation reconstruction SSIM {val_ssim:.4f} "
          f"({', '.join(VALIDATION_DATASETS)})", file=sys.stderr)
    return save_generator(model, out, {"method": "densegan-autoencoder", "steps": str(steps),
                                       "best_step": str(best[1]), "samples": str(best[1] * batch), "lr": str(lr),
                                       "val_patch_ssim": f"{best[0]:.5f}", "val_ssim": f"{val_ssim:.5f}"})


def validation_patches(datasets, patch: int, seed: int, per_pair: int = 2) -> torch.Tensor:
    """Fixed ``patch``-px patches (``per_pair`` of each validation pair, both sources) for early stopping."""
    from methods.densegan.data import FusionPairs

    data = FusionPairs({"datasets": list(VALIDATION_DATASETS), "patch_size": patch, "rot90": False,
                        "flips": False, "patches_per_pair": per_pair}, seed=seed + 1, datasets=datasets)
    return torch.cat([torch.stack(data[i][:2]) for i in range(len(data))])


@torch.no_grad()
def reconstruction_ssim(model: Generator, datasets, names=None) -> float:
    """Mean SSIM (``losses.ssim``, the loss's own) of decoder(encoder(I)) against I over every source image of
    the validation parts ``names`` (whole images; colour sources on their luma): how well the feature
    network keeps what it encodes."""
    from common.colour import luma

    model.eval()
    scores = []
    for name in names or VALIDATION_DATASETS:
        for pair in datasets(name).pairs():
            for image in pair.load():
                x = torch.from_numpy(luma(image).astype("float32"))[None, None]
                scores.append(float(ssim(model(x, x), x)))
    return sum(scores) / len(scores)
