"""Generator loss terms beyond the seed (issue #6): local brightness/contrast, texture, frequency.

Config keys (``loss:`` section; every lambda defaults to 0 = term off, so existing configs are unchanged):

* ``lambda_local_int`` -- L_lint = mean |F - T|, T = sum_k w_k S_k with w_k = R_k^p / sum_j R_j^p and
  R_k = sqrt(G_s * S_k^2) the local RMS (brightness and contrast together) of source k in a Gaussian
  window (``local_sigma``, default 3 px; ``local_power`` p, default 4). The target follows each
  region's more informative source instead of the global max(A, B): over the CT skull the bright CT wins,
  inside the brain the MRI (brighter and more textured than the flat grey CT brain) wins.
* ``lambda_local_contrast`` -- L_lc = mean | sd_F - max(sd_A, sd_B) |, sd the local standard deviation
  in the same window: F keeps the stronger local contrast (MRI soft tissue under a flat CT).
* ``lambda_texture`` -- max-gradient texture loss (SeAFusion, Tang et al. 2022, Eq. 6; SwinFusion):
  ``texture_mode: signed`` (default) mean |grad F - grad S*| per Sobel component, where S* is the source
  with the larger |grad| at that pixel (keeps the edge's direction); ``magnitude`` is SeAFusion's
  mean | |grad F| - max(|grad A|, |grad B|) | (identical to the seed's detail loss with target max).
* ``lambda_equivariance`` -- equivariant-imaging loss (EMMA, Zhao et al. CVPR 2024, reduced to a loss
  term; the equivariant-imaging idea of Chen, Tachella & Davies, ICCV 2021): mean |G(T A, T B) - T G(A, B)|
  for one transform T per step drawn from ``equivariance_transforms`` (``flip``: horizontal or vertical,
  ``rot90``: 90, 180 or 270 degrees, ``shift``: a circular shift of up to 8 pixels each way). The
  generator is run a second time on the transformed pair (``equivariance_loss``, called by the training
  step), and the gradient flows through both passes.
* ``lambda_freq`` -- frequency-domain loss: mean | log(1 + |FFT F|) - log(1 + max(|FFT A|, |FFT B|)) |
  over the (orthonormal) 2-D spectrum: F keeps, per frequency, the stronger source's amplitude
  (fine detail lives in the high frequencies, where an L1/SSIM loss in the image domain is weak).

References
----------
L. Tang, J. Yuan, J. Ma, "Image fusion in the loop of high-level vision tasks: a semantic-aware
real-time infrared and visible image fusion network" (SeAFusion), Information Fusion 82, 2022.
J. Ma, L. Tang, F. Fan, J. Huang, X. Mei, Y. Ma, "SwinFusion: cross-domain long-range learning for
general image fusion via Swin Transformer", IEEE/CAA J. Autom. Sinica 9(7), 2022.
Z. Zhao, H. Bai, J. Zhang, Y. Zhang, K. Zhang, S. Xu, D. Chen, R. Timofte, L. Van Gool, "Equivariant
multi-modality image fusion", CVPR 2024.
D. Chen, J. Tachella, M. E. Davies, "Equivariant imaging: learning beyond the range space", ICCV 2021.
L. Jiang, B. Dai, W. Wu, C. C. Loy, "Focal frequency loss for image reconstruction and synthesis",
ICCV 2021 (frequency-domain losses on the FFT amplitude).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from common.errors import UserError
from methods.densegan.losses import gaussian_blur as _gaussian_blur, local_intensity_target, sobel

PLUS_LOSS_KEYS = ("lambda_local_int", "lambda_local_contrast", "local_sigma", "local_power",
                  "lambda_texture", "texture_mode", "lambda_freq", "lambda_equivariance", "equivariance_transforms",
                  "lambda_perceptual", "perceptual_layers", "perceptual_weights")   # the last three: perceptual.py
EQUIVARIANCE_TRANSFORMS = ("flip", "rot90", "shift")
MAX_SHIFT = 8
_EPS = 1e-8  # keeps sqrt differentiable where a local variance is 0


def local_moments(x: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(local mean, local second moment) of x in a Gaussian window."""
    return _gaussian_blur(x, sigma), _gaussian_blur(x * x, sigma)


def local_std(x: torch.Tensor, sigma: float) -> torch.Tensor:
    mean, second = local_moments(x, sigma)
    return (second - mean * mean).clamp_min(0.0).add(_EPS).sqrt()


def local_intensity_loss(fused, a, b, sigma: float = 3.0, power: float = 4.0) -> torch.Tensor:
    """mean |F - T| with T the locally more informative source (``local_intensity_target``)."""
    return (fused - local_intensity_target(a, b, sigma, power)).abs().mean()


def local_contrast_loss(fused, a, b, sigma: float = 3.0) -> torch.Tensor:
    """mean | sd_F - max(sd_A, sd_B) |, local standard deviations in a Gaussian window."""
    goal = torch.maximum(local_std(a, sigma), local_std(b, sigma)).detach()
    return (local_std(fused, sigma) - goal).abs().mean()


def texture_loss(fused, a, b, mode: str = "signed") -> torch.Tensor:
    """Max-gradient texture loss; ``signed`` follows the stronger source's Sobel vector, ``magnitude`` its |grad|."""
    (fx, fy), (ax, ay), (bx, by) = sobel(fused), sobel(a), sobel(b)
    mag_a, mag_b = ax.abs() + ay.abs(), bx.abs() + by.abs()
    if mode == "magnitude":
        return ((fx.abs() + fy.abs()) - torch.maximum(mag_a, mag_b)).abs().mean()
    if mode == "signed":
        a_wins = mag_a >= mag_b
        gx, gy = torch.where(a_wins, ax, bx), torch.where(a_wins, ay, by)
        return ((fx - gx).abs() + (fy - gy).abs()).mean()
    raise UserError(f"loss config: texture_mode must be 'signed' or 'magnitude', got {mode!r}")


def log_amplitude(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.fft.rfft2(x, norm="ortho").abs())


def frequency_loss(fused, a, b) -> torch.Tensor:
    """mean | log(1+|FFT F|) - log(1+max(|FFT A|, |FFT B|)) | (orthonormal 2-D real FFT)."""
    goal = torch.maximum(log_amplitude(a), log_amplitude(b)).detach()
    return (log_amplitude(fused) - goal).abs().mean()


def draw_transform(kinds, generator: torch.Generator | None = None):
    """One transform T (a function of (N, C, H, W) tensors) drawn from ``kinds``, with torch's RNG (so a
    resumed run draws the same ones). Square images only for ``rot90``."""
    kinds = list(kinds or EQUIVARIANCE_TRANSFORMS)
    unknown = sorted(set(kinds) - set(EQUIVARIANCE_TRANSFORMS))
    if unknown:
        raise UserError(f"loss config: equivariance_transforms has unknown {', '.join(unknown)} "
                        f"(known: {', '.join(EQUIVARIANCE_TRANSFORMS)})")
    kind = kinds[int(torch.randint(len(kinds), (1,), generator=generator))]
    if kind == "flip":
        dim = -1 if int(torch.randint(2, (1,), generator=generator)) else -2
        return kind, lambda x: x.flip(dim)
    if kind == "rot90":
        k = 1 + int(torch.randint(3, (1,), generator=generator))
        return kind, lambda x: torch.rot90(x, k, dims=(-2, -1))
    dy, dx = (torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=generator)).tolist()
    return kind, lambda x: torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def equivariance_loss(fuse, a, b, fused, transform) -> torch.Tensor:
    """mean |fuse(T a, T b) - T fused| for ``fused`` = fuse(a, b) and one transform T."""
    return (fuse(transform(a), transform(b)) - transform(fused)).abs().mean()


def plus_terms(fused, a, b, cfg: dict) -> dict[str, tuple[float, torch.Tensor]]:
    """{name: (lambda, value)} of the issue-#6 terms whose lambda is non-zero (absent keys = off)."""
    sigma, power = float(cfg.get("local_sigma", 3.0)), float(cfg.get("local_power", 4.0))
    terms = {}
    if cfg.get("lambda_local_int"):
        terms["local_int"] = (cfg["lambda_local_int"], local_intensity_loss(fused, a, b, sigma, power))
    if cfg.get("lambda_local_contrast"):
        terms["local_contrast"] = (cfg["lambda_local_contrast"], local_contrast_loss(fused, a, b, sigma))
    if cfg.get("lambda_texture"):
        terms["texture"] = (cfg["lambda_texture"], texture_loss(fused, a, b, cfg.get("texture_mode", "signed")))
    if cfg.get("lambda_freq"):
        terms["freq"] = (cfg["lambda_freq"], frequency_loss(fused, a, b))
    return terms
