"""Phase congruency's per-pixel work after the log-Gabor filtering as two compiled loops (numba).

``metrics.phase.phase_congruency`` in numpy makes some thirty passes over (orientation, scale, rows, cols)
arrays; here each pixel's 24 filter responses are read once. The arithmetic is the numpy path's, in its
precisions (float32 for the responses' sums and energies, float64 from the noise threshold on) and
orders (scales summed in order, orientations summed in order). Imported only through
``metrics._compiled.compiled_kernels``, which falls back to the numpy path.
"""
from __future__ import annotations

import numba
import numpy as np

from metrics._compiled import CACHE

_JIT = dict(cache=CACHE, nogil=True, error_model="numpy")   # numpy's 0/0 -> NaN, no exception
F32_EPS = np.float32(1e-4)      # metrics.phase.PC_EPS where numpy keeps float32 (a Python float is 'weak')


@numba.njit(inline="always", **_JIT)
def _amplitude(z):
    """|z| of a complex64 exactly as numpy's SIMD loop computes it: larger * sqrt(fma(r, r, 1)) with
    r = smaller / larger, in float32 (the fma as one float64 expression: the product of two float32
    is exact in float64). Not the correctly rounded hypot: that differs in the last bit for ~1/3 of
    the values."""
    re, im = abs(z.real), abs(z.imag)
    larger, smaller = max(re, im), min(re, im)
    if larger == 0:
        return np.float32(0)
    r = np.float64(smaller / larger)
    return np.sqrt(np.float32(r * r + 1.0)) * larger


@numba.njit(**_JIT)
def orientation_sums(eo, cut_off, sharpness, sum_an, spread_exponent, energy, first_scale_power):
    """Per orientation and pixel, from the responses ``eo`` (orient, scale, rows, cols) complex64:
    the amplitudes' sum over scales, the exponent (cut_off - width) g of the frequency-spread weight
    (width = sum / (max + eps) / n_scale; numpy takes the exp: its float32 exp is not libm's), Kovesi's
    energy sum_s [e mean_e + o mean_o - |e mean_o - o mean_e|] (mean_e, mean_o: the unit vector of the
    summed response) and the smallest scale's squared amplitude (for the noise estimate). All float32,
    as the numpy path. Row by row, with the pixels innermost, so that the loops vectorise."""
    n_orient, n_scale, rows, cols = eo.shape
    sum_e, sum_o, amax = np.empty(cols, np.float32), np.empty(cols, np.float32), np.empty(cols, np.float32)
    cut32, sharp32, scales32 = np.float32(cut_off), np.float32(sharpness), np.float32(n_scale)
    for o in range(n_orient):
        for r in range(rows):
            san, spread, total = sum_an[o, r], spread_exponent[o, r], energy[o, r]
            for c in range(cols):
                z = eo[o, 0, r, c]
                amp = _amplitude(z)
                sum_e[c], sum_o[c], san[c], amax[c] = z.real, z.imag, amp, amp
                first_scale_power[o, r, c] = amp * amp
            for s in range(1, n_scale):
                for c in range(cols):
                    z = eo[o, s, r, c]
                    amp = _amplitude(z)
                    sum_e[c] += z.real
                    sum_o[c] += z.imag
                    san[c] += amp
                    amax[c] = max(amax[c], amp)
            for c in range(cols):
                x_energy = np.sqrt(sum_e[c] * sum_e[c] + sum_o[c] * sum_o[c]) + F32_EPS
                sum_e[c], sum_o[c] = sum_e[c] / x_energy, sum_o[c] / x_energy     # now mean_e, mean_o
                spread[c] = (cut32 - san[c] / (amax[c] + F32_EPS) / scales32) * sharp32
            for s in range(n_scale):
                for c in range(cols):
                    z = eo[o, s, r, c]
                    aligned = z.real * sum_e[c]
                    aligned += z.imag * sum_o[c]
                    aligned -= abs(z.real * sum_o[c] - z.imag * sum_e[c])
                    total[c] = aligned if s == 0 else total[c] + aligned


@numba.njit(**_JIT)
def congruency_and_moments(sum_an, spread_exp, energy, threshold, cos_angle, sin_angle, pc, big, small):
    """PC, maximum and minimum moment per pixel from ``orientation_sums``' maps (``spread_exp``: exp of
    its spread exponent) and the per-orientation noise ``threshold`` (float64 from here on, as in
    numpy): the noise-compensated energy, weighted by the frequency spread, summed over orientations,
    and the moments of the PC covariance."""
    n_orient, rows, cols = energy.shape
    half = n_orient / 2
    eps32, one32 = F32_EPS, np.float32(1)
    for r in range(rows):
        for c in range(cols):
            num, den = 0.0, np.float32(0)
            covx2, covy2, covxy = 0.0, 0.0, 0.0
            for o in range(n_orient):
                compensated = max(np.float64(energy[o, r, c]) - threshold[o], 0.0)
                weight = one32 / (one32 + spread_exp[o, r, c])
                weighted = weight * compensated
                num = weighted if o == 0 else num + weighted
                den = sum_an[o, r, c] if o == 0 else den + sum_an[o, r, c]
                pc_orient = weighted / np.float64(sum_an[o, r, c])
                cx, cy = pc_orient * cos_angle[o], pc_orient * sin_angle[o]
                covx2 = cx * cx if o == 0 else covx2 + cx * cx
                covy2 = cy * cy if o == 0 else covy2 + cy * cy
                covxy = cx * cy if o == 0 else covxy + cx * cy
            pc[r, c] = num / (den + eps32)
            covx2, covy2, covxy = covx2 / half, covy2 / half, covxy / n_orient
            denom = np.sqrt(covxy * covxy + (covx2 - covy2) ** 2) + 1e-4
            big[r, c] = (covy2 + covx2 + denom) / 2
            small[r, c] = (covy2 + covx2 - denom) / 2


@numba.njit(inline="always", **_JIT)
def _order_key(bits):
    """A float32's bits as an unsigned key in the floats' order (negative floats: all bits flipped)."""
    return ~bits if bits >> np.uint32(31) else bits | np.uint32(0x80000000)


@numba.njit(inline="always", **_JIT)
def _bin_of_rank(hist, rank):
    """(bin, rank within it) of the element of the given rank (0-based) under the histogram."""
    below = 0
    for b in range(len(hist)):
        if below + hist[b] > rank:
            return b, rank - below
        below += hist[b]
    return len(hist) - 1, 0


@numba.njit(**_JIT)
def row_medians(x, out):
    """``out[r] = np.median(x[r])`` for the rows of a float32 array, bit for bit (the middle order
    statistic, or the float32 mean (0 + a + b) / 2 of the two middle ones as numpy's mean computes it),
    by a two-pass radix select on the floats' ordered bits (~2x faster than numpy's introselect here).
    Returns False, leaving ``out`` unset, if a row holds a NaN (numpy's median is NaN there)."""
    rows, n = x.shape
    bits = x.view(np.uint32)
    high, low = np.empty(1 << 16, np.int64), np.empty(1 << 16, np.int64)
    for r in range(rows):
        high[:] = 0
        for i in range(n):
            if x[r, i] != x[r, i]:
                return False
            high[_order_key(bits[r, i]) >> np.uint32(16)] += 1
        values = np.empty(2, np.float32)
        ranks = (n // 2 - 1, n // 2) if n % 2 == 0 else (n // 2, n // 2)
        for q in range(2):
            top, within = _bin_of_rank(high, ranks[q])
            low[:] = 0
            for i in range(n):
                key = _order_key(bits[r, i])
                if key >> np.uint32(16) == top:
                    low[key & np.uint32(0xFFFF)] += 1
            bottom, _ = _bin_of_rank(low, within)
            key = np.uint32((top << 16) | bottom)
            raw = ~key if not key >> np.uint32(31) else key & np.uint32(0x7FFFFFFF)
            values[q] = np.array([raw], np.uint32).view(np.float32)[0]
        total = np.float32(0) + values[0]      # numpy's mean: a sum from 0 (so -0.0 becomes 0.0)
        out[r] = total if n % 2 else (total + values[1]) / np.float32(2)
    return True


@numba.njit(**_JIT)
def filter_spectrum(spectrum, bank, out):
    """``out[o, s] = spectrum * bank[o, s]`` (complex64 times float32, numpy's complex64 product with the
    filter as a real: re * b, im * b), written into a preallocated array for the in-place inverse
    FFTs, without numpy's (orient, scale, rows, cols) temporary."""
    for o in range(bank.shape[0]):
        for s in range(bank.shape[1]):
            for r in range(bank.shape[2]):
                for c in range(bank.shape[3]):
                    z, b = spectrum[r, c], bank[o, s, r, c]
                    out[o, s, r, c] = complex(z.real * b, z.imag * b)
