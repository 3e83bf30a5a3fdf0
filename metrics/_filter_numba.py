"""Separable window filtering in compiled loops (numba), with ``scipy.ndimage.correlate1d``'s arithmetic.

For a symmetric window of half-length h, ndimage computes each output as
``x[i] w[h]`` then, for j = h down to 1, ``+= (x[i - j] + x[i + j]) w[h - j]``; the loops here do the same
additions in the same order (no fastmath, so no reordering or fused multiply-adds), whole rows at a
time so that they vectorise. The borders are extended the way ndimage's mode extends them, through
index maps the caller builds (rows are copied only for the output rows near the borders). Imported
only through ``metrics._compiled.compiled_kernels``, which falls back to ndimage.
"""
from __future__ import annotations

import numba
import numpy as np

from metrics._compiled import CACHE

_JIT = dict(cache=CACHE, nogil=True)


@numba.njit(inline="always", **_JIT)
def _start_two(acc, centre, w_centre, a1, b1, w1, a2, b2, w2):
    """``acc = centre * w_centre``, then ``+= (a1 + b1) w1``, then ``+= (a2 + b2) w2``, in one pass."""
    for c in range(len(acc)):
        t = centre[c] * w_centre
        t += (a1[c] + b1[c]) * w1
        t += (a2[c] + b2[c]) * w2
        acc[c] = t


@numba.njit(inline="always", **_JIT)
def _add_three(acc, a1, b1, w1, a2, b2, w2, a3, b3, w3):
    """``acc += (a1 + b1) w1``, then ``+= (a2 + b2) w2``, then ``+= (a3 + b3) w3``: one pass for three
    pairs (the same additions in the same order as three passes, a third of the loads and stores)."""
    for c in range(len(acc)):
        t = acc[c]
        t += (a1[c] + b1[c]) * w1
        t += (a2[c] + b2[c]) * w2
        t += (a3[c] + b3[c]) * w3
        acc[c] = t


@numba.njit(inline="always", **_JIT)
def _add_one(acc, a1, b1, w1):
    for c in range(len(acc)):
        acc[c] += (a1[c] + b1[c]) * w1


@numba.njit(inline="always", **_JIT)
def _filter_axis0(src, first, w, acc):
    """``acc`` = the window ``w`` over rows ``first`` to ``first + 2h`` of ``src``, centred on ``first + h``."""
    h = len(w) // 2
    j = h
    if h >= 2:
        _start_two(acc, src[first + h], w[h], src[first], src[first + 2 * h], w[0],
                   src[first + 1], src[first + 2 * h - 1], w[1])
        j = h - 2
    else:
        centre, w_centre = src[first + h], w[h]
        for c in range(len(acc)):
            acc[c] = centre[c] * w_centre
    while j >= 3:
        _add_three(acc, src[first + h - j], src[first + h + j], w[h - j],
                   src[first + h - j + 1], src[first + h + j - 1], w[h - j + 1],
                   src[first + h - j + 2], src[first + h + j - 2], w[h - j + 2])
        j -= 3
    while j >= 1:
        _add_one(acc, src[first + h - j], src[first + h + j], w[h - j])
        j -= 1


@numba.njit(inline="always", **_JIT)
def _filter_axis1(line, w, acc):
    """``acc[c]`` = the window ``w`` centred on ``line[c + h]``."""
    h, n = len(w) // 2, len(acc)
    j = h
    if h >= 2:
        _start_two(acc, line[h:h + n], w[h], line[:n], line[2 * h:2 * h + n], w[0],
                   line[1:1 + n], line[2 * h - 1:2 * h - 1 + n], w[1])
        j = h - 2
    else:
        centre, w_centre = line[h:h + n], w[h]
        for c in range(n):
            acc[c] = centre[c] * w_centre
    while j >= 3:
        _add_three(acc, line[h - j:h - j + n], line[h + j:h + j + n], w[h - j],
                   line[h - j + 1:h - j + 1 + n], line[h + j - 1:h + j - 1 + n], w[h - j + 1],
                   line[h - j + 2:h - j + 2 + n], line[h + j - 2:h + j - 2 + n], w[h - j + 2])
        j -= 3
    while j >= 1:
        _add_one(acc, line[h - j:h - j + n], line[h + j:h + j + n], w[h - j])
        j -= 1


@numba.njit(inline="always", **_JIT)
def _filter_rows(src, first, i0, i1, w, col_map, lead, line, out):
    """Output rows i0 to i1 - 1 of ``correlate_separable``, the axis-0 window of row i being the 2h + 1
    rows of ``src`` from ``first + i - i0``."""
    width = src.shape[1]
    middle = line[lead:lead + width]
    for i in range(i0, i1):
        _filter_axis0(src, first + i - i0, w, middle)
        for k in range(lead):
            q = col_map[k]
            line[k] = middle[q] if q >= 0 else 0.0
        for k in range(lead + width, len(col_map)):
            q = col_map[k]
            line[k] = middle[q] if q >= 0 else 0.0
        _filter_axis1(line, w, out[i])


@numba.njit(**_JIT)
def correlate_separable(x, w, row_map, col_map, lead, out):
    """``out`` = ``x`` correlated with the symmetric window ``w`` along axis 0, then along axis 1, each
    axis extended by its map: ``row_map[k]`` is the row of ``x`` at extended position k (-1: zero),
    and output row i is centred on position i + h; likewise ``col_map``, whose positions lead to
    lead + x.shape[1] - 1 must be x's columns in order. That is ``np.pad`` the rows, filter axis 0,
    ``np.pad`` the columns, filter axis 1, without the padded copies; identity maps give 'valid'.

    Per output row, the axis-0 pass goes into a private row buffer (with room for the column border,
    filled from the map), which the axis-1 pass reads and writes into ``out``. The axis-0 pass reads
    consecutive rows of one 2-D array: of ``x`` itself where the map gives x's rows in order (the
    interior), else of a copy of the extended rows a run of border rows needs (a handful: a row chosen
    per tap between ``x`` and a zero row costs numba reference counting per row view, 3x the
    arithmetic). The taps are ndimage's, in its order: ``x[i] w[h]``, then for j = h down to 1,
    ``+= (x[i - j] + x[i + j]) w[h - j]``; the first two pairs go with the centre and the others three
    at a time, so that a buffer is loaded and stored once per three taps (the same additions: the same
    bits)."""
    h = len(w) // 2
    width, rows = x.shape[1], out.shape[0]
    line = np.empty(len(col_map))
    # ordered[k]: how many positions up to k map to consecutive rows of x (row i's window is the
    # 2h + 1 positions from i, so it reads x directly when ordered[i + 2h] > 2h)
    ordered = np.zeros(len(row_map), np.intp)
    for k in range(len(row_map)):
        if row_map[k] >= 0:
            ordered[k] = ordered[k - 1] + 1 if k > 0 and row_map[k] == row_map[k - 1] + 1 else 1
    i = 0
    while i < rows:
        j = i
        if ordered[i + 2 * h] > 2 * h:
            while j < rows and ordered[j + 2 * h] > 2 * h:
                j += 1
            _filter_rows(x, row_map[i], i, j, w, col_map, lead, line, out)
        else:
            while j < rows and ordered[j + 2 * h] <= 2 * h:
                j += 1
            edge = np.empty((j - i + 2 * h, width))
            for k in range(len(edge)):
                q = row_map[i + k]
                if q >= 0:
                    edge[k] = x[q]
                else:
                    edge[k] = 0.0
            _filter_rows(edge, 0, i, j, w, col_map, lead, line, out)
        i = j


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
