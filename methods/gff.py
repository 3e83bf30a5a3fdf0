"""Guided filtering fusion (GFF).

S. Li, X. Kang, J. Hu, "Image fusion with guided filtering", IEEE Trans. Image Process.
22(7):2864-2875, 2013. Guided filter: K. He, J. Sun, X. Tang, "Guided image filtering", IEEE Trans.
Pattern Anal. Mach. Intell. 35(6):1397-1409, 2013.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve, uniform_filter

from methods.registry import above, between, register_method

LAPLACIAN_3X3 = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window clipped to the image (He's ``boxfilter(.) ./ N``)."""
    size = 2 * radius + 1
    ones = np.ones_like(x)
    return uniform_filter(x, size, mode="constant") / uniform_filter(ones, size, mode="constant")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al. guided filter, grey guide (Eqs. 5-8 of He et al.): ``q = mean(a) I + mean(b)``."""
    mean_i, mean_p = box_mean(guide, radius), box_mean(src, radius)
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    cov_ip = box_mean(guide * src, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """``fspecial('gaussian', size, sigma)``."""
    t = np.arange(size) - (size - 1) / 2
    g = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma * sigma))
    return g / g.sum()


@register_method("gff", citation="S. Li, X. Kang, J. Hu, \"Image fusion with guided filtering\", IEEE Trans. "
                                 "Image Process. 22(7):2864-2875, 2013",
                 allowed={"average_size": between(1), "saliency_size": between(1), "saliency_sigma": above(0),
                          "r1": between(1), "eps1": above(0), "r2": between(1), "eps2": above(0)})
def gff_fusion(a: np.ndarray, b: np.ndarray, *, average_size: int = 31, saliency_size: int = 11,
               saliency_sigma: float = 5.0, r1: int = 45, eps1: float = 0.3, r2: int = 7,
               eps2: float = 1e-6) -> np.ndarray:
    """Guided filtering fusion: two-scale split, Laplacian saliency, guided-filtered weight maps.

    Notes
    -----
    Li, Kang, Hu 2013, Sec. III: base ``B_n = I_n * Z`` (``average_size``^2 mean filter, Eq. 1),
    detail ``D_n = I_n - B_n`` (Eq. 2); saliency ``S_n = |I_n * L| * g`` (3x3 Laplacian, Gaussian
    ``saliency_size``^2 with ``saliency_sigma``, Eq. 3); ``P_n = 1`` where ``S_n`` is the largest
    (Eq. 4; on ties both are 1 and normalisation splits evenly); ``W^B_n = G_{r1,eps1}(P_n, I_n)``,
    ``W^D_n = G_{r2,eps2}(P_n, I_n)`` (Eq. 5) normalised to sum 1 per pixel; ``F = sum W^B B + sum
    W^D D`` (Eqs. 6-7). Borders are replicated (MATLAB ``imfilter(., 'replicate')``); the guided
    filter's box means use the window clipped to the image. ``eps1``/``eps2`` assume [0, 1] images.
    """
    sources = [np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)]
    bases = [uniform_filter(img, average_size, mode="nearest") for img in sources]
    g = gaussian_kernel(saliency_size, saliency_sigma)
    saliency = np.stack([convolve(np.abs(convolve(img, LAPLACIAN_3X3, mode="nearest")), g, mode="nearest")
                         for img in sources])
    masks = (saliency == saliency.max(axis=0)).astype(np.float64)
    w_base = np.stack([guided_filter(img, m, r1, eps1) for img, m in zip(sources, masks)])
    w_detail = np.stack([guided_filter(img, m, r2, eps2) for img, m in zip(sources, masks)])
    w_base /= w_base.sum(axis=0)
    w_detail /= w_detail.sum(axis=0)
    fused = sum(wb * base + wd * (img - base) for wb, wd, base, img in zip(w_base, w_detail, bases, sources))
    return fused.astype(np.float32)
