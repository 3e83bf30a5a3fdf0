"""Coefficient selection rules of the MST fusion methods (Rockinger's ``selc`` / ``selb``).

References
----------
H. Li, B. S. Manjunath, S. K. Mitra, "Multisensor image fusion using the wavelet transform",
Graph. Models Image Process. 57(3):235-245, 1995 (max-abs selection with a consistency check).
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter

from methods.transforms.pyramid import mirror_extend_zero_corners


def window_sum_valid(x: np.ndarray, size: int) -> np.ndarray:
    """``conv2(x, ones(size), 'valid')`` as shifted sums (exact for integer-valued ``x``)."""
    h, w = x.shape
    return sum(x[i:i + h - size + 1, j:j + w - size + 1] for i in range(size) for j in range(size))


def select_max_abs_consistent(c1: np.ndarray, c2: np.ndarray, window: int = 3) -> np.ndarray:
    """Choose-max with consistency check (Li et al. 1995; Rockinger ``selc(M1, M2, 3)``).

    ``A_i = ordfilt2(|es2(C_i, r)|, window^2, ones(window))`` (local max of the magnitude, zero outside
    the extended array), ``mm = conv2(A_1 > A_2, ones(window), 'valid') > floor(window^2 / 2)``, and
    the result is ``C_1`` where ``mm`` and ``C_2`` elsewhere. Ties go to ``C_2``. Works on complex
    sub-bands through their modulus (as the DTCWT fusion of the MST-SR toolbox).
    """
    r = window // 2
    a1 = maximum_filter(np.abs(mirror_extend_zero_corners(c1, r)), size=window, mode="constant", cval=0.0)
    a2 = maximum_filter(np.abs(mirror_extend_zero_corners(c2, r)), size=window, mode="constant", cval=0.0)
    votes = window_sum_valid((a1 > a2).astype(np.int32), window)
    return np.where(votes > (window * window) // 2, c1, c2)


def average(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """``selb(M1, M2, 3)``: the mean of the two low-pass bands."""
    return (c1 + c2) / 2
