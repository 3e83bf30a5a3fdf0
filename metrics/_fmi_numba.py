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
def _marginals(pdf, log_pdf, n, cdf, centred, stats):
    """CDF and centred PDF of the windows (columns ``:n`` of the (L, N) arrays; ``log_pdf`` given), and
    into ``stats`` rows 0-4: sum p ln p, mass, centred sum of squares, index standard deviation, CDF
    sum, each summed left to right as ``metrics.fmi`` does (the loops over windows inside: vectorised
    across windows, each window's sums in order)."""
    for k in range(n):
        cdf[0, k] = pdf[0, k]
    for t in range(1, L):
        for k in range(n):
            cdf[t, k] = cdf[t - 1, k] + pdf[t, k]
    for k in range(n):
        plogp_sum, mean_index, second, cdf_sum = 0.0, 0.0, 0.0, 0.0   # (0 + x is x: numpy's sums)
        for t in range(L):
            v = pdf[t, k]
            plogp_sum += v * log_pdf[t, k]
            i = t + 1.0
            mean_index += i * v
            second += (i * i) * v
            cdf_sum += cdf[t, k]
        mass = cdf[L - 1, k]                       # (the same left-to-right sum as the mass)
        mean = mass / L
        centred_ss = 0.0
        for t in range(L):
            c = pdf[t, k] - mean
            centred[t, k] = c
            centred_ss += c * c
        stats[0, k], stats[1, k], stats[2, k] = plogp_sum, mass, centred_ss
        stats[3, k], stats[4, k] = np.sqrt(max(second - mean_index * mean_index, 0.0)), cdf_sum


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


BLOCK = 64               # windows per block (along an image row): its PDFs, logs and staircase cells stay in L1


@numba.njit(inline="always", **_JIT)
def _window_block(fa, fb, ff, r, q0, n, raw, pdf, same):
    """PDFs of F, A, B (``pdf[0/1/2, cell, k]``, cells in MATLAB's column-major ``sub(:)`` order) of the
    'valid' 3x3 windows at row r, columns q0 .. q0 + n - 1, and ``same[0/1, k]``: A's / B's window is
    identical to F's -- B meets F's min-max normalised window wherever A's differed (``fmi.m``'s quirk,
    see ``metrics.fmi.feature_mutual_information``). Windows on the inner axis: the copies, min-max
    and divisions vectorise across windows (``_minmax_windows`` and ``_window_pdfs``' arithmetic)."""
    for side in range(3):
        img = ff if side == 0 else (fa if side == 1 else fb)
        for cc in range(3):
            for rr in range(3):
                for k in range(n):
                    raw[side, 3 * cc + rr, k] = img[r + rr, q0 + k + cc]
    for side in range(3):
        v, out = raw[side], pdf[side]
        for k in range(n):
            lo, hi = v[0, k], v[0, k]
            for t in range(1, L):
                lo, hi = min(lo, v[t, k]), max(hi, v[t, k])
            span = hi - lo
            flat = span == 0
            for t in range(L):
                out[t, k] = 1.0 if flat else (v[t, k] - lo) / span
    for k in range(n):
        a_same, b_same = True, True
        for t in range(L):
            a_same = a_same and raw[1, t, k] == raw[0, t, k]
        for t in range(L):
            b_same = b_same and raw[2, t, k] == (raw[0, t, k] if a_same else pdf[0, t, k])
        same[0, k], same[1, k] = a_same, b_same
    for side in range(3):
        out = pdf[side]
        for k in range(n):
            total = 0.0
            for c in range(3):                  # column sums first, then their sum, both left to right
                total += (out[3 * c, k] + out[3 * c + 1, k]) + out[3 * c + 2, k]
            for t in range(L):
                out[t, k] /= total


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
    rows, cols = ff.shape[0] - 2, ff.shape[1] - 2
    n_windows = rows * cols
    raw = np.empty((3, L, BLOCK))
    pdf = np.empty((3, L, BLOCK))                  # F, A, B
    log_pdf = np.empty((3, L, BLOCK))
    same = np.empty((2, BLOCK), np.bool_)
    f_cdf = np.empty((L, BLOCK))
    f_centred = np.empty((L, BLOCK))
    f_stats = np.empty((5, BLOCK))                 # rows as _marginals'
    f_rows = np.empty((3, STEPS + 1, BLOCK))       # F's walk rows: CDF (padded), PDF, ln PDF (0 padded);
    #                                                windows innermost, so that filling them vectorises
    pairs = np.empty(2 * BLOCK, np.intp)
    n_max = 2 * BLOCK
    x = np.empty((5, L, n_max))                    # per pair: X's PDF, ln PDF, CDF, centred PDF, F's
    y = np.empty((3, STEPS + 1, n_max))            # X's walk rows: interval ends, PDF, ln PDF (padded)
    stats = np.empty((12, n_max))                  # per pair scalars, see _pair_marginals
    cells = np.empty((4, STEPS + 1, n_max))        # per visited cell: mass -> joint (row STEPS: 1 - w),
    #                                                its log, p_F p_X, ln p_F + ln p_X
    for r in range(rows):
        for q0 in range(0, cols, BLOCK):
            start, n = r * cols + q0, min(BLOCK, cols - q0)
            _window_block(fa, fb, ff, r, q0, n, raw, pdf, same)
            for side in range(3):
                for t in range(L):
                    _log_mass_into(pdf[side, t], log_pdf[side, t], n)
            _marginals(pdf[0], log_pdf[0], n, f_cdf, f_centred, f_stats)
            for t in range(L):
                for k in range(n):
                    f_rows[0, t, k], f_rows[1, t, k], f_rows[2, t, k] = f_cdf[t, k], pdf[0, t, k], log_pdf[0, t, k]
            for t in range(L, STEPS + 1):   # padding: empty intervals, PDF and ln PDF 0
                for k in range(n):
                    f_rows[0, t, k], f_rows[1, t, k], f_rows[2, t, k] = f_cdf[L - 1, k], 0.0, 0.0
            n_pairs = 0
            for side in range(2):
                for k in range(n):
                    if same[side, k]:
                        scores[_score_index(start + k, side, chunk, n_windows)] = 1.0
                    else:
                        pairs[n_pairs] = 2 * k + side
                        n_pairs += 1
            if n_pairs == 0:
                continue
            _pair_marginals(pdf, log_pdf, pairs, n_pairs, f_centred, f_stats, x, y, stats, n)
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
def _pair_marginals(pdf, log_pdf, pairs, n, f_centred, f_stats, x, y, stats, n_windows):
    """X's marginals (``_marginals``), the correlation c with F's window and X's walk rows (ascending
    interval ends, PDF and ln PDF, reversed for the countermonotone bound, then the padding cells:
    last end again, PDF 0), for the pairs ``pairs[:n]`` (window * 2 + side, all of A's pairs before
    B's), on the pairs' axis, out of ``n_windows`` windows: where no window is identical to F's (DCT
    and wavelet features) the copies are plain slices instead of gathers.
    ``x``: scratch (X's PDF, ln PDF, CDF, centred PDF, F's centred PDF). ``stats`` rows: 0-4 X's
    ``_marginals``, 5 c, 6 negative (1.0 / 0.0), 7 the walk's first lower end, 8 bound sum, 9 F's
    sd, 10 F's CDF sum, 11 F's centred sum of squares."""
    x_pdf, x_log, x_cdf, x_cen, f_cen = x[0], x[1], x[2], x[3], x[4]
    if n == 2 * n_windows:              # every window pair differs (pairs side-major): plain copies
        for side in range(2):
            o = side * n_windows
            for t in range(L):
                for k in range(n_windows):
                    x_pdf[t, o + k] = pdf[side + 1, t, k]
                    x_log[t, o + k] = log_pdf[side + 1, t, k]
                    f_cen[t, o + k] = f_centred[t, k]
            for k in range(n_windows):
                stats[9, o + k], stats[10, o + k], stats[11, o + k] = f_stats[3, k], f_stats[4, k], f_stats[2, k]
    else:
        for t in range(L):
            for p in range(n):
                k, side = pairs[p] // 2, pairs[p] % 2
                x_pdf[t, p] = pdf[side + 1, t, k]
                x_log[t, p] = log_pdf[side + 1, t, k]
                f_cen[t, p] = f_centred[t, k]
        for p in range(n):
            k = pairs[p] // 2
            stats[9, p], stats[10, p], stats[11, p] = f_stats[3, k], f_stats[4, k], f_stats[2, k]
    _marginals(x_pdf, x_log, n, x_cdf, x_cen, stats)
    for p in range(n):
        num = 0.0
        for t in range(L):
            num += x_cen[t, p] * f_cen[t, p]
        c = 0.0 if num == 0 else num / np.sqrt(stats[2, p] * stats[11, p])
        stats[5, p] = c
        negative = c < 0
        stats[6, p] = 1.0 if negative else 0.0
        stats[7, p] = max(1.0 - x_cdf[L - 1, p], 0.0) if negative else 0.0
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
        fc0, fp0, fl0 = f_rows[0, :, pairs[p] // 2], f_rows[1, :, pairs[p] // 2], f_rows[2, :, pairs[p] // 2]
        fc1, fp1, fl1 = f_rows[0, :, pairs[q] // 2], f_rows[1, :, pairs[q] // 2], f_rows[2, :, pairs[q] // 2]
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
        f_plogp_sum, f_mass = f_stats[0, k], f_stats[1, k]
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
