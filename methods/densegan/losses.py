"""Loss terms of the dense-block GAN, each a plain differentiable torch function.

Generator loss (Zhao, Wang, Lei 2021, Sec. 3 as summarised in the abstract: "detail loss and structural
similarity loss" next to the adversarial term of a DCGAN):

    L_G = lambda_adv * L_adv + lambda_detail * L_detail + lambda_ssim * L_ssim + lambda_int * L_int

* L_adv   (paper: DCGAN generator loss) = BCE-with-logits(D(F), 1), the non-saturating form.
* L_detail (paper: "detail loss"; its exact form is not public) -- our choice, ``gradient_target``:
    ``max``    mean | |grad F| - max(|grad A|, |grad B|) |   (towards the stronger gradient; default)
    ``detail`` mean | grad F - grad D_src |                    (towards the detail-rich source only)
  with grad = Sobel x/y responses (replicate padding) and |grad| = |G_x| + |G_y| (L1 magnitude, smooth
  enough to train and zero exactly where the image is flat).
* L_ssim  (paper: "structural similarity loss") = 1 - (SSIM(F, A) + SSIM(F, B)) / 2 (our choice of
  the symmetric average); SSIM with an 11x11 Gaussian window, sigma 1.5, C1 = (0.01)^2, C2 = (0.03)^2 on
  [0, 1] data (Wang et al. 2004).
* L_int   (not in the paper; our addition so the GAN cannot drift in brightness), ``intensity_target``:
    ``mean``     mean |F - (A + B)/2|  (the ``average`` baseline itself: a generator that learns it well
                 is pixel averaging)
    ``max``      mean |F - max(A, B)|  (keeps bright functional/bone signal; FusionGAN-style)
    ``salience`` mean |F - T|, T the salience-weighted target of ``local_intensity_target`` (local RMS
                 weights in a Gaussian window, ``local_sigma`` / ``local_power``; DDcGAN, U2Fusion and
                 SwinFusion weight their intensity terms by the sources' local information in this spirit)
Discriminator loss (paper: standard GAN) = BCE(D(D_src), 1) + BCE(D(F.detach()), 0).
Every lambda and choice is a config value (``loss:`` in methods/configs/densegan.yaml).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common.errors import UserError

_EPS = 1e-8  # keeps sqrt differentiable where a local energy is 0
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses (G_x, G_y) of (N, 1, H, W) images, replicate padding (flat borders give 0)."""
    kx = _SOBEL_X.to(x)
    kernels = torch.stack([kx, kx.T]).unsqueeze(1)          # (2, 1, 3, 3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernels)
    return g[:, :1], g[:, 1:]


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    gx, gy = sobel(x)
    return gx.abs() + gy.abs()


def gradient_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, detail: torch.Tensor | None = None,
                  target: str = "max") -> torch.Tensor:
    """Detail (gradient) loss; see the module docstring for ``target``."""
    if target == "max":
        goal = torch.maximum(gradient_magnitude(a), gradient_magnitude(b))
        return (gradient_magnitude(fused) - goal).abs().mean()
    if target == "detail":
        if detail is None:
            raise ValueError("gradient target 'detail' needs the detail-rich source")
        (fx, fy), (dx, dy) = sobel(fused), sobel(detail)
        return ((fx - dx).abs() + (fy - dy).abs()).mean()
    raise UserError(f"loss config: gradient_target must be 'max' or 'detail', got {target!r}")


def _gaussian_window(size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(1, 1, size, size)


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5,
         data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004, Eq. 13) of (N, 1, H, W) images; 'valid' windows only."""
    if min(x.shape[-2:]) < window:
        raise ValueError(f"SSIM window {window} is larger than the image {tuple(x.shape[-2:])}")
    w = _gaussian_window(window, sigma, x)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    var_x = F.conv2d(x * x, w) - mu_x ** 2
    var_y = F.conv2d(y * y, w) - mu_y ** 2
    cov = F.conv2d(x * y, w) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean()


def ssim_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, window: int = 11,
              sigma: float = 1.5) -> torch.Tensor:
    """1 - (SSIM(F, A) + SSIM(F, B)) / 2."""
    return 1.0 - 0.5 * (ssim(fused, a, window, sigma) + ssim(fused, b, window, sigma))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius 3 sigma, replicate padding) of (N, 1, H, W) images."""
    radius = max(1, int(round(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    return F.conv2d(F.conv2d(x, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))


def local_intensity_target(a: torch.Tensor, b: torch.Tensor, sigma: float = 3.0, power: float = 4.0) -> torch.Tensor:
    """Salience-weighted target T = w_A A + w_B B, w_k = R_k^p / sum_j R_j^p, R_k = sqrt(G_sigma * S_k^2).

    R_k is the local RMS (brightness and contrast together) of source k in a Gaussian window: the target
    follows each region's more informative source (over the CT skull the bright CT, inside the brain the
    brighter, more textured MRI). A local-energy weighting in the spirit of the salience-weighted
    intensity losses of DDcGAN (Ma et al. 2020), U2Fusion (Xu et al. 2022) and SwinFusion (Ma et al. 2022).
    """
    rms = torch.stack([gaussian_blur(s * s, sigma).clamp_min(0.0).add(_EPS).sqrt() for s in (a, b)])
    weights = rms.pow(power)
    weights = weights / weights.sum(dim=0, keepdim=True)
    return (weights[0] * a + weights[1] * b).detach()


INTENSITY_TARGETS = ("mean", "max", "salience")


def intensity_loss(fused: torch.Tensor, a: torch.Tensor, b: torch.Tensor, target: str = "max",
                   sigma: float = 3.0, power: float = 4.0) -> torch.Tensor:
    """Mean absolute difference to the intensity target: (A + B)/2, max(A, B) or the salience-weighted
    ``local_intensity_target`` (Gaussian window ``sigma``, exponent ``power``)."""
    if target == "max":
        goal = torch.maximum(a, b)
    elif target == "mean":
        goal = 0.5 * (a + b)
    elif target == "salience":
        goal = local_intensity_target(a, b, sigma, power)
    else:
        raise UserError(f"loss config: intensity_target must be one of {', '.join(INTENSITY_TARGETS)}, got {target!r}")
    return (fused - goal).abs().mean()


def adversarial_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating DCGAN generator loss: BCE(D(F), real)."""
    return real_loss(fake_logits)


def real_loss(logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(x), real): the discriminator's loss on real images."""
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def fake_loss(logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(x), fake): the discriminator's loss on generated images."""
    return F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss: BCE(D(real), 1) + BCE(D(fake), 0)."""
    return real_loss(real_logits) + fake_loss(fake_logits)


LOSS_KEYS = ("lambda_adv", "lambda_detail", "lambda_ssim", "lambda_int", "gradient_target",
             "intensity_target", "ssim_window", "ssim_sigma")


def generator_loss(fused, a, b, detail, fake_logits, cfg: dict) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the generator terms; returns (total, {term: value}) -- zero-weight terms skipped."""
    # imported here, not at the top: losses_plus builds on this module's blocks (a module-level cycle)
    from methods.densegan.losses_plus import PLUS_LOSS_KEYS, plus_terms
    unknown = sorted(set(cfg) - set(LOSS_KEYS) - set(PLUS_LOSS_KEYS))
    if unknown:
        raise UserError(f"loss config: unknown key(s) {', '.join(unknown)} (known: {', '.join(LOSS_KEYS + PLUS_LOSS_KEYS)})")
    terms = {}
    if cfg["lambda_adv"]:
        terms["adv"] = (cfg["lambda_adv"], adversarial_generator_loss(fake_logits))
    if cfg["lambda_detail"]:
        terms["detail"] = (cfg["lambda_detail"], gradient_loss(fused, a, b, detail, cfg["gradient_target"]))
    if cfg["lambda_ssim"]:
        terms["ssim"] = (cfg["lambda_ssim"], ssim_loss(fused, a, b, cfg["ssim_window"], cfg["ssim_sigma"]))
    if cfg["lambda_int"]:
        terms["int"] = (cfg["lambda_int"], intensity_loss(fused, a, b, cfg["intensity_target"],
                                                          float(cfg.get("local_sigma", 3.0)),
                                                          float(cfg.get("local_power", 4.0))))
    terms.update(plus_terms(fused, a, b, cfg))   # the further terms, each only with a non-zero lambda
    total = sum(w * v for w, v in terms.values())
    return total, {k: float(v.detach()) for k, (_, v) in terms.items()}


def weighted_shares(terms: dict[str, float], cfg: dict) -> dict[str, float]:
    """Each term's weighted share of the generator loss, ``lambda_k * L_k / sum_j lambda_j * L_j``.

    Term ``k`` is weighted by the config's ``lambda_<k>`` (every term of ``generator_loss`` is named so).
    Logged per step, so a model card can state how much of the objective the adversarial term really is.
    """
    weighted = {k: float(cfg[f"lambda_{k}"]) * v for k, v in terms.items()}
    total = sum(weighted.values())
    return {k: (w / total if total else float("nan")) for k, w in weighted.items()}
