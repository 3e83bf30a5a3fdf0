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
    and the moments of the PC covariance. Row by row, orientations in order, with the pixels
    innermost in row buffers, so that the loops vectorise (4.5x faster than orientations innermost;
    each pixel's sums are the same additions in the same order)."""
    n_orient, rows, cols = energy.shape
    half = n_orient / 2
    eps32, one32 = F32_EPS, np.float32(1)
    num, covx2, covy2, covxy = np.empty(cols), np.empty(cols), np.empty(cols), np.empty(cols)
    den = np.empty(cols, np.float32)
    for r in range(rows):
        for o in range(n_orient):
            row_energy, row_spread, row_an = energy[o, r], spread_exp[o, r], sum_an[o, r]
            noise, cos_o, sin_o = threshold[o], cos_angle[o], sin_angle[o]
            for c in range(cols):
                compensated = max(np.float64(row_energy[c]) - noise, 0.0)
                weight = one32 / (one32 + row_spread[c])
                weighted = weight * compensated
                pc_orient = weighted / np.float64(row_an[c])
                cx, cy = pc_orient * cos_o, pc_orient * sin_o
                if o == 0:
                    num[c], den[c] = weighted, row_an[c]
                    covx2[c], covy2[c], covxy[c] = cx * cx, cy * cy, cx * cy
                else:
                    num[c] += weighted
                    den[c] += row_an[c]
                    covx2[c] += cx * cx
                    covy2[c] += cy * cy
                    covxy[c] += cx * cy
        row_pc, row_big, row_small = pc[r], big[r], small[r]
        for c in range(cols):
            row_pc[c] = num[c] / (den[c] + eps32)
            x2, y2, xy = covx2[c] / half, covy2[c] / half, covxy[c] / n_orient
            denom = np.sqrt(xy * xy + (x2 - y2) ** 2) + 1e-4
            row_big[c] = (y2 + x2 + denom) / 2
            row_small[c] = (y2 + x2 - denom) / 2


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


_DIGITS = ((20, 12), (10, 10), (0, 10))   # (shift, bits) of the ordered key's digits, most significant first


@numba.njit(inline="always", **_JIT)
def _digit_histogram(keys, count, level, hist):
    """The histogram (a view of ``hist``) of digit ``level`` over the first ``count`` keys."""
    shift, bits = _DIGITS[level]
    digits = hist[:1 << bits]
    digits[:] = 0
    mask = np.uint32((1 << bits) - 1)
    for i in range(count):
        digits[(keys[i] >> np.uint32(shift)) & mask] += 1
    return digits


@numba.njit(inline="always", **_JIT)
def _keep_digit(keys, count, level, digit, out):
    """Copies the keys (of the first ``count``) whose digit ``level`` is ``digit`` to the front of ``out``;
    returns how many."""
    shift, bits = _DIGITS[level]
    mask = np.uint32((1 << bits) - 1)
    kept = 0
    for i in range(count):
        if (keys[i] >> np.uint32(shift)) & mask == digit:
            out[kept] = keys[i]
            kept += 1
    return kept


@numba.njit(**_JIT)
def _key_of_rank(keys, count, rank, hist, spare):
    """The key of the given rank (0-based) among the first ``count`` ``keys``, which share their first
    digit: radix select on the two lower digits (the keys left in the rank's bin of the second digit
    are copied to ``spare``; ``keys`` is not modified)."""
    key = keys[0] & ~np.uint32((1 << (32 - _DIGITS[0][1])) - 1)
    for level in (1, 2):
        digit, rank = _bin_of_rank(_digit_histogram(keys, count, level, hist), rank)
        key |= np.uint32(digit) << np.uint32(_DIGITS[level][0])
        if level == 1:
            count = _keep_digit(keys, count, level, digit, spare)
            keys = spare
    return key


@numba.njit(**_JIT)
def row_medians(x, out):
    """``out[r] = np.median(x[r])`` for the rows of a float32 array, bit for bit (the middle order
    statistic, or the float32 mean (0 + a + b) / 2 of the two middle ones as numpy's mean computes it),
    by a radix select on the floats' ordered bits: a 12-bit digit histogrammed over the whole row (in
    L1 cache), then 10 and 10 bits over only the keys in the middle ranks' bin (~3x faster than a
    16-bit histogram per middle rank, ~15x faster than numpy's introselect here). Returns False,
    leaving ``out`` unset, if a row holds a NaN (numpy's median is NaN there)."""
    rows, n = x.shape
    bits = x.view(np.uint32)
    keys, candidates, spare = np.empty(n, np.uint32), np.empty(n, np.uint32), np.empty(n, np.uint32)
    hist = np.empty(1 << 12, np.int64)
    values = np.empty(2, np.float32)
    for r in range(rows):
        nan = False
        for i in range(n):
            nan |= x[r, i] != x[r, i]
            keys[i] = _order_key(bits[r, i])
        if nan:
            return False
        first = _digit_histogram(keys, n, 0, hist).copy()
        ranks = (n // 2 - 1, n // 2) if n % 2 == 0 else (n // 2, n // 2)
        collected = -1
        for q in range(2):
            digit, within = _bin_of_rank(first, ranks[q])
            if digit != collected:
                count = _keep_digit(keys, n, 0, digit, candidates)
                collected = digit
            key = _key_of_rank(candidates, count, within, hist, spare)
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


@numba.njit(**_JIT)
def best_local_correlation(mu_f, sq_f, mus, sqs, crosses, masks, c, out):
    """Zhao's masked local correlation of a feature map, best of the three references, per pixel:
    ``out = np.max([np.where(mask, r, 0.0) for each reference], axis=0)`` with
    r = (cov + c) / (sqrt(|var var_f|) + c), var = sq - mu^2, cov = cross - mu mu_f, var_f = sq_f - mu_f^2
    from the filtered maps -- numpy's operations in its order, in one pass instead of some thirty."""
    rows, cols = out.shape
    for i in range(rows):
        row_mu_f, row_sq_f, row = mu_f[i], sq_f[i], out[i]
        for j in range(cols):
            var_f = row_sq_f[j] - row_mu_f[j] * row_mu_f[j]
            best = 0.0
            for k in range(len(mus)):
                mu = mus[k][i, j]
                var = sqs[k][i, j] - mu * mu
                cov = crosses[k][i, j] - mu * row_mu_f[j]
                r = (cov + c) / (np.sqrt(np.abs(var * var_f)) + c) if masks[k][i, j] else 0.0
                if k == 0 or not (best >= r or best != best):     # np.maximum: the first NaN wins
                    best = r
            row[j] = best

