"""Hierarchical Bayesian fusion (Zhao, Xu, Zhang, Liu, Zhang 2020).

The model and its inference as published (written out below; equation numbers not quoted). The
fused image f of an intensity source u (infrared in the paper; here source A, e.g. CT or PET)
and a texture source v (visible; here source B, the detail-rich MRI) is found as a regression on the
differences x = f - v and y = u - v. Both fidelities are Laplacian, written hierarchically as Gaussian
scale mixtures with exponential mixing densities, and the fused image keeps the texture source's
gradients through a total-variation penalty:

    y_i | x_i, a_i ~ N(x_i, a_i),   a_i ~ Exp(mean tau_a)      (f close to u, robustly)
    x_i | b_i      ~ N(0, b_i),     b_i ~ Exp(mean tau_b)      (f close to v, robustly)
    penalty lam ||grad x||_1                                   (f keeps v's edges)

EM treats a, b as missing data. E-step (the posterior of a_i given the current x is generalised
inverse Gaussian):

    C_i = E[1 / a_i] = sqrt(2 / tau_a) / |y_i - x_i|,   D_i = E[1 / b_i] = sqrt(2 / tau_b) / |x_i|,
    tau_a = mean_i E[a_i] = mean_i (1 / C_i + tau_a / 2),  tau_b likewise with D;

M-step: the weighted least-squares problem with TV penalty

    min_x  sum_i C_i (y_i - x_i)^2 + D_i x_i^2 + lam ||grad x||_1,

by half-quadratic splitting (x = h, grad h = g): a pixel-wise x-step, an FFT h-step and a
soft-threshold g-step. The fused image is f = x + v.

Reference
---------
Z. Zhao, S. Xu, C. Zhang, J. Liu, J. Zhang, "Bayesian fusion for infrared and visible images",
Signal Processing 177:107734, 2020 (arXiv:2005.05839; code github.com/Zhaozixiang1228/IVIF-Bayesian-Fusion,
``BayesFusion.m``).
"""
from __future__ import annotations

import numpy as np

from methods.registry import between, one_of, register_method

EPS = 1e-6   # the released code's guard against division by zero in the E-step


def _difference_otfs(shape):
    """Transfer functions of the circular forward differences along x (axis 1) and y (axis 0):
    ``(grad_x h)(i, j) = h(i, j + 1) - h(i, j)`` (MATLAB ``psf2otf([1, -1])``) and likewise along y."""
    kx = np.zeros(shape)
    kx[0, 0], kx[0, -1] = -1.0, 1.0
    ky = np.zeros(shape)
    ky[0, 0], ky[-1, 0] = -1.0, 1.0
    return np.fft.rfft2(kx), np.fft.rfft2(ky)


def _gradients(h: np.ndarray, convention: str):
    """The differences the g-step thresholds: the h-step's circular forward differences (``paper``), or
    the released code's ``imfilter(h, [1 -1])``: ``h(j) - h(j + 1)``, zero past the border (``code``)."""
    if convention == "paper":
        return np.roll(h, -1, axis=1) - h, np.roll(h, -1, axis=0) - h
    gx, gy = h.copy(), h.copy()
    gx[:, :-1] -= h[:, 1:]
    gy[:-1, :] -= h[1:, :]
    return gx, gy


def _soft(x: np.ndarray, threshold) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - threshold, 0.0)


def tv_h_step(x: np.ndarray, gx: np.ndarray, gy: np.ndarray, otfs=None) -> np.ndarray:
    """``argmin_h ||x - h||^2 + ||grad_x h - gx||^2 + ||grad_y h - gy||^2`` with circular forward
    differences: ``(I + grad' grad) h = x + grad' g``, diagonal in the Fourier domain."""
    kx, ky = otfs if otfs is not None else _difference_otfs(x.shape)
    spectrum = np.fft.rfft2(x) + np.conj(kx) * np.fft.rfft2(gx) + np.conj(ky) * np.fft.rfft2(gy)
    return np.fft.irfft2(spectrum / (1.0 + np.abs(kx) ** 2 + np.abs(ky) ** 2), s=x.shape)


def laplace_mixture_moments(residual: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """E-step moments of the mixing variance a of ``r | a ~ N(0, a)``, ``a ~ Exp(mean tau)``.

    The posterior of a is generalised inverse Gaussian GIG(1/2, r^2, 2/tau), whence
    ``E[1/a | r] = sqrt(2/tau) / |r|`` and ``E[a | r] = |r| sqrt(tau/2) + tau/2 = 1 / E[1/a | r] + tau/2``.
    ``residual`` carries the released code's guard (``x^2 + 1e-6`` or ``(y - x + 1e-6)^2``) already.
    """
    inverse = np.sqrt(2.0 / tau / (residual * residual))
    return inverse, 1.0 / (inverse + EPS) + tau / 2.0


@register_method("bayesian_fusion", citation="Z. Zhao, S. Xu, C. Zhang, J. Liu, J. Zhang, \"Bayesian fusion for "
                                              "infrared and visible images\", Signal Process. 177:107734, 2020",
                 allowed={"lam": between(0), "em_iterations": between(1), "inner_iterations": between(1),
                          "tv_convention": one_of(("paper", "code"))})
def bayesian_fusion(a: np.ndarray, b: np.ndarray, *, lam: float = 0.5, em_iterations: int = 15,
                    inner_iterations: int = 2, tv_convention: str = "paper") -> np.ndarray:
    """Hierarchical Bayesian fusion (Zhao et al. 2020): Laplacian fidelities, TV penalty, EM inference.

    Parameters
    ----------
    a : the intensity source u (the paper's infrared image).
    b : the texture source v (the paper's visible image), whose gradients the fused image keeps.
    lam : TV weight (0.5 in the released code).
    em_iterations, inner_iterations : EM iterations and half-quadratic-splitting sweeps per M-step
        (15 and 2 in the released code).
    tv_convention : ``"paper"`` (default): the g-step thresholds the same circular forward differences
        that the h-step inverts, so each sweep decreases the split objective. ``"code"``: as the released
        ``BayesFusion.m``, whose g-step uses ``imfilter(h, [1 -1])`` (the difference in the opposite
        direction, zero-padded) while the h-step uses ``psf2otf([1 -1])``.

    Notes
    -----
    As in the released code: C = D = 1, h = g = 0, tau_a = tau_b = 1 at the start; each EM iteration
    runs the M-step sweeps first and then the E-step; the splitting weight is rho = 1 in the first
    M-step and rho_i = (C_i + D_i) / 2 after; the E-step caps D at 2C (the pull towards v at most twice
    the pull towards u). One M-step sweep:

        x = (2 C y + rho h) / (2 C + 2 D + rho)                                   (pixel-wise)
        h = argmin ||x - h||^2 + ||grad_x h - g_x||^2 + ||grad_y h - g_y||^2     (FFT, periodic)
        g = shrink_{lam / rho}(grad h).
    """
    u = np.asarray(a, dtype=np.float64)
    v = np.asarray(b, dtype=np.float64)
    y = u - v
    otfs = _difference_otfs(y.shape)
    c = np.ones_like(y)
    d = np.ones_like(y)
    h = np.zeros_like(y)
    gx, gy = np.zeros_like(y), np.zeros_like(y)
    rho = 1.0
    tau_a = tau_b = 1.0
    x = np.zeros_like(y)
    for _ in range(em_iterations):
        for _ in range(inner_iterations):                        # M-step
            x = (2.0 * c * y + rho * h) / (2.0 * c + 2.0 * d + rho)
            h = tv_h_step(x, gx, gy, otfs)
            dx, dy = _gradients(h, tv_convention)
            gx, gy = _soft(dx, lam / rho), _soft(dy, lam / rho)
        d, _ = laplace_mixture_moments(np.sqrt(x * x + EPS), tau_b)      # E-step
        c, _ = laplace_mixture_moments(y - x + EPS, tau_a)
        d = np.minimum(d, 2.0 * c)
        rho = 0.5 * (c + d)
        # tau = mean E[a] = mean (1 / E[1/a] + tau / 2); as in the released code, D after its cap at 2C
        tau_b = float(np.mean(1.0 / (d + EPS) + tau_b / 2.0))
        tau_a = float(np.mean(1.0 / (c + EPS) + tau_a / 2.0))
    return (x + v).astype(np.float32)
