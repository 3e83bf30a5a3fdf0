"""Orthonormal 2-D DWT with periodic extension, as MATLAB ``dwt2(X, wavelet, 'mode', 'per')``.

For ``db1`` (the wavelet of the MST-SR toolbox's ``dwt_fuse``) the Haar step is written out with the
arithmetic of the Octave ``dwt2``/``idwt2`` shim used for the reference outputs: rows of sample pairs
first (``(x_{2k} +- x_{2k+1}) / sqrt(2)`` along the second axis), then columns. The order matters for
fusion, not for the transform: integer images give many exact magnitude ties between A and B, and the
``selc`` rule breaks ties towards B, so a different rounding of the same Haar coefficients flips
choices (about 0.5% of pixels with PyWavelets' ordering). Other wavelets go through PyWavelets
(``mode='periodization'``). Odd sizes are extended by repeating the last sample, as ``'per'`` does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pywt

SQRT2 = np.sqrt(2.0)


@dataclass
class WaveletPyramid:
    """Detail bands per level (finest first, each a (LH, HL, HH)-like triple), approximation, sizes."""
    details: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    base: np.ndarray
    sizes: list[tuple[int, int]]


def _haar_split(x: np.ndarray, axis: int):
    if x.shape[axis] % 2:
        x = np.concatenate([x, np.take(x, [-1], axis=axis)], axis=axis)
    even = np.take(x, np.arange(0, x.shape[axis], 2), axis=axis)
    odd = np.take(x, np.arange(1, x.shape[axis], 2), axis=axis)
    return (even + odd) / SQRT2, (even - odd) / SQRT2


def _haar_merge(low: np.ndarray, high: np.ndarray, axis: int) -> np.ndarray:
    shape = list(low.shape)
    shape[axis] *= 2
    out = np.empty(shape)
    even = [slice(None)] * 2
    odd = [slice(None)] * 2
    even[axis], odd[axis] = slice(0, None, 2), slice(1, None, 2)
    out[tuple(even)] = (low + high) / SQRT2
    out[tuple(odd)] = (low - high) / SQRT2
    return out


def dwt_decompose(x: np.ndarray, levels: int, wavelet: str = "db1") -> WaveletPyramid:
    """``levels`` steps of ``dwt2(., wavelet, 'mode', 'per')`` on the approximation band."""
    cur = np.asarray(x, dtype=np.float64)
    details, sizes = [], []
    for _ in range(levels):
        sizes.append(cur.shape)
        if wavelet == "db1":
            low, high = _haar_split(cur, axis=1)
            ll, lh = _haar_split(low, axis=0)
            hl, hh = _haar_split(high, axis=0)
            cur, bands = ll, (lh, hl, hh)
        else:
            cur, bands = pywt.dwt2(cur, wavelet, mode="periodization")
        details.append(bands)
    return WaveletPyramid(details, cur, sizes)


def dwt_reconstruct(pyr: WaveletPyramid, wavelet: str = "db1") -> np.ndarray:
    """Inverse of :func:`dwt_decompose` (``idwt2`` per level, cropped to each level's size)."""
    cur = pyr.base
    for bands, (h, w) in zip(reversed(pyr.details), reversed(pyr.sizes)):
        if wavelet == "db1":
            lh, hl, hh = bands
            cur = _haar_merge(_haar_merge(cur, lh, axis=0), _haar_merge(hl, hh, axis=0), axis=1)
        else:
            cur = pywt.idwt2((cur, bands), wavelet, mode="periodization")
        cur = cur[:h, :w]
    return cur
