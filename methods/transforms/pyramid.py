"""Laplacian and ratio-of-low-pass pyramids exactly as in O. Rockinger's image fusion toolbox.

The toolbox (used unchanged by the MST-SR fusion toolbox of Liu et al. 2015) builds each level with
the 5-tap binomial kernel ``w = [1 4 6 4 1] / 16`` applied separably to an ``es2(., 2)`` extended
image with ``'valid'`` convolution; expansion uses ``undec2`` (zero insertion at rows/cols 1, 3, 5,
... 1-based) and the kernel ``2 w``. Odd-sized levels are first extended by one mirrored row/column
(``adb``). ``es2`` leaves its corner blocks at zero, and that is reproduced on purpose: those zeros
reach the filtered values near the image corners in the authors' outputs.

References
----------
P. J. Burt, E. H. Adelson, "The Laplacian pyramid as a compact image code", IEEE Trans. Commun.
31(4):532-540, 1983.
A. Toet, "Image fusion by a ratio of low-pass pyramid", Pattern Recognit. Lett. 9(4):245-253, 1989.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
RATIO_EPS = 1e-6  # Rockinger's ``eps`` in fuse_rat: absolute, so the ratio pyramid depends on input scale


def mirror_extend_zero_corners(x: np.ndarray, n: int) -> np.ndarray:
    """Rockinger's ``es2(X, n)``: mirror ``n`` rows/cols on every side, edge sample not repeated.

    Equals ``np.pad(x, n, mode='reflect')`` except that the four ``n x n`` corner blocks are zero.
    """
    y = np.pad(x, n, mode="reflect")
    y[:n, :n] = 0
    y[:n, -n:] = 0
    y[-n:, :n] = 0
    y[-n:, -n:] = 0
    return y


def extend_to_even(x: np.ndarray) -> np.ndarray:
    """Rockinger's ``adb``: append one mirrored row and/or column (edge not repeated) if the size is odd."""
    pad_r, pad_c = x.shape[0] % 2, x.shape[1] % 2
    if not (pad_r or pad_c):
        return x
    return np.pad(x, ((0, pad_r), (0, pad_c)), mode="reflect")


def separable_valid(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """``conv2(conv2(x, taps, 'valid'), taps', 'valid')`` for a symmetric kernel, as shifted sums."""
    k = len(taps)
    h, w = x.shape
    rows = sum(t * x[:, j:j + w - k + 1] for j, t in enumerate(taps))
    return sum(t * rows[j:j + h - k + 1, :] for j, t in enumerate(taps))


def _smooth(x: np.ndarray) -> np.ndarray:
    return separable_valid(mirror_extend_zero_corners(x, 2), BINOMIAL_5)


def _expand(low: np.ndarray) -> np.ndarray:
    """``conv2(conv2(es2(undec2(low), 2), 2w, 'valid'), 2w', 'valid')``."""
    up = np.zeros((2 * low.shape[0], 2 * low.shape[1]), dtype=low.dtype)
    up[::2, ::2] = low
    return separable_valid(mirror_extend_zero_corners(up, 2), 2.0 * BINOMIAL_5)


@dataclass
class Pyramid:
    """Band-pass levels (finest first), the coarsest low-pass, and each level's original size."""
    details: list[np.ndarray]
    base: np.ndarray
    sizes: list[tuple[int, int]]


def _decompose(x: np.ndarray, levels: int, ratio: bool) -> Pyramid:
    details, sizes = [], []
    cur = np.asarray(x, dtype=np.float64)
    for _ in range(levels):
        sizes.append(cur.shape)
        cur = extend_to_even(cur)
        low = _smooth(cur)
        predicted = _expand(low[::2, ::2])
        details.append(cur / (predicted + RATIO_EPS) if ratio else cur - predicted)
        cur = low[::2, ::2]
    return Pyramid(details, cur, sizes)


def _reconstruct(pyr: Pyramid, ratio: bool) -> np.ndarray:
    cur = pyr.base
    for detail, (h, w) in zip(reversed(pyr.details), reversed(pyr.sizes)):
        predicted = _expand(cur)
        cur = (predicted + RATIO_EPS) * detail if ratio else predicted + detail
        cur = cur[:h, :w]
    return cur


def laplacian_pyramid(x: np.ndarray, levels: int) -> Pyramid:
    """Burt-Adelson Laplacian pyramid: ``E_k = G_k - expand(reduce(G_k))`` (Rockinger ``fuse_lap``)."""
    return _decompose(x, levels, ratio=False)


def laplacian_reconstruct(pyr: Pyramid) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid`: ``G_k = expand(G_{k+1}) + E_k``, cropped per level."""
    return _reconstruct(pyr, ratio=False)


def ratio_pyramid(x: np.ndarray, levels: int) -> Pyramid:
    """Toet's ratio-of-low-pass pyramid: ``R_k = G_k / (expand(reduce(G_k)) + eps)``, eps = 1e-6."""
    return _decompose(x, levels, ratio=True)


def ratio_reconstruct(pyr: Pyramid) -> np.ndarray:
    """Inverse of :func:`ratio_pyramid`: ``G_k = (expand(G_{k+1}) + eps) R_k``."""
    return _reconstruct(pyr, ratio=True)
