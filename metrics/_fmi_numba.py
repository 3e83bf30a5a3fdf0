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
def _pair_terms(x_pdf, x_log, f_pdf, f_cdf, f_log, f_centred, f_stats, x_cdf, x_centred, y_hi, y_pdf, y_log,
                masses, independent, log_sums, side, k, joint, closed_form_terms):
    """``metrics.fmi._nelsen_nmi`` for one pair of windows up to the last log (see there for the
    method): the Frechet bound's staircase walk, its covariance, the mixture weight w, and per visited
    cell the joint value and its term of the closed-form sum (into ``joint[k, side]`` and
    ``closed_form_terms[k, side]``). Returns (closed form, H_X)."""
    f_plogp_sum, f_mass, f_centred_ss, f_sd, f_cdf_sum = f_stats
    x_plogp_sum, x_mass, x_centred_ss, x_sd, x_cdf_sum = _marginals(x_pdf, x_log, x_cdf, x_centred)
    num = 0.0
    for t in range(L):
        num += x_centred[t] * f_centred[t]
    c = 0.0 if num == 0 else num / np.sqrt(x_centred_ss * f_centred_ss)
    negative = c < 0
    # X's walk rows: ascending interval ends, PDF and ln PDF, reversed for the countermonotone bound,
    # plus the padding cells L.. (last end again, PDF 0; numpy clamps the index at L instead)
    for t in range(L):
        if negative:
            y_hi[t] = 1.0 if t == L - 1 else 1.0 - x_cdf[L - 2 - t]
            y_pdf[t], y_log[t] = x_pdf[L - 1 - t], x_log[L - 1 - t]
        else:
            y_hi[t], y_pdf[t], y_log[t] = x_cdf[t], x_pdf[t], x_log[t]
    y_hi[L:], y_pdf[L:], y_log[L:] = y_hi[L - 1], 0.0, 0.0
    lower = max(1.0 - x_cdf[L - 1], 0.0) if negative else 0.0
    i, j = 0, 0
    f_factor, y_factor = float(L), 1.0 if negative else float(L)
    y_step = 1.0 if negative else -1.0
    bound_sum = 0.0
    for step in range(STEPS):               # all of them, as numpy: the padding cell absorbs the rest
        hi_f, hi_y = f_cdf[i], y_hi[j]
        upper = min(hi_f, hi_y)
        m = upper - lower
        lower = upper
        bound_sum += m * f_factor * y_factor
        masses[step] = m
        independent[step] = f_pdf[i] * y_pdf[j]      # the cell's p_F p_X and ln p_F + ln p_X
        log_sums[step] = f_log[i] + y_log[j]
        advance_f, advance_y = hi_f <= hi_y, hi_y <= hi_f
        i += advance_f                      # (no clamp: the padding runs to STEPS + 1 cells)
        j += advance_y
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
    joint_row, terms_row = joint[k, side], closed_form_terms[k, side]
    for step in range(STEPS):
        joint_row[step] = (masses[step] - independent[step]) * weight + independent[step]
        terms_row[step] = ((log_sums[step] + log_one_minus_w) * independent[step]) * one_minus_w
    return closed_form, -x_plogp_sum


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
    Pairs of identical windows are skipped (their score is 1; zeros in their cells)."""
    f_pdf, f_cdf, f_log = np.zeros(STEPS + 1), np.empty(STEPS + 1), np.zeros(STEPS + 1)  # + walk padding
    x_pdf, x_log, f_centred = np.empty(L), np.empty(L), np.empty(L)
    x_cdf, x_centred = np.empty(L), np.empty(L)
    y_hi, y_pdf, y_log = np.empty(STEPS + 1), np.empty(STEPS + 1), np.empty(STEPS + 1)   # X's walk rows
    masses, independent, log_sums = np.empty(STEPS), np.empty(STEPS), np.empty(STEPS)   # per walked cell
    for k in range(pdf.shape[0]):
        for t in range(L):
            f_pdf[t], f_log[t] = pdf[k, 0, t], log_pdf[k, 0, t]
        f_stats = _marginals(f_pdf, f_log, f_cdf, f_centred)
        f_cdf[L:] = f_cdf[L - 1]            # padding: empty intervals, PDF and ln PDF 0
        h_f[k] = -f_stats[0]
        for side in range(2):
            if same[side, k]:
                joint[k, side, :] = 0.0
                closed_form[side, k], h_x[side, k] = 0.0, 0.0
                continue
            for t in range(L):
                x_pdf[t], x_log[t] = pdf[k, side + 1, t], log_pdf[k, side + 1, t]
            closed_form[side, k], h_x[side, k] = _pair_terms(
                x_pdf, x_log, f_pdf, f_cdf, f_log, f_centred, f_stats, x_cdf, x_centred, y_hi, y_pdf, y_log,
                masses, independent, log_sums, side, k, joint, closed_form_terms)


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
