"""Separable window filtering in compiled loops (numba), with ``scipy.ndimage.correlate1d``'s arithmetic.

For a symmetric window of half-length h, ndimage computes each output as
``x[i] w[h]`` then, for j = h down to 1, ``+= (x[i - j] + x[i + j]) w[h - j]``; the loops here do the same
additions in the same order (no fastmath, so no reordering or fused multiply-adds), whole rows at a
time so that they vectorise. The caller pads the borders (``np.pad``) the way ndimage's mode extends
them. Imported only through ``metrics._compiled.compiled_kernels``, which falls back to ndimage.
"""
from __future__ import annotations

import numba
import numpy as np

from metrics._compiled import CACHE

_JIT = dict(cache=CACHE, nogil=True)


@numba.njit(**_JIT)
def correlate_columns(padded, w, out):
    """``out[i, :]`` = the symmetric window ``w`` along axis 0 at row i + h of ``padded`` (rows + 2h)."""
    h = len(w) // 2
    rows, cols = out.shape
    for i in range(rows):
        row = out[i]
        centre = padded[i + h]
        for c in range(cols):
            row[c] = centre[c] * w[h]
        for j in range(h, 0, -1):
            above, below, wj = padded[i + h - j], padded[i + h + j], w[h - j]
            for c in range(cols):
                row[c] += (above[c] + below[c]) * wj


@numba.njit(**_JIT)
def correlate_rows(padded, w, out):
    """``out[:, c]`` = the symmetric window ``w`` along axis 1 at column c + h of ``padded`` (cols + 2h).
    Accumulates in a private row buffer: with ``out`` written inside the tap loop LLVM does not
    vectorise (it cannot rule out that ``out`` and ``padded`` overlap)."""
    h = len(w) // 2
    rows, cols = out.shape
    acc = np.empty(cols)
    for i in range(rows):
        line = padded[i]
        for c in range(cols):
            acc[c] = line[c + h] * w[h]
        for j in range(h, 0, -1):
            left, right, wj = line[h - j:h - j + cols], line[h + j:h + j + cols], w[h - j]
            for c in range(cols):
                acc[c] += (left[c] + right[c]) * wj
        out[i, :] = acc


@numba.njit(**_JIT)
def correlate_taps(padded, tap_rows, tap_cols, weights, out):
    """``out[i, c]`` = sum over the taps t, in order, of ``padded[i + tap_rows[t], c + tap_cols[t]] *
    weights[t]``, starting from 0.0: ``scipy.ndimage.correlate``'s sum for a small 2-D kernel when the
    taps are its non-zero weights in C order (the order and the skipped zeros decide the last bit and
    the sign of a zero). Each tap's row is sliced first and indexed from 0: indexing with ``c + offset``
    (a signed sum numba must check for wrap-around) kept LLVM from vectorising, 3.5x slower."""
    rows, cols = out.shape
    acc = np.empty(cols)
    for i in range(rows):
        acc[:] = 0.0
        for t in range(len(weights)):
            offset, w = tap_cols[t], weights[t]
            line = padded[i + tap_rows[t], offset:offset + cols]
            for c in range(cols):
                acc[c] += line[c] * w
        out[i, :] = acc
