"""LLF-IOI: anatomical-functional image fusion by information of interest in the local Laplacian
filtering domain.

J. Du, W. Li, B. Xiao, "Anatomical-functional image fusion by information of interest in local
Laplacian filtering domain", IEEE Trans. Image Process. 26(12):5855-5866, 2017.

No reference code or output exists; this follows the method's published structure (abstract and
Sec. III of the paper): (1) a multi-scale representation of each source in which every scale is
processed by local Laplacian filtering (LLF), giving an *approximate* image and a *residual* image
per scale; (2) approximate images fused by a local-energy-maximum rule, residual images by an
information-of-interest (IOI) rule; (3) reconstruction as for a Laplacian pyramid. Where the paper's
exact constants could not be checked, the choices are stated below and exposed as parameters.

Decomposition (per source, scales l = 0..L-1, ``I_0`` = source):
  ``A_l = LLF(I_l)`` -- edge-aware smoothing: LLF with the remapping of Paris et al. (2011), Eq. 3,
  ``r(i) = g + sign(i-g) sigma_r (|i-g|/sigma_r)^alpha`` for ``|i-g| <= sigma_r`` (alpha > 1
  removes details smaller than ``sigma_r``) and ``g + sign(i-g)(|i-g| - sigma_r + sigma_r)`` beyond
  (edges kept, beta = 1), evaluated with the fast approximation of Aubry et al. (2014): the LLF output
  pyramid is linearly interpolated between the Laplacian pyramids of ``n_samples`` globally remapped
  images at the Gaussian-pyramid value of each coefficient;
  ``I_{l+1} = reduce(A_l)`` and residual ``R_l = I_l - expand(I_{l+1})`` so that
  ``I_l = R_l + expand(I_{l+1})`` exactly (Laplacian-pyramid-like reconstruction).
Fusion:
  approximate (coarsest ``I_L``): per pixel the source with the larger local energy
  ``E = w * I_L^2`` (3x3 [1 2 1]^T[1 2 1]/16 window), ties A;
  residuals: IOI activity ``Q_l = w * |R_l|`` (same window) -- the locally dominant residual
  structure is the information of interest of either modality (anatomical edges of the MRI,
  functional blobs of PET/SPECT) -- and the residual of the source with the larger ``Q_l`` is kept,
  ties A.

References
----------
S. Paris, S. W. Hasinoff, J. Kautz, "Local Laplacian filters: edge-aware image processing with a
Laplacian pyramid", ACM TOG 30(4):68, 2011.
M. Aubry, S. Paris, S. W. Hasinoff, J. Kautz, F. Durand, "Fast local Laplacian filters: theory and
applications", ACM TOG 33(5):167, 2014.
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage

from common.errors import UserError
from methods.registry import above, between, register_method

_BINOMIAL_5 = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16
_SMOOTH_3 = np.array([1, 2, 1], dtype=np.float64) / 4


def _blur(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable filtering of the last two axes, symmetric (edge-repeating) borders."""
    out = scipy.ndimage.convolve1d(x, taps, axis=-1, mode="reflect")
    return scipy.ndimage.convolve1d(out, taps, axis=-2, mode="reflect")


def pyramid_reduce(x: np.ndarray) -> np.ndarray:
    """Burt-Adelson REDUCE: [1 4 6 4 1]/16 blur, keep even samples."""
    return _blur(x, _BINOMIAL_5)[..., ::2, ::2]


def pyramid_expand(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Burt-Adelson EXPAND to ``shape``: zero insertion, blur with 2 x [1 4 6 4 1]/16 per axis."""
    up = np.zeros(x.shape[:-2] + tuple(shape), dtype=x.dtype)
    up[..., ::2, ::2] = x
    return _blur(up, 2 * _BINOMIAL_5)


def gaussian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    pyr = [x]
    for _ in range(levels - 1):
        pyr.append(pyramid_reduce(pyr[-1]))
    return pyr


def laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    gauss = gaussian_pyramid(x, levels)
    return [g - pyramid_expand(n, g.shape[-2:]) for g, n in zip(gauss[:-1], gauss[1:])] + [gauss[-1]]


def collapse_laplacian(pyr: list[np.ndarray]) -> np.ndarray:
    out = pyr[-1]
    for band in reversed(pyr[:-1]):
        out = band + pyramid_expand(out, band.shape[-2:])
    return out


def _remap(image: np.ndarray, g: np.ndarray, sigma_r: float, alpha: float) -> np.ndarray:
    """Paris et al. (2011) Eq. 3 with beta = 1: details (|i - g| <= sigma_r) raised to ``alpha``."""
    diff = image - g
    mag = np.abs(diff)
    detail = sigma_r * (np.minimum(mag, sigma_r) / sigma_r) ** alpha
    return g + np.sign(diff) * np.where(mag <= sigma_r, detail, mag)


def local_laplacian_filter(image: np.ndarray, *, sigma_r: float = 0.1, alpha: float = 2.0,
                           n_samples: int = 10, levels: int | None = None) -> np.ndarray:
    """Fast local Laplacian filter (Aubry et al. 2014, Sec. 4), vectorised over the intensity samples.

    Each output Laplacian coefficient at level l is interpolated linearly between the coefficients of
    the two remapped images whose reference intensities ``g_k`` (``n_samples`` evenly spaced over the
    image range) bracket the input's Gaussian-pyramid value there; the residual low-pass is the
    input's.
    """
    h, w = image.shape
    if levels is None:
        levels = max(1, int(np.floor(np.log2(min(h, w)))) - 3)
    lo, hi = float(image.min()), float(image.max())
    if hi - lo < 1e-12:
        return image.copy()
    refs = np.linspace(lo, hi, n_samples)
    remapped = _remap(image[None], refs[:, None, None], sigma_r, alpha)       # (K, H, W)
    remapped_pyr = laplacian_pyramid(remapped, levels)
    gauss = gaussian_pyramid(image, levels)
    out = []
    step = (hi - lo) / (n_samples - 1)
    for lev in range(levels - 1):
        pos = np.clip((gauss[lev] - lo) / step, 0, n_samples - 1)
        k0 = np.minimum(np.floor(pos).astype(np.int64), n_samples - 2)
        frac = pos - k0
        band = remapped_pyr[lev]
        c0 = np.take_along_axis(band, k0[None], axis=0)[0]
        c1 = np.take_along_axis(band, (k0 + 1)[None], axis=0)[0]
        out.append((1 - frac) * c0 + frac * c1)
    out.append(gauss[-1])
    return collapse_laplacian(out)


def llf_decompose(image: np.ndarray, scales: int, **llf) -> tuple[list[np.ndarray], np.ndarray]:
    """Residual images ``R_0..R_{L-1}`` and the coarsest approximate image ``I_L`` (see module doc)."""
    residuals = []
    current = image
    for _ in range(scales):
        approx = local_laplacian_filter(current, **llf)
        nxt = pyramid_reduce(approx)
        residuals.append(current - pyramid_expand(nxt, current.shape))
        current = nxt
    return residuals, current


def llf_reconstruct(residuals: list[np.ndarray], coarse: np.ndarray) -> np.ndarray:
    out = coarse
    for res in reversed(residuals):
        out = res + pyramid_expand(out, res.shape)
    return out


def _local_mean(x: np.ndarray) -> np.ndarray:
    return _blur(x, _SMOOTH_3)


def fuse_approximate(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Local-energy-maximum rule: A where its 3x3-weighted energy is at least B's."""
    return np.where(_local_mean(a * a) >= _local_mean(b * b), a, b)


def fuse_residual(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IOI rule: the residual whose 3x3-weighted mean magnitude (information of interest) is larger; ties A."""
    return np.where(_local_mean(np.abs(a)) >= _local_mean(np.abs(b)), a, b)


@register_method("llf_ioi", citation="J. Du, W. Li, B. Xiao, IEEE Trans. Image Process. 26(12):5855-5866, 2017",
                 allowed={"scales": between(1, 10), "sigma_r": above(0), "alpha": above(0), "n_samples": between(2)})
def llf_ioi_fusion(a: np.ndarray, b: np.ndarray, *, scales: int = 4, sigma_r: float = 0.1,
                   alpha: float = 2.0, n_samples: int = 10) -> np.ndarray:
    """LLF-IOI fusion (Du, Li, Xiao 2017): LLF multi-scale decomposition, local-energy and IOI rules.

    Parameters
    ----------
    a, b : (H, W) float images in [0, 1].
    scales : number of LLF scales (residual images) per source.
    sigma_r : LLF detail/edge threshold (intensity units).
    alpha : LLF detail exponent (> 1 smooths details below ``sigma_r``).
    n_samples : intensity samples of the fast LLF (Aubry et al. 2014).

    Returns
    -------
    (H, W) float32, unclipped.
    """
    if int(scales) != scales or scales < 1:
        raise UserError(f"llf_ioi: scales must be a positive integer, got {scales!r}")
    if min(np.shape(a)) < 2 ** (scales + 1):
        raise UserError(f"llf_ioi: image {np.shape(a)} too small for {scales} scales (needs >= {2 ** (scales + 1)} px)")
    if not sigma_r > 0 or not alpha > 0:
        raise UserError(f"llf_ioi: sigma_r and alpha must be > 0, got {sigma_r!r}, {alpha!r}")
    if int(n_samples) != n_samples or n_samples < 2:
        raise UserError(f"llf_ioi: n_samples must be an integer >= 2, got {n_samples!r}")
    llf = dict(sigma_r=float(sigma_r), alpha=float(alpha), n_samples=int(n_samples))
    res_a, coarse_a = llf_decompose(np.asarray(a, dtype=np.float64), int(scales), **llf)
    res_b, coarse_b = llf_decompose(np.asarray(b, dtype=np.float64), int(scales), **llf)
    fused = [fuse_residual(ra, rb) for ra, rb in zip(res_a, res_b)]
    return llf_reconstruct(fused, fuse_approximate(coarse_a, coarse_b)).astype(np.float32)
