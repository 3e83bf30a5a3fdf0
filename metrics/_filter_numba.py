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
def _source_row(x, row_map, k, zero):
    """Row ``k`` of ``x`` extended along axis 0 by ``row_map`` (-1: a zero row)."""
    r = row_map[k]
    return x[r] if r >= 0 else zero


@numba.njit(inline="always", **_JIT)
def _filter_axis0(x, row_map, i, w, zero, acc):
    """``acc`` = output row i of the axis-0 pass over ``x`` extended by ``row_map``."""
    h = len(w) // 2
    j = h
    if h >= 2:
        _start_two(acc, _source_row(x, row_map, i + h, zero), w[h],
                   _source_row(x, row_map, i, zero), _source_row(x, row_map, i + 2 * h, zero), w[0],
                   _source_row(x, row_map, i + 1, zero), _source_row(x, row_map, i + 2 * h - 1, zero), w[1])
        j = h - 2
    else:
        centre, w_centre = _source_row(x, row_map, i + h, zero), w[h]
        for c in range(len(acc)):
            acc[c] = centre[c] * w_centre
    while j >= 3:
        _add_three(acc, _source_row(x, row_map, i + h - j, zero), _source_row(x, row_map, i + h + j, zero), w[h - j],
                   _source_row(x, row_map, i + h - j + 1, zero), _source_row(x, row_map, i + h + j - 1, zero),
                   w[h - j + 1], _source_row(x, row_map, i + h - j + 2, zero),
                   _source_row(x, row_map, i + h + j - 2, zero), w[h - j + 2])
        j -= 3
    while j >= 1:
        _add_one(acc, _source_row(x, row_map, i + h - j, zero), _source_row(x, row_map, i + h + j, zero), w[h - j])
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


@numba.njit(**_JIT)
def correlate_separable(x, w, row_map, col_map, lead, out):
    """``out`` = ``x`` correlated with the symmetric window ``w`` along axis 0, then along axis 1, each
    axis extended by its map: ``row_map[k]`` is the row of ``x`` at extended position k (-1: zero),
    and output row i is centred on position i + h; likewise ``col_map``, whose positions lead to
    lead + x.shape[1] - 1 must be x's columns in order. That is ``np.pad`` the rows, filter axis 0,
    ``np.pad`` the columns, filter axis 1, without the padded copies; identity maps give 'valid'.

    Per output row, the axis-0 pass goes into a private row buffer (with room for the column border,
    filled from the map), which the axis-1 pass reads. The taps are ndimage's, in its order:
    ``x[i] w[h]``, then for j = h down to 1, ``+= (x[i - j] + x[i + j]) w[h - j]``; the first two pairs
    go with the centre and the others three at a time, so that a buffer is loaded and stored once per
    three taps (the same additions: the same bits)."""
    width = x.shape[1]
    zero = np.zeros(width)
    line = np.empty(len(col_map))
    middle = line[lead:lead + width]
    acc = np.empty(out.shape[1])
    for i in range(out.shape[0]):
        _filter_axis0(x, row_map, i, w, zero, middle)
        for k in range(lead):
            q = col_map[k]
            line[k] = middle[q] if q >= 0 else 0.0
        for k in range(lead + width, len(col_map)):
            q = col_map[k]
            line[k] = middle[q] if q >= 0 else 0.0
        _filter_axis1(line, w, acc)
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
