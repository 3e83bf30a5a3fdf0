"""FMI's per-window work as one compiled loop (numba): the same arithmetic as the numpy path in
``metrics.fmi``, window by window instead of 4096 windows per numpy call.

Imported only through ``metrics._compiled.compiled_kernel``, which falls back to the numpy path when
numba is missing or this module fails to compile. Every operation mirrors a line of ``metrics.fmi``
in the same order (sums left to right: ``sequential_sum``), so the flat-window rounding of ``fmi.m``
is kept; ``fastmath`` stays off for that reason. The only differences are the last-bit rounding of
``log`` (libm instead of numpy's SIMD log) and of the index moments (a loop instead of BLAS ``@``).
"""
from __future__ import annotations

import numba
import numpy as np

from metrics._compiled import CACHE

L = 9                    # cells of a 3x3 window
TINY = 1e-300            # metrics.fmi.TINY: ln(|p| + TINY) is finite at p = 0
_JIT = dict(cache=CACHE, nogil=True, error_model="numpy")   # numpy's 0/0 -> NaN instead of an exception


@numba.njit(inline="always", **_JIT)
def _window_pdf(v, pdf):
    """``_minmax_windows`` + ``_window_pdfs`` for one window (9 values, column-major)."""
    lo, hi = v[0], v[0]
    for k in range(1, L):
        lo, hi = min(lo, v[k]), max(hi, v[k])
    span = hi - lo
    for k in range(L):
        pdf[k] = 1.0 if span == 0 else (v[k] - lo) / span
    total = 0.0
    for c in range(3):                      # column sums first, then their sum, both left to right
        total += (pdf[3 * c] + pdf[3 * c + 1]) + pdf[3 * c + 2]
    for k in range(L):
        pdf[k] /= total


@numba.njit(inline="always", **_JIT)
def _marginals(pdf, cdf, log_pdf, centred):
    """CDF, ln PDF and centred PDF of one window; returns (sum p ln p, mass, centred sum of squares,
    index standard deviation, CDF sum), each summed left to right as ``metrics.fmi`` does."""
    mass = pdf[0]
    cdf[0] = pdf[0]
    for k in range(1, L):
        cdf[k] = cdf[k - 1] + pdf[k]
        mass += pdf[k]
    plogp_sum, mean_index, second, cdf_sum = 0.0, 0.0, 0.0, 0.0   # (0 + x is x: same sums as numpy's)
    for k in range(L):
        log_pdf[k] = np.log(abs(pdf[k]) + TINY)
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
def _nelsen_nmi(x_pdf, f_pdf, f_cdf, f_log, f_centred, f_stats, x_cdf, x_log, x_centred, y_hi, y_pdf, y_log,
                masses, cells_f, cells_y):
    """``metrics.fmi._nelsen_nmi`` for one pair of windows (see there for the method): the Frechet
    bound's staircase walk, its covariance and the closed-form joint entropy with the staircase cells'
    correction."""
    f_plogp_sum, f_mass, f_centred_ss, f_sd, f_cdf_sum = f_stats
    x_plogp_sum, x_mass, x_centred_ss, x_sd, x_cdf_sum = _marginals(x_pdf, x_cdf, x_log, x_centred)
    num = 0.0
    for k in range(L):
        num += x_centred[k] * f_centred[k]
    c = 0.0 if num == 0 else num / np.sqrt(x_centred_ss * f_centred_ss)
    negative = c < 0
    # X's walk rows: ascending interval ends, PDF and ln PDF, reversed for the countermonotone bound,
    # plus the padding cell L (last end again, PDF 0)
    for k in range(L):
        if negative:
            y_hi[k] = 1.0 if k == L - 1 else 1.0 - x_cdf[L - 2 - k]
            y_pdf[k], y_log[k] = x_pdf[L - 1 - k], x_log[L - 1 - k]
        else:
            y_hi[k], y_pdf[k], y_log[k] = x_cdf[k], x_pdf[k], x_log[k]
    y_hi[L], y_pdf[L], y_log[L] = y_hi[L - 1], 0.0, 0.0
    lower = max(1.0 - x_cdf[L - 1], 0.0) if negative else 0.0
    i, j = 0, 0
    f_factor, y_factor = float(L), 1.0 if negative else float(L)
    y_step = 1.0 if negative else -1.0
    bound_sum = 0.0
    walked = 0
    while walked < 2 * L - 1 and (i < L or j < L):  # past both ends the cells have no mass and no PDF
        hi_f, hi_y = f_cdf[i], y_hi[j]
        upper = min(hi_f, hi_y)
        m = upper - lower
        lower = upper
        bound_sum += m * f_factor * y_factor
        masses[walked], cells_f[walked], cells_y[walked] = m, i, j
        walked += 1
        advance_f, advance_y = hi_f <= hi_y, hi_y <= hi_f
        i = min(i + advance_f, L)
        j = min(j + advance_y, L)
        f_factor -= advance_f
        y_factor += advance_y * y_step
    cov_bound = bound_sum - f_cdf_sum * x_cdf_sum
    if x_sd == 0 or f_sd == 0 or (not negative and c == 0):
        weight = 0.0
    else:
        weight = c * (f_sd * x_sd) / cov_bound
    one_minus_w = 1.0 - weight
    log_one_minus_w = np.log(abs(one_minus_w) + TINY)
    closed_form = log_one_minus_w * (f_mass * x_mass) + x_mass * f_plogp_sum + f_mass * x_plogp_sum
    closed_form *= one_minus_w
    correction = 0.0
    for step in range(walked):
        fi, yj = cells_f[step], cells_y[step]
        independent = f_pdf[fi] * y_pdf[yj]
        joint = (masses[step] - independent) * weight + independent
        closed_form_term = ((f_log[fi] + y_log[yj] + log_one_minus_w) * independent) * one_minus_w
        correction += np.log(abs(joint) + TINY) * joint - closed_form_term
    h_joint = -(closed_form + correction)
    h_x, h_f = -x_plogp_sum, -f_plogp_sum
    mi = h_x + h_f - h_joint
    return 0.0 if mi == 0 else 2.0 * mi / (h_x + h_f)


@numba.njit(**_JIT)
def fmi_window_scores(fa, fb, ff, scores):
    """Fill ``scores[0/1, k]`` with window k's normalised MI of A/B with F ('valid' 3x3 windows,
    row-major positions) on float64 feature images; ``metrics.fmi.feature_mutual_information`` (the
    numpy path) documents the rules, including ``fmi.m``'s quirk that B meets F's normalised window."""
    rows, cols = ff.shape[0] - 2, ff.shape[1] - 2
    a, b, f = np.empty(L), np.empty(L), np.empty(L)
    x_pdf, f_centred = np.empty(L), np.empty(L)
    f_pdf, f_cdf, f_log = np.zeros(L + 1), np.empty(L + 1), np.zeros(L + 1)  # + the walk's padding cell L
    x_cdf, x_log, x_centred = np.empty(L), np.empty(L), np.empty(L)
    y_hi, y_pdf, y_log = np.empty(L + 1), np.empty(L + 1), np.empty(L + 1)   # X's walk rows + padding
    masses, cells_f, cells_y = np.empty(2 * L - 1), np.empty(2 * L - 1, np.intp), np.empty(2 * L - 1, np.intp)
    for r in range(rows):
        for q in range(cols):
            for cc in range(3):             # MATLAB's sub(:): column-major inside the window
                for rr in range(3):
                    a[3 * cc + rr] = fa[r + rr, q + cc]
                    b[3 * cc + rr] = fb[r + rr, q + cc]
                    f[3 * cc + rr] = ff[r + rr, q + cc]
            k = r * cols + q
            a_same = True
            for t in range(L):
                a_same = a_same and a[t] == f[t]
            _window_pdf(f, f_pdf)
            f_stats = _marginals(f_pdf, f_cdf, f_log, f_centred)
            f_cdf[L] = f_cdf[L - 1]         # padding: an empty interval, PDF and ln PDF 0
            if a_same:
                scores[0, k] = 1.0
                b_same = True               # B meets F's raw window
                for t in range(L):
                    b_same = b_same and b[t] == f[t]
            else:
                _window_pdf(a, x_pdf)
                scores[0, k] = _nelsen_nmi(x_pdf, f_pdf, f_cdf, f_log, f_centred, f_stats, x_cdf, x_log,
                                            x_centred, y_hi, y_pdf, y_log, masses, cells_f, cells_y)
                lo, hi = f[0], f[0]         # B meets F's min-max normalised window
                for t in range(1, L):
                    lo, hi = min(lo, f[t]), max(hi, f[t])
                span = hi - lo
                b_same = True
                for t in range(L):
                    b_same = b_same and b[t] == (1.0 if span == 0 else (f[t] - lo) / span)
            if b_same:
                scores[1, k] = 1.0
            else:
                _window_pdf(b, x_pdf)
                scores[1, k] = _nelsen_nmi(x_pdf, f_pdf, f_cdf, f_log, f_centred, f_stats, x_cdf, x_log,
                                            x_centred, y_hi, y_pdf, y_log, masses, cells_f, cells_y)
