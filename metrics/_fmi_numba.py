"""FMI's per-window work in one compiled pass (numba): the arithmetic of the numpy path in
``metrics.fmi``, window by window instead of 4096 windows per numpy call.

``fmi_scores`` runs over blocks of 64 windows: the windows' PDFs, their logs, the marginals, the
Frechet bound's staircase walk, the mixture weight, the joint cells' logs and the scores, with no
numpy call in between: the ~60 logs of a window come from ``_log_mass_into``, fdlibm's log written
so that LLVM vectorises it (libm's log is ~5x slower than numpy's SIMD log; this one matches
numpy's speed inside the loop). Every other operation mirrors a line of the numpy path in the same
order (sums left to right: ``sequential_sum``), so the flat-window rounding of ``fmi.m`` is kept;
``fastmath`` stays off for that reason. The differences from the numpy path: the last bit of some
logs (fdlibm's < 1 ulp against numpy's < 1 ulp: FMI moves by ~1e-16) and of the index moments (a
loop instead of BLAS ``@``).

Imported only through ``metrics._compiled.compiled_kernels``, which falls back to the numpy path when
numba is missing or this module fails to compile.
"""
from __future__ import annotations

import llvmlite.ir
import numba
import numba.extending
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


@numba.extending.intrinsic
def _bits(typingctx, x):
    """The IEEE bits of a float64 as an int64 (a register move; numba has no scalar ``view``)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvmlite.ir.IntType(64))
    return numba.types.int64(numba.types.float64), codegen


@numba.extending.intrinsic
def _float(typingctx, b):
    """The float64 whose IEEE bits are the int64 ``b``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvmlite.ir.DoubleType())
    return numba.types.float64(numba.types.int64), codegen


_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_LG = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01,
       1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01)


@numba.njit(inline="always", **_JIT)
def _log_mass_into(x, out, n):
    """``out[:n] = ln(|x[:n]| + TINY)`` (``metrics.fmi._log_mass``) with fdlibm's log (error < 1 ulp, as
    libm's and numpy's), written without branches or calls so that LLVM vectorises the loop: the windows'
    ~60 logs cost ~1 ns each inside the kernel instead of a pass through numpy between kernels. The
    argument is a normal number (>= TINY); NaN and inf pass through as np.log gives them."""
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG
    for t in range(n):
        v = abs(x[t]) + TINY
        b = _bits(v)
        mant = b & 0x000FFFFFFFFFFFFF
        big = mant > 0x6A09E667F3BCD                  # mantissa > sqrt(2): use m / 2, exponent + 1
        k = ((b >> 52) - 1023) + (1 if big else 0)
        m = _float(mant | (0x3FE0000000000000 if big else 0x3FF0000000000000))
        f = m - 1.0                                   # in [sqrt(2)/2 - 1, sqrt(2) - 1]
        s = f / (2.0 + f)
        z = s * s
        w = z * z
        r = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7))) + w * (lg2 + w * (lg4 + w * lg6))
        hfsq = 0.5 * f * f
        dk = float(k)
        y = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
        out[t] = y if v < np.inf else v               # inf -> inf, NaN -> NaN


BLOCK = 64               # windows per block: its PDFs, logs and staircase cells stay in L1


@numba.njit(inline="always", **_JIT)
def _window_block(fa, fb, ff, start, n, pdf, same):
    """PDFs of F, A, B (``pdf[k, 0/1/2]``, MATLAB's column-major ``sub(:)`` order) of the 'valid' 3x3
    windows start .. start + n - 1 (row-major positions), and ``same[k, 0/1]``: A's / B's window is
    identical to F's -- B meets F's min-max normalised window wherever A's differed (``fmi.m``'s quirk,
    see ``metrics.fmi.feature_mutual_information``)."""
    cols = ff.shape[1] - 2
    a, b, f = np.empty(L), np.empty(L), np.empty(L)
    for k in range(n):
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
        same[k, 0], same[k, 1] = a_same, b_same
        _minmax(a, pdf[k, 1])
        _minmax(b, pdf[k, 2])
        for side in range(3):
            _divide_by_sum(pdf[k, side])


@numba.njit(**_JIT)
def fmi_scores(fa, fb, ff, chunk, scores):
    """The window scores FMI(A, F), FMI(B, F) of ``metrics.fmi._nelsen_nmi`` (1 for identical windows)
    of all 'valid' 3x3 windows of the float64 feature images, in one compiled pass, into ``scores``:
    per ``chunk`` windows (row-major positions) a block of A's scores then B's, as the numpy path's
    chunks (so that summing each block with numpy adds the scores in the old order).

    Per block of ``BLOCK`` windows: the PDFs and their logs (``_log_mass_into``, vectorised); F's
    marginals once per window; then the pairs that differ (a source window and F's), with the pairs
    on the contiguous axis of every per-pair array (``_pair_marginals``, ``_pair_weights``,
    ``_pair_scores``), so that each pair's sums run left to right as ``sequential_sum`` does (fmi.m's
    flat-window rounding) while LLVM vectorises across pairs; the staircase walk alone
    (``_walk_pairs``) runs pair by pair, two at a time. The arithmetic is ``_nelsen_nmi``'s in the
    same order; only the logs differ (fdlibm's instead of numpy's, both within 1 ulp)."""
    n_windows = (ff.shape[0] - 2) * (ff.shape[1] - 2)
    pdf = np.empty((BLOCK, 3, L))
    log_pdf = np.empty((BLOCK, 3, L))
    same = np.empty((BLOCK, 2), np.bool_)
    f_rows = np.zeros((BLOCK, 3, STEPS + 1))       # F's walk rows: CDF (padded), PDF, ln PDF (0 padded)
    f_centred = np.empty((BLOCK, L))
    f_stats = np.empty((BLOCK, 5))
    pairs = np.empty(2 * BLOCK, np.intp)
    n_max = 2 * BLOCK
    x = np.empty((4, L, n_max))                    # per pair: X's PDF, ln PDF, CDF, centred PDF
    y = np.empty((3, STEPS + 1, n_max))            # X's walk rows: interval ends, PDF, ln PDF (padded)
    stats = np.empty((12, n_max))                  # per pair scalars, see _pair_marginals
    cells = np.empty((4, STEPS + 1, n_max))        # per visited cell: mass -> joint (row STEPS: 1 - w),
    #                                                its log, p_F p_X, ln p_F + ln p_X
    for start in range(0, n_windows, BLOCK):
        n = min(BLOCK, n_windows - start)
        _window_block(fa, fb, ff, start, n, pdf, same)
        _log_mass_into(pdf.reshape(-1), log_pdf.reshape(-1), n * 3 * L)
        n_pairs = 0
        for k in range(n):
            f_pdf, f_log, f_cdf = f_rows[k, 1], f_rows[k, 2], f_rows[k, 0]
            for t in range(L):
                f_pdf[t], f_log[t] = pdf[k, 0, t], log_pdf[k, 0, t]
            st = _marginals(f_pdf, f_log, f_cdf, f_centred[k])
            for t in range(L, STEPS + 1):
                f_cdf[t] = f_cdf[L - 1]
            for q in range(5):
                f_stats[k, q] = st[q]
            for side in range(2):
                if same[k, side]:
                    scores[_score_index(start + k, side, chunk, n_windows)] = 1.0
                else:
                    pairs[n_pairs] = 2 * k + side
                    n_pairs += 1
        if n_pairs == 0:
            continue
        _pair_marginals(pdf, log_pdf, pairs, n_pairs, f_centred, f_stats, x, y, stats)
        _walk_pairs(f_rows, y, pairs, n_pairs, stats, cells)
        _pair_weights(pairs, n_pairs, f_stats, stats, cells)
        for step in range(STEPS + 1):
            _log_mass_into(cells[0, step], cells[1, step], n_pairs)
        _pair_scores(pairs, n_pairs, f_stats, stats, cells, start, chunk, n_windows, scores)


@numba.njit(inline="always", **_JIT)
def _score_index(window, side, chunk, n_windows):
    """Where ``fmi_scores`` puts a window's score: chunk by chunk, A's scores then B's."""
    first = window - window % chunk
    return 2 * first + side * min(chunk, n_windows - first) + window % chunk


@numba.njit(inline="always", **_JIT)
def _pair_marginals(pdf, log_pdf, pairs, n, f_centred, f_stats, x, y, stats):
    """X's marginals (``_marginals``' sums in its order), the correlation c with F's window and X's
    walk rows (ascending interval ends, PDF and ln PDF, reversed for the countermonotone bound, then the
    padding cells: last end again, PDF 0), for the pairs ``pairs[:n]`` (window * 2 + side), on the
    pairs' axis. ``stats`` rows: 0 sum p ln p, 1 mass, 2 centred sum of squares, 3 index sd, 4 CDF sum,
    5 c, 6 negative (1.0 / 0.0), 7 the walk's first lower end, 8 bound sum, 9 F's sd, 10 F's CDF sum."""
    x_pdf, x_log, x_cdf, x_cen = x[0], x[1], x[2], x[3]
    for p in range(n):
        k, side = pairs[p] // 2, pairs[p] % 2
        for t in range(L):
            x_pdf[t, p] = pdf[k, side + 1, t]
            x_log[t, p] = log_pdf[k, side + 1, t]
            x_cen[t, p] = f_centred[k, t]          # (F's centred PDF, until X's replaces it)
        stats[9, p], stats[10, p], stats[11, p] = f_stats[k, 3], f_stats[k, 4], f_stats[k, 2]
    for p in range(n):
        x_cdf[0, p] = x_pdf[0, p]
    for t in range(1, L):
        for p in range(n):
            x_cdf[t, p] = x_cdf[t - 1, p] + x_pdf[t, p]
    for p in range(n):
        plogp_sum, mean_index, second, cdf_sum = 0.0, 0.0, 0.0, 0.0
        for t in range(L):
            v = x_pdf[t, p]
            plogp_sum += v * x_log[t, p]
            i = t + 1.0
            mean_index += i * v
            second += (i * i) * v
            cdf_sum += x_cdf[t, p]
        mass = x_cdf[L - 1, p]                     # (the same left-to-right sum as the mass)
        mean = mass / L
        centred_ss, num = 0.0, 0.0
        for t in range(L):
            centred = x_pdf[t, p] - mean
            centred_ss += centred * centred
            num += centred * x_cen[t, p]
        c = 0.0 if num == 0 else num / np.sqrt(centred_ss * stats[11, p])
        stats[0, p], stats[1, p], stats[2, p] = plogp_sum, mass, centred_ss
        stats[3, p], stats[4, p], stats[5, p] = np.sqrt(max(second - mean_index * mean_index, 0.0)), cdf_sum, c
        negative = c < 0
        stats[6, p] = 1.0 if negative else 0.0
        stats[7, p] = max(1.0 - mass, 0.0) if negative else 0.0
    y_hi, y_pdf, y_log = y[0], y[1], y[2]
    for t in range(L):
        for p in range(n):
            negative = stats[6, p] != 0.0
            upper = 1.0 if t == L - 1 else 1.0 - x_cdf[L - 2 - t, p]
            y_hi[t, p] = upper if negative else x_cdf[t, p]
            y_pdf[t, p] = x_pdf[L - 1 - t, p] if negative else x_pdf[t, p]
            y_log[t, p] = x_log[L - 1 - t, p] if negative else x_log[t, p]
    for t in range(L, STEPS + 1):
        for p in range(n):
            y_hi[t, p], y_pdf[t, p], y_log[t, p] = y_hi[L - 1, p], 0.0, 0.0


@numba.njit(inline="always", **_JIT)
def _walk_pairs(f_rows, y, pairs, n, stats, cells):
    """The Frechet bound's staircase walk (``metrics.fmi._staircase_walk``) of each pair: per visited
    cell its mass, p_F p_X and ln p_F + ln p_X into ``cells[0/2/3]``, and the bound's sum over all
    cells into ``stats[8]``. A chain of dependent loads per pair (latency-bound): two pairs per loop,
    so that the two chains overlap."""
    y_hi, y_pdf, y_log = y[0], y[1], y[2]
    mass, ind, log_sum = cells[0], cells[2], cells[3]
    for p in range(0, n, 2):
        q = min(p + 1, n - 1)               # an odd last pair is walked twice (same values written)
        fc0, fp0, fl0 = f_rows[pairs[p] // 2, 0], f_rows[pairs[p] // 2, 1], f_rows[pairs[p] // 2, 2]
        fc1, fp1, fl1 = f_rows[pairs[q] // 2, 0], f_rows[pairs[q] // 2, 1], f_rows[pairs[q] // 2, 2]
        neg0, neg1 = stats[6, p] != 0.0, stats[6, q] != 0.0
        lower0, lower1 = stats[7, p], stats[7, q]
        i0, j0, i1, j1 = 0, 0, 0, 0
        ff0, yf0, ystep0 = float(L), (1.0 if neg0 else float(L)), (1.0 if neg0 else -1.0)
        ff1, yf1, ystep1 = float(L), (1.0 if neg1 else float(L)), (1.0 if neg1 else -1.0)
        bs0, bs1 = 0.0, 0.0
        for step in range(STEPS):           # all of them, as numpy: the padding cell absorbs the rest
            hf0, hy0 = fc0[i0], y_hi[j0, p]
            hf1, hy1 = fc1[i1], y_hi[j1, q]
            up0, up1 = min(hf0, hy0), min(hf1, hy1)
            mm0, mm1 = up0 - lower0, up1 - lower1
            lower0, lower1 = up0, up1
            bs0 += mm0 * ff0 * yf0
            bs1 += mm1 * ff1 * yf1
            mass[step, p], mass[step, q] = mm0, mm1
            ind[step, p], ind[step, q] = fp0[i0] * y_pdf[j0, p], fp1[i1] * y_pdf[j1, q]   # p_F p_X
            log_sum[step, p], log_sum[step, q] = fl0[i0] + y_log[j0, p], fl1[i1] + y_log[j1, q]
            af0, ay0, af1, ay1 = hf0 <= hy0, hy0 <= hf0, hf1 <= hy1, hy1 <= hf1
            i0 += af0                       # (no clamp: the padding runs to STEPS + 1 cells)
            j0 += ay0
            i1 += af1
            j1 += ay1
            ff0 -= af0
            ff1 -= af1
            yf0 += ay0 * ystep0
            yf1 += ay1 * ystep1
        stats[8, p], stats[8, q] = bs0, bs1


@numba.njit(inline="always", **_JIT)
def _pair_weights(pairs, n, f_stats, stats, cells):
    """Each pair's mixture weight w from the bound's covariance; the visited cells' joint values
    replace their masses in ``cells[0]``, and its row STEPS gets 1 - w (for the log pass)."""
    joint, ind = cells[0], cells[2]
    for p in range(n):
        cov_bound = stats[8, p] - stats[10, p] * stats[4, p]
        f_sd, x_sd, c = stats[9, p], stats[3, p], stats[5, p]
        no_dependence = x_sd == 0 or f_sd == 0 or (stats[6, p] == 0.0 and c == 0)
        weight = 0.0 if no_dependence else c * (f_sd * x_sd) / cov_bound
        stats[8, p] = weight
        joint[STEPS, p] = 1.0 - weight
    for step in range(STEPS):
        for p in range(n):
            joint[step, p] = (joint[step, p] - ind[step, p]) * stats[8, p] + ind[step, p]


@numba.njit(inline="always", **_JIT)
def _pair_scores(pairs, n, f_stats, stats, cells, start, chunk, n_windows, scores):
    """The pairs' normalised MI 2 I / (H_X + H_F), H_joint = -(closed form + sum over the visited cells
    of [p ln|p| - the cell's closed-form term]) summed in cell order, into ``scores``."""
    joint, log_joint, ind, log_sum = cells[0], cells[1], cells[2], cells[3]
    correction = np.zeros(n)
    for step in range(STEPS):
        for p in range(n):
            one_minus_w, log_one_minus_w = joint[STEPS, p], log_joint[STEPS, p]
            term = ((log_sum[step, p] + log_one_minus_w) * ind[step, p]) * one_minus_w
            correction[p] += log_joint[step, p] * joint[step, p] - term
    for p in range(n):
        k = pairs[p] // 2
        f_plogp_sum, f_mass = f_stats[k, 0], f_stats[k, 1]
        x_plogp_sum, x_mass = stats[0, p], stats[1, p]
        one_minus_w, log_one_minus_w = joint[STEPS, p], log_joint[STEPS, p]
        form = log_one_minus_w * (f_mass * x_mass) + x_mass * f_plogp_sum + f_mass * x_plogp_sum
        form *= one_minus_w
        h_joint = -(form + correction[p])
        h_x, h_f = -x_plogp_sum, -f_plogp_sum
        mi = h_x + h_f - h_joint
        scores[_score_index(start + k, pairs[p] % 2, chunk, n_windows)] = 0.0 if mi == 0 else 2.0 * mi / (h_x + h_f)


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
