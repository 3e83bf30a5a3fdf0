"""FMI's per-window work in compiled loops (numba): the same arithmetic as the numpy path in
``metrics.fmi``, window by window instead of 4096 windows per numpy call.

Three passes per block of windows, with numpy's vectorised log between them (libm's log is ~6x slower
than numpy's SIMD log, and a window needs 63 of them): ``window_pdfs`` (the windows' PDFs and which
windows are identical), ``window_terms`` (marginals, the Frechet bound's staircase walk, the mixture
weight, and per visited cell the joint value and its closed-form term) and ``window_scores`` (the joint
entropy and the normalised MI). Every operation mirrors a line of the numpy path in the same
order (sums left to right: ``sequential_sum``), so the flat-window rounding of ``fmi.m`` is kept;
``fastmath`` stays off for that reason. The differences are in the last bit of ln|1 - w| (libm) and of
the index moments (a loop instead of BLAS ``@``).

Imported only through ``metrics._compiled.compiled_kernels``, which falls back to the numpy path when
numba is missing or this module fails to compile.
"""
from __future__ import annotations

import numba
import numpy as np

from metrics._compiled import CACHE

L = 9                    # cells of a 3x3 window
STEPS = 2 * L - 1        # cells on the Frechet bound's staircase, at most
TINY = 1e-300            # metrics.fmi.TINY: ln(|p| + TINY) is finite at p = 0
_JIT = dict(cache=CACHE, nogil=True, error_model="numpy")   # numpy's 0/0 -> NaN instead of an exception


@numba.njit(inline="always", **_JIT)
def _minmax(v, out):
    """``_minmax_windows`` for one window (9 values): min-max normalised, a flat window all ones."""
    lo, hi = v[0], v[0]
    for k in range(1, L):
        lo, hi = min(lo, v[k]), max(hi, v[k])
    span = hi - lo
    for k in range(L):
        out[k] = 1.0 if span == 0 else (v[k] - lo) / span


@numba.njit(inline="always", **_JIT)
def _divide_by_sum(scaled):
    """``_window_pdfs`` for one normalised window, in place: divided by its column sums' sum."""
    total = 0.0
    for c in range(3):                      # column sums first, then their sum, both left to right
        total += (scaled[3 * c] + scaled[3 * c + 1]) + scaled[3 * c + 2]
    for k in range(L):
        scaled[k] /= total


@numba.njit(inline="always", **_JIT)
def _marginals(pdf, log_pdf, cdf, centred):
    """CDF and centred PDF of one window (``log_pdf`` given); returns (sum p ln p, mass, centred sum of
    squares, index standard deviation, CDF sum), each summed left to right as ``metrics.fmi`` does."""
    mass = pdf[0]
    cdf[0] = pdf[0]
    for k in range(1, L):
        cdf[k] = cdf[k - 1] + pdf[k]
        mass += pdf[k]
    plogp_sum, mean_index, second, cdf_sum = 0.0, 0.0, 0.0, 0.0   # (0 + x is x: same sums as numpy's)
    for k in range(L):
        plogp_sum += pdf[k] * log_pdf[k]
        i = k + 1.0
        mean_index += i * pdf[k]
        second += (i * i) * pdf[k]
        cdf_sum += cdf[k]
    mean = mass / L
    centred_ss = 0.0
    for k in range(L):
        centred[k] = pdf[k] - mean
        centred_ss += centred[k] * centred[k]
    sd = np.sqrt(max(second - mean_index * mean_index, 0.0))
    return plogp_sum, mass, centred_ss, sd, cdf_sum


@numba.njit(inline="always", **_JIT)
def _walk_rows(pdf, log_pdf, k, side, x_cdf, x_centred, y_hi, y_pdf, y_log, f_centred_k, f_centred_ss):
    """X's marginals (``_marginals``) and its walk rows: ascending interval ends, PDF and ln PDF,
    reversed for the countermonotone bound, plus the padding cells L.. (last end again, PDF 0; numpy
    clamps the index at L instead). Returns (marginal stats, c, negative)."""
    x_pdf, x_log = pdf[k, side + 1], log_pdf[k, side + 1]
    x_stats = _marginals(x_pdf, x_log, x_cdf, x_centred)
    num = 0.0
    for t in range(L):
        num += x_centred[t] * f_centred_k[t]
    c = 0.0 if num == 0 else num / np.sqrt(x_stats[2] * f_centred_ss)
    negative = c < 0
    for t in range(L):
        if negative:
            y_hi[t] = 1.0 if t == L - 1 else 1.0 - x_cdf[L - 2 - t]
            y_pdf[t], y_log[t] = x_pdf[L - 1 - t], x_log[L - 1 - t]
        else:
            y_hi[t], y_pdf[t], y_log[t] = x_cdf[t], x_pdf[t], x_log[t]
    for t in range(L, STEPS + 1):
        y_hi[t], y_pdf[t], y_log[t] = y_hi[L - 1], 0.0, 0.0
    return x_stats, c, negative


@numba.njit(inline="always", **_JIT)
def _finish_pair(f_stats, x_stats, c, negative, bound_sum, masses, independent, log_sums,
                 joint, closed_form_terms, closed_form, h_x, k, side):
    """The pair's mixture weight w from the bound's covariance, the closed form, H_X, and per visited
    cell the joint value and its term of the closed-form sum."""
    f_plogp_sum, f_mass, f_centred_ss, f_sd, f_cdf_sum = f_stats
    x_plogp_sum, x_mass, x_centred_ss, x_sd, x_cdf_sum = x_stats
    cov_bound = bound_sum - f_cdf_sum * x_cdf_sum
    if x_sd == 0 or f_sd == 0 or (not negative and c == 0):
        weight = 0.0
    else:
        weight = c * (f_sd * x_sd) / cov_bound
    one_minus_w = 1.0 - weight
    log_one_minus_w = np.log(abs(one_minus_w) + TINY)
    form = log_one_minus_w * (f_mass * x_mass) + x_mass * f_plogp_sum + f_mass * x_plogp_sum
    form *= one_minus_w
    closed_form[side, k], h_x[side, k] = form, -x_plogp_sum
    for step in range(STEPS):
        joint[k, side, step] = (masses[step] - independent[step]) * weight + independent[step]
        closed_form_terms[k, side, step] = ((log_sums[step] + log_one_minus_w) * independent[step]) * one_minus_w


@numba.njit(**_JIT)
def window_pdfs(fa, fb, ff, start, pdf, same):
    """For the 'valid' 3x3 windows start, start + 1, ... (row-major positions) of the float64 feature
    images: ``pdf[k, 0/1/2]`` the window PDFs of F, A, B (MATLAB's column-major ``sub(:)`` order) and
    ``same[0/1, k]`` whether A's / B's window is identical to F's -- B meets F's min-max normalised
    window wherever A's differed (``fmi.m``'s quirk, see ``metrics.fmi.feature_mutual_information``)."""
    cols = ff.shape[1] - 2
    a, b, f = np.empty(L), np.empty(L), np.empty(L)
    for k in range(pdf.shape[0]):
        r, q = divmod(start + k, cols)
        for cc in range(3):
            for rr in range(3):
                a[3 * cc + rr] = fa[r + rr, q + cc]
                b[3 * cc + rr] = fb[r + rr, q + cc]
                f[3 * cc + rr] = ff[r + rr, q + cc]
        a_same = True
        for t in range(L):
            a_same = a_same and a[t] == f[t]
        f_scaled = pdf[k, 0]
        _minmax(f, f_scaled)
        b_same = True
        for t in range(L):
            b_same = b_same and b[t] == (f[t] if a_same else f_scaled[t])
        same[0, k], same[1, k] = a_same, b_same
        _minmax(a, pdf[k, 1])
        _minmax(b, pdf[k, 2])
        for side in range(3):
            _divide_by_sum(pdf[k, side])


@numba.njit(**_JIT)
def window_terms(pdf, log_pdf, same, joint, closed_form_terms, closed_form, h_x, h_f):
    """Everything of the windows' normalised MI but the joint cells' logs: per pair (side 0: A-F,
    1: B-F) the joint values and closed-form terms of the staircase cells (``(n, 2, STEPS)``), the
    closed form and H_X (``(2, n)``), and H_F (``(n,)``), from ``window_pdfs``' PDFs and their logs.
    Pairs of identical windows are skipped (their score is 1; zeros in their cells).

    The staircase walk is a chain of dependent loads (latency-bound): the pairs that differ are walked
    two at a time in one loop (a window's two sources, or consecutive windows' pairs), so that the two
    chains overlap. Each pair's arithmetic is unchanged (``metrics.fmi._nelsen_nmi``'s order)."""
    n = pdf.shape[0]
    # F's side once per window: walk rows (CDF, PDF, ln PDF, padded), centred PDF and marginal stats
    f_rows = np.zeros((n, 3, STEPS + 1))
    f_centred = np.empty((n, L))
    f_stats = np.empty((n, 5))
    pairs = np.empty(2 * n, np.intp)            # k * 2 + side of the pairs that differ
    n_pairs = 0
    for k in range(n):
        f_pdf, f_log, f_cdf = f_rows[k, 1], f_rows[k, 2], f_rows[k, 0]
        for t in range(L):
            f_pdf[t], f_log[t] = pdf[k, 0, t], log_pdf[k, 0, t]
        st = _marginals(f_pdf, f_log, f_cdf, f_centred[k])
        for t in range(L, STEPS + 1):       # padding: empty intervals, PDF and ln PDF 0
            f_cdf[t] = f_cdf[L - 1]
        for q in range(5):
            f_stats[k, q] = st[q]
        h_f[k] = -st[0]
        for side in range(2):
            if same[side, k]:
                joint[k, side, :] = 0.0
                closed_form[side, k], h_x[side, k] = 0.0, 0.0
            else:
                pairs[n_pairs] = 2 * k + side
                n_pairs += 1
    x_cdf0, x_centred0, x_cdf1, x_centred1 = np.empty(L), np.empty(L), np.empty(L), np.empty(L)
    y0, y1 = np.empty((3, STEPS + 1)), np.empty((3, STEPS + 1))      # X's walk rows per lane
    m0, ind0, ls0 = np.empty(STEPS), np.empty(STEPS), np.empty(STEPS)   # per walked cell, lane 0
    m1, ind1, ls1 = np.empty(STEPS), np.empty(STEPS), np.empty(STEPS)   # lane 1
    for p in range(0, n_pairs, 2):
        q = min(p + 1, n_pairs - 1)         # an odd last pair is walked twice (same values written)
        k0, side0, k1, side1 = pairs[p] // 2, pairs[p] % 2, pairs[q] // 2, pairs[q] % 2
        fs0 = (f_stats[k0, 0], f_stats[k0, 1], f_stats[k0, 2], f_stats[k0, 3], f_stats[k0, 4])
        fs1 = (f_stats[k1, 0], f_stats[k1, 1], f_stats[k1, 2], f_stats[k1, 3], f_stats[k1, 4])
        xs0, c0, neg0 = _walk_rows(pdf, log_pdf, k0, side0, x_cdf0, x_centred0, y0[0], y0[1], y0[2],
                                   f_centred[k0], fs0[2])
        xs1, c1, neg1 = _walk_rows(pdf, log_pdf, k1, side1, x_cdf1, x_centred1, y1[0], y1[1], y1[2],
                                   f_centred[k1], fs1[2])
        fc0, fp0, fl0 = f_rows[k0, 0], f_rows[k0, 1], f_rows[k0, 2]
        fc1, fp1, fl1 = f_rows[k1, 0], f_rows[k1, 1], f_rows[k1, 2]
        yh0, yp0, yl0, yh1, yp1, yl1 = y0[0], y0[1], y0[2], y1[0], y1[1], y1[2]
        lower0 = max(1.0 - x_cdf0[L - 1], 0.0) if neg0 else 0.0
        lower1 = max(1.0 - x_cdf1[L - 1], 0.0) if neg1 else 0.0
        i0, j0, i1, j1 = 0, 0, 0, 0
        ff0, yf0, ystep0 = float(L), (1.0 if neg0 else float(L)), (1.0 if neg0 else -1.0)
        ff1, yf1, ystep1 = float(L), (1.0 if neg1 else float(L)), (1.0 if neg1 else -1.0)
        bs0, bs1 = 0.0, 0.0
        for step in range(STEPS):           # all of them, as numpy: the padding cell absorbs the rest
            hf0, hy0 = fc0[i0], yh0[j0]
            hf1, hy1 = fc1[i1], yh1[j1]
            up0, up1 = min(hf0, hy0), min(hf1, hy1)
            mm0, mm1 = up0 - lower0, up1 - lower1
            lower0, lower1 = up0, up1
            bs0 += mm0 * ff0 * yf0
            bs1 += mm1 * ff1 * yf1
            m0[step], m1[step] = mm0, mm1
            ind0[step], ind1[step] = fp0[i0] * yp0[j0], fp1[i1] * yp1[j1]   # the cell's p_F p_X
            ls0[step], ls1[step] = fl0[i0] + yl0[j0], fl1[i1] + yl1[j1]     # and ln p_F + ln p_X
            af0, ay0, af1, ay1 = hf0 <= hy0, hy0 <= hf0, hf1 <= hy1, hy1 <= hf1
            i0 += af0                       # (no clamp: the padding runs to STEPS + 1 cells)
            j0 += ay0
            i1 += af1
            j1 += ay1
            ff0 -= af0
            ff1 -= af1
            yf0 += ay0 * ystep0
            yf1 += ay1 * ystep1
        _finish_pair(fs0, xs0, c0, neg0, bs0, m0, ind0, ls0, joint, closed_form_terms,
                     closed_form, h_x, k0, side0)
        _finish_pair(fs1, xs1, c1, neg1, bs1, m1, ind1, ls1, joint, closed_form_terms,
                     closed_form, h_x, k1, side1)


@numba.njit(**_JIT)
def window_scores(joint, log_joint, closed_form_terms, same, closed_form, h_x, h_f, scores):
    """``scores[side, k]``: the pair's normalised MI 2 I / (H_X + H_F), with H_joint = -(closed form +
    sum over the staircase cells of [p ln|p| - closed-form term]) summed in cell order, or 1 for
    identical windows; from ``window_terms``' outputs and ``log_joint`` = ln(|joint| + TINY)."""
    for k in range(joint.shape[0]):
        for side in range(2):
            if same[side, k]:
                scores[side, k] = 1.0
                continue
            correction = 0.0
            for step in range(STEPS):
                p = joint[k, side, step]
                correction += log_joint[k, side, step] * p - closed_form_terms[k, side, step]
            h_joint = -(closed_form[side, k] + correction)
            mi = h_x[side, k] + h_f[k] - h_joint
            scores[side, k] = 0.0 if mi == 0 else 2.0 * mi / (h_x[side, k] + h_f[k])


@numba.njit(**_JIT)
def dwt_columns(x, lo, hi, out_lo, out_hi):
    """One level of PyWavelets' ``dwt(x, axis=0, mode='symmetric')`` with decomposition filters ``lo``,
    ``hi``: ``out_lo`` / ``out_hi`` ((N + F - 1) // 2 rows), for N >= F rows. Each output is pywt's
    C ``downsampling_convolution`` sum, from 0.0, with its terms in its order (the in-signal taps, and
    at the borders the mirrored taps before or after them as the C loops visit them), so the same
    bits; whole rows at a time, so that the loop over columns vectorises."""
    n, cols = x.shape
    taps = len(lo)
    acc_lo, acc_hi = np.empty(cols), np.empty(cols)
    o = 0
    for i in range(1, n + taps - 1, 2):
        acc_lo[:] = 0.0
        acc_hi[:] = 0.0
        if i < n:
            for j in range(min(i + 1, taps)):            # in-signal taps, ascending: input[i - j]
                _add_tap(acc_lo, acc_hi, x[i - j], lo[j], hi[j])
            for j in range(i + 1, taps):                 # left border: input[k], k = j - i - 1 (mirrored)
                _add_tap(acc_lo, acc_hi, x[j - i - 1], lo[j], hi[j])
        else:
            for t in range(i - n + 1):                   # right border first: filter i - N - t, input N - 1 - t
                _add_tap(acc_lo, acc_hi, x[n - 1 - t], lo[i - n - t], hi[i - n - t])
            for j in range(i - n + 1, taps):             # then the in-signal taps, ascending
                _add_tap(acc_lo, acc_hi, x[i - j], lo[j], hi[j])
        out_lo[o, :] = acc_lo
        out_hi[o, :] = acc_hi
        o += 1


@numba.njit(inline="always", **_JIT)
def _add_tap(acc_lo, acc_hi, row, w_lo, w_hi):
    for c in range(len(row)):
        acc_lo[c] += w_lo * row[c]
        acc_hi[c] += w_hi * row[c]
