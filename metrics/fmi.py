"""Feature mutual information FMI (Haghighat et al.), computed as Fast-FMI on 3x3 sliding windows.

Every 3x3 window of a feature image is turned into a 9-sample "PDF" (min-max normalised, divided by
its sum); the joint PDF of a source window and the fused window is built from their CDFs with Nelsen's
method (a mixture of the Frechet bound and the independent product, weighted so that the joint PDF
has the windows' Pearson correlation); the window's normalised MI is 2 I / (H_X + H_F). FMI is the
mean over windows of (FMI_AF + FMI_BF) / 2.

All windows are processed at once: ``(9, n_windows)`` arrays for the marginals (windows on the
contiguous axis), in chunks. The joint entropy is not summed over the 81 joint-PDF cells: only the
<= 17 cells on the Frechet bound's staircase are visited (a merge walk), the rest in closed form.
The reference (Haghighat's ``fmi.m``, Tang's ``analysis_fmi.m``) loops over windows and pixels and
takes minutes per image.
"""
from __future__ import annotations

import numpy as np
import pywt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft

from metrics._compiled import compiled_kernels
from metrics._filters import ImageTooSmall, to255
from metrics.registry import register_metric

FMI_WINDOW = 3          # w = 3: 3x3 windows (Haghighat & Razian 2014; Tang's default)
CHUNK = 4096            # windows per block: few enough numpy calls, the walk's (17, n) cell arrays stay in cache
                        # (the compiled path's blocks too: its (n, 2, 17) joint cells)


def window_vectors(feature: np.ndarray, size: int = FMI_WINDOW) -> np.ndarray:
    """All ``size x size`` windows of ``feature`` ('valid' positions, row-major over positions) as the
    COLUMNS of a ``(size*size, n_windows)`` array, each window flattened in MATLAB's column-major ``(:)``
    order (the order matters: the CDFs accumulate along it).

    Windows run along the contiguous last axis so that every per-cell operation below is a long
    contiguous loop over windows and the 9x9 joint-PDF cells broadcast over the leading axes (with the
    9 cells innermost, numpy spends its time in loop set-up, not arithmetic)."""
    _check_fits(feature, size)
    view = sliding_window_view(feature, (size, size))          # (rows', cols', r, c), no copy
    return view.transpose(3, 2, 0, 1).reshape(size * size, -1)  # one copy: [c*size + r, position]


def _check_fits(feature: np.ndarray, size: int) -> None:
    if min(feature.shape) < size:
        raise ImageTooSmall(f"feature image {feature.shape} smaller than the {size}x{size} window")


def sequential_sum(x: np.ndarray) -> np.ndarray:
    """Column sums of ``x`` (cells along axis 0) added top to bottom, as MATLAB/Octave ``sum`` does for
    a short vector.

    The order matters here, unlike almost anywhere else: a flat window's PDF is nine copies of
    fl(1/9), whose left-to-right sum is 1 + 2^-52, so ``pdf - mean(pdf)`` is a tiny non-zero constant
    and two flat windows come out perfectly correlated (c = 1, window FMI 1). numpy's pairwise sum
    gives exactly 1, c = 0 and window FMI 0 -- a 0.5% change of FMI on images with black backgrounds.
    """
    total = x[0].copy()
    for k in range(1, x.shape[0]):
        total += x[k]
    return total


def _minmax_windows(windows: np.ndarray) -> np.ndarray:
    """Each window (column) min-max normalised to [0, 1]; a flat window becomes all ones (``fmi.m``)."""
    lo, hi = windows.min(axis=0), windows.max(axis=0)
    span = hi - lo
    flat = span == 0
    return np.where(flat, 1.0, (windows - lo) / np.where(flat, 1.0, span))


def _window_pdfs(scaled: np.ndarray, size: int = FMI_WINDOW) -> np.ndarray:
    """Normalised windows divided by ``sum(sum(sub))`` (column sums first, then their sum)."""
    column_sums = [sequential_sum(scaled[c * size:(c + 1) * size]) for c in range(size)]
    return scaled / sequential_sum(np.stack(column_sums))


def _cumulative_rows(p: np.ndarray) -> np.ndarray:
    """``np.cumsum(p, axis=0)`` (same additions, same order) as row-by-row adds: with windows on the
    contiguous axis this is ~10x faster than numpy's strided cumsum along a 9-long axis."""
    out = np.empty_like(p)
    np.copyto(out[0], p[0])
    for k in range(1, p.shape[0]):
        np.add(out[k - 1], p[k], out=out[k])
    return out


TINY = 1e-300


def _log_mass(p: np.ndarray) -> np.ndarray:
    """ln(|p| + TINY): finite for p = 0, so that ``p * _log_mass(p)`` is 0 there; any |p| > 1e-280 is
    unchanged. Natural log (see ``_nelsen_nmi``)."""
    mag = np.abs(p)
    mag += TINY
    return np.log(mag, out=mag)


def _plogp(p: np.ndarray) -> np.ndarray:
    """p ln |p| elementwise (0 where p = 0). For a negative joint 'probability' (Nelsen's mixture can
    give one) ``-p log |p|`` is MATLAB's ``real(-p .* log2(p))`` up to the base: the imaginary part is dropped."""
    out = _log_mass(p)
    out *= p
    return out


def _index_sd(p: np.ndarray) -> np.ndarray:
    """Population standard deviation of the index 1..n under each window's PDF (the ``e_aPdf`` loop)."""
    index = np.arange(1, p.shape[0] + 1, dtype=np.float64)
    mean = index @ p
    second = (index * index) @ p
    return np.sqrt(np.maximum(second - mean * mean, 0.0))


class _Columns:
    """Named row blocks of one C-contiguous ``(rows, n_windows)`` array, so that all of a side's
    per-window quantities are selected for a subset of windows in ONE ``take``."""

    def __init__(self, layout: dict[str, int], n: int):
        self.slices, start = {}, 0
        for name, rows in layout.items():
            self.slices[name] = slice(start, start + rows)
            start += rows
        self.table = np.empty((start, n))

    def __getattr__(self, name):
        try:
            return self.table[self.slices[name]]
        except KeyError:
            raise AttributeError(name) from None

    def take(self, windows: np.ndarray) -> "_Columns":
        """The same quantities for the given windows (column indices, repeats allowed)."""
        out = object.__new__(type(self))
        out.slices, out.table = self.slices, self.table.take(windows, axis=1)
        return out


def _padded_walk_rows(block: np.ndarray, hi: np.ndarray, pdf: np.ndarray, log_pdf: np.ndarray) -> None:
    """Fill a ``(3, l + 1, n)`` block with CDF interval ends, PDF and ln PDF, plus the staircase walk's
    padding cell l: the last CDF value again (so the walk's interval there is empty) and PDF 0."""
    l = pdf.shape[0]
    for out, rows, pad in ((block[0], hi, hi[l - 1]), (block[1], pdf, 0.0), (block[2], log_pdf, 0.0)):
        out[:l] = rows
        out[l] = pad


def _staircase_walk(f_walk: np.ndarray, f_columns: np.ndarray, y_walk: np.ndarray, start: np.ndarray,
                    reversed_y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cells where the Frechet bound has mass, and the bound's sum over all l x l cells.

    ``f_walk``/``y_walk``: ``(3, l + 1, n_f)`` / ``(3, l + 1, n)`` blocks from ``_padded_walk_rows``
    (both sides' intervals ascending); Y's window k is paired with F's window ``f_columns[k]``; ``start``:
    where both sides' first intervals start, max(0, lower end of Y's first); ``reversed_y``: Y's cells
    are walked in reverse order (the countermonotone bound, see ``_nelsen_nmi``).

    The bound's mass lies on a monotone staircase: cell (i, j) has mass only where F's CDF interval i
    overlaps the other side's interval j, and merging both sides' interval ends visits at most 2l - 1
    cells. The walk starts at (0, 0) and steps past whichever interval ends first (both on a tie):
    every skipped cell has zero overlap. Because of that rule, a visited cell's lower end
    max(C_F(i-1), C_Y(j-1)) is the previous visited cell's upper end min(C_F(i), C_Y(j)), so the
    overlap min(...) - max(...) is obtained exactly without gathering the lower ends. The padding cell l
    (empty interval, PDF 0) absorbs the steps after a side's end.

    The bound B is the joint CDF of its own masses m, B(i, j) = sum_{i' <= i, j' <= j} m(i', j'), so
    sum_ij B(i, j) = sum over visited cells of m(i, j) (l - i) (l - j) (j in X's original order): the
    covariance of the bound, needed for the mixture weight, comes from the walk instead of all l^2 cells.

    Returns (mass, F cell, Y cell, bound sum): ``(2l - 1, n)`` masses, the flat indices (cell * n + window)
    of the visited cells in ``f_walk`` / ``y_walk``, and ``(n,)`` sums of the bound over all cells.
    """
    l, n_f, n = f_walk.shape[1] - 1, f_walk.shape[2], y_walk.shape[2]
    f_hi, y_hi = f_walk[0].reshape(-1), y_walk[0].reshape(-1)
    last_f, last_y = l * n_f + f_columns, l * n + np.arange(n)
    pos_f, pos_y = f_columns.copy(), np.arange(n)  # flat index (cell * n + window) of the current cell
    # (l - j) per visited cell, j in X's original order: l - r walking forward, r + 1 walking backward
    y_factor, y_step = np.where(reversed_y, 1.0, float(l)), np.where(reversed_y, 1.0, -1.0)
    f_factor = np.full(n, float(l))
    bound_sum = np.zeros(n)
    n_steps = 2 * l - 1
    cells_f, cells_y = np.empty((n_steps, n), np.intp), np.empty((n_steps, n), np.intp)
    mass = np.empty((n_steps, n))
    lower = start
    for step in range(n_steps):                 # the walk itself: only the interval ends are gathered
        cells_f[step], cells_y[step] = pos_f, pos_y
        hi_f, hi_y = f_hi[pos_f], y_hi[pos_y]
        upper = np.minimum(hi_f, hi_y)
        m = np.subtract(upper, lower, out=mass[step])
        lower = upper
        bound_sum += m * f_factor * y_factor
        advance_f, advance_y = hi_f <= hi_y, hi_y <= hi_f
        pos_f += advance_f * n_f
        pos_y += advance_y * n
        f_factor -= advance_f
        y_factor += advance_y * y_step
        np.minimum(pos_f, last_f, out=pos_f)
        np.minimum(pos_y, last_y, out=pos_y)
    return mass, cells_f, cells_y, bound_sum


def _staircase_correction(f_walk: np.ndarray, y_walk: np.ndarray, walked: tuple, weight: np.ndarray,
                          one_minus_w: np.ndarray, log_one_minus_w: np.ndarray) -> np.ndarray:
    """Sum over the visited cells of [p ln|p| of the joint PDF] minus [the same cell's term of the
    closed-form sum over all cells, (1 - w) a (ln|1 - w| + ln p_F + ln p_X)], from ``_staircase_walk``'s
    cells. Cells visited without mass contribute ~0 (the two terms agree). The joint value of a cell is
    the reference's formula, in the reference's operation order."""
    mass, cells_f, cells_y = walked[:3]
    (f_pdf, f_log), (y_pdf, y_log) = (b[1:].reshape(2, -1) for b in (f_walk, y_walk))
    independent = f_pdf[cells_f]
    independent *= y_pdf[cells_y]
    joint = mass                                # (consumed: the masses are not needed again)
    joint -= independent                        # joint = independent + w (mass - independent), as fmi.m
    joint *= weight
    joint += independent
    closed_form_term = f_log[cells_f]
    closed_form_term += y_log[cells_y]
    closed_form_term += log_one_minus_w
    closed_form_term *= independent
    closed_form_term *= one_minus_w
    contribution = _plogp(joint)
    contribution -= closed_form_term
    return contribution.sum(axis=0)


def _fused_windows(pdf: np.ndarray) -> tuple[_Columns, np.ndarray]:
    """The fused side's per-window quantities, computed once per chunk and shared by both sources:
    the ``_Columns`` that ``_nelsen_nmi`` takes per paired window, and the staircase walk's block,
    which the walk indexes in place."""
    l, n = pdf.shape
    fw = _Columns({"centred": l, "plogp_sum": 1, "mass": 1, "centred_ss": 1, "sd": 1, "cdf_sum": 1}, n)
    cdf = _cumulative_rows(pdf)
    log_pdf = _log_mass(pdf)
    walk = np.empty((3, l + 1, n))
    _padded_walk_rows(walk, cdf, pdf, log_pdf)
    fw.plogp_sum[0] = sequential_sum(pdf * log_pdf)     # sum_i p ln p = -H(F)
    fw.mass[0] = pdf.sum(axis=0)
    np.subtract(pdf, sequential_sum(pdf) / l, out=fw.centred)
    fw.centred_ss[0] = sequential_sum(fw.centred * fw.centred)
    fw.sd[0] = _index_sd(pdf)
    fw.cdf_sum[0] = cdf.sum(axis=0)
    return fw, walk


def _nelsen_nmi(x_pdf: np.ndarray, fused: tuple[_Columns, np.ndarray], f_columns: np.ndarray | None = None
                ) -> np.ndarray:
    """Normalised MI 2 I(X;F) / (H(X) + H(F)) per window from marginal window PDFs (l, n); X's window k
    is paired with the fused window ``f_columns[k]`` of ``fused`` (from ``_fused_windows``), or with
    window k when ``f_columns`` is None.

    Haghighat et al. 2011, sec. 3 (eqs. 6-10): c = Pearson correlation of the two PDFs; for c >= 0 the
    joint PDF is phi * dU + (1 - phi) * p_F p_X with U(i, j) = min(C_F(i), C_X(j)) the Frechet upper
    bound and phi = c / corr(U); for c < 0 the lower bound L(i, j) = max(C_F(i) + C_X(j) - 1, 0) and
    theta = c / corr(L). ``dU`` is the 2-D difference of the bound (its probability mass per cell).
    Natural logs: the ratio does not depend on the log base (``fmi.m`` uses log2, several times slower
    in numpy).

    The joint entropy is not summed over all l x l cells. Off the bound's staircase of at most 2l - 1
    cells the joint PDF is (1 - w) p_F(i) p_X(j), whose p ln|p| summed over ALL cells has the closed
    form (1 - w) [ln|1 - w| S_F S_X + S_X sum p_F ln p_F + S_F sum p_X ln p_X] (S = sum of the PDF);
    the staircase cells then swap their closed-form term for their true term
    (``_staircase_correction``). Same value as the cell-by-cell sum up to rounding (~1e-15).
    """
    l, n = x_pdf.shape
    f_walk, fw = fused[1], (fused[0] if f_columns is None else fused[0].take(f_columns))
    if f_columns is None:
        f_columns = np.arange(n)
    x_cdf = _cumulative_rows(x_pdf)
    xt = x_pdf - sequential_sum(x_pdf) / l
    num = sequential_sum(xt * fw.centred)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt(sequential_sum(xt * xt) * fw.centred_ss[0]))
    x_sd, f_sd = _index_sd(x_pdf), fw.sd[0]
    negative = c < 0
    # Cell (i, j): F index i, X index j. The Frechet bound's mass in cell (i, j) is the overlap of F's
    # CDF step [C_F(i-1), C_F(i)] with X's step -- [C_X(j-1), C_X(j)] for the upper bound (comonotone),
    # [1 - C_X(j), 1 - C_X(j-1)] for the lower bound (countermonotone). The countermonotone steps descend
    # with j: walk X's cells in reverse order there, so both sides' intervals ascend (the entropy does
    # not depend on the cells' order).
    x_log_pdf = _log_mass(x_pdf)
    x_plogp_sum = sequential_sum(x_pdf * x_log_pdf)
    x_upper = np.concatenate([np.ones_like(x_cdf[:1]), 1.0 - x_cdf[:-1]])[::-1]  # 1 - C_X(j-1), reversed
    reverse = lambda a: np.where(negative, a[::-1], a)  # noqa: E731
    x_walk = np.empty((3, l + 1, n))
    _padded_walk_rows(x_walk, np.where(negative, x_upper, x_cdf), reverse(x_pdf), reverse(x_log_pdf))
    start = np.where(negative, np.maximum(1.0 - x_cdf[l - 1], 0.0), 0.0)
    walked = _staircase_walk(f_walk, f_columns, x_walk, start, negative)
    # covariance of the bound: sum_ij (bound_ij - C_F(i) C_X(j))
    cov_bound = walked[3] - fw.cdf_sum[0] * x_cdf.sum(axis=0)
    no_dependence = (x_sd == 0) | (f_sd == 0) | (~negative & (c == 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(no_dependence, 0.0, c * (f_sd * x_sd) / cov_bound)
    one_minus_w = 1.0 - weight
    log_one_minus_w = _log_mass(one_minus_w)
    x_mass, f_mass, f_plogp_sum = x_pdf.sum(axis=0), fw.mass[0], fw.plogp_sum[0]
    closed_form = log_one_minus_w * (f_mass * x_mass) + x_mass * f_plogp_sum + f_mass * x_plogp_sum
    closed_form *= one_minus_w
    correction = _staircase_correction(f_walk, x_walk, walked, weight, one_minus_w, log_one_minus_w)
    h_joint = -(closed_form + correction)
    h_x, h_f = -x_plogp_sum, -f_plogp_sum
    mi = h_x + h_f - h_joint
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mi == 0, 0.0, 2.0 * mi / (h_x + h_f))


def feature_mutual_information(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray, size: int = FMI_WINDOW) -> float:
    """Mean over all 'valid' ``size x size`` windows of (FMI(A, F) + FMI(B, F)) / 2 on feature images.

    As in Haghighat's ``fmi.m``, a window scores 1 when the source and fused windows are identical.
    Quirk kept: ``fmi.m`` overwrites the fused window with its min-max normalised version while scoring
    A, so wherever A's window differed from F's, B's window is compared with F's NORMALISED window.
    An identical one-hot B window then scores 0 (zero entropies, "mi == 0") instead of 1; reproducing
    this is what matches ``tang.FMI_none`` to 1e-14 (about 1% of the value on medical images).

    The 3x3 windows run in compiled loops (``metrics._fmi_numba``: the same arithmetic window by window,
    with numpy's logs between the passes; about 2x faster than the numpy path, which the walk's
    per-step numpy calls dominate) when numba is available, else on the numpy path below.
    """
    kernels = compiled_kernels("metrics._fmi_numba", _warm_up, "FMI") if size == FMI_WINDOW else None
    if kernels is None:
        return _feature_mutual_information_numpy(fa, fb, ff, size)
    _check_fits(ff, size)                       # the same ImageTooSmall as the numpy path
    fa, fb, ff = (np.ascontiguousarray(x, dtype=np.float64) for x in (fa, fb, ff))
    n_windows = (ff.shape[0] - size + 1) * (ff.shape[1] - size + 1)
    scores = np.empty(2 * n_windows)
    kernels.fmi_scores(fa, fb, ff, CHUNK, scores)
    total = 0.0
    for start in range(0, n_windows, CHUNK):    # each chunk's scores summed as the numpy path's chunks
        total += float(scores[2 * start:2 * min(start + CHUNK, n_windows)].sum())
    return float(total / (2 * n_windows))


def _warm_up(kernels) -> None:
    """Compile the kernels for the argument types ``feature_mutual_information`` passes."""
    x = np.arange(9.0).reshape(3, 3)
    kernels.fmi_scores(x, x[::-1].copy(), x.T.copy(), CHUNK, np.empty(2))
    kernels.dwt_columns(x, x[0], x[1], np.empty((2, 3)), np.empty((2, 3)))


def _feature_mutual_information_numpy(fa, fb, ff, size: int = FMI_WINDOW) -> float:
    """``feature_mutual_information`` vectorised over chunks of windows: (9, CHUNK) arrays, one numpy
    call per operation."""
    wa, wb, wf = (window_vectors(x, size) for x in (fa, fb, ff))
    n_windows = wf.shape[1]
    total = 0.0
    for start in range(0, n_windows, CHUNK):
        part = slice(start, start + CHUNK)
        f_raw = wf[:, part]
        f_scaled = _minmax_windows(f_raw)
        fused = _fused_windows(_window_pdfs(f_scaled, size))
        a_same = (wa[:, part] == f_raw).all(axis=0)
        f_seen_by_b = np.where(a_same, f_raw, f_scaled)
        b_same = (wb[:, part] == f_seen_by_b).all(axis=0)
        if not (a_same.any() or b_same.any()):  # every window differs: score both sources in place
            total += sum(_nelsen_nmi(_window_pdfs(_minmax_windows(x[:, part]), size), fused).sum() for x in (wa, wb))
            continue
        # identical windows score 1; the others of BOTH sources go through one vectorised pass (twice
        # the windows per numpy call where half of them are identical, e.g. black backgrounds)
        a_differ, b_differ = np.flatnonzero(~a_same), np.flatnonzero(~b_same)
        total += float(a_same.sum() + b_same.sum())
        if a_differ.size + b_differ.size:
            sources = np.concatenate([wa[:, part].take(a_differ, axis=1), wb[:, part].take(b_differ, axis=1)], axis=1)
            f_columns = np.concatenate([a_differ, b_differ])
            total += _nelsen_nmi(_window_pdfs(_minmax_windows(sources), size), fused, f_columns).sum()
    return float(total / (2 * n_windows))


def _rerange(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant image becomes all ones (``rerange`` in Haghighat's code)."""
    lo, hi = x.min(), x.max()
    return np.ones_like(x) if hi == lo else (x - lo) / (hi - lo)


def dmey_mosaic(x: np.ndarray) -> np.ndarray:
    """One-level discrete Meyer DWT arranged as MATLAB's ``[cA, cH; cV, cD]`` and re-ranged to [0, 1]
    (``dwt2(x, 'dmey')`` with MATLAB's default half-sample symmetric extension = pywt 'symmetric').

    With numba, the two 1-D passes run in ``metrics._fmi_numba.dwt_columns`` (pywt's sums in pywt's
    order, so the same bits, vectorised over the lines: ~10x faster than pywt's scalar C loop); else,
    or for an image smaller than the 62-tap filter, ``pywt.dwt2``."""
    kernels = compiled_kernels("metrics._fmi_numba", _warm_up, "FMI")
    lo, hi = _DMEY
    if kernels is None or x.ndim != 2 or min(x.shape) < len(lo):
        ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
        return _rerange(np.block([[ca, ch], [cv, cd]]))
    x = np.ascontiguousarray(x, dtype=np.float64)
    half = lambda n: (n + len(lo) - 1) // 2  # noqa: E731
    rows_lo, rows_hi = np.empty((half(x.shape[0]), x.shape[1])), np.empty((half(x.shape[0]), x.shape[1]))
    kernels.dwt_columns(x, lo, hi, rows_lo, rows_hi)            # axis 0: pywt.dwtn's first axis
    mosaic = np.empty((2 * rows_lo.shape[0], 2 * half(x.shape[1])))
    m, k = rows_lo.shape[0], half(x.shape[1])
    for block, part in enumerate((rows_lo, rows_hi)):              # axis 1, on the transposed rows
        t_lo, t_hi = np.empty((k, m)), np.empty((k, m))
        kernels.dwt_columns(np.ascontiguousarray(part.T), lo, hi, t_lo, t_hi)
        # [cA cH; cV cD] with pywt's cA = aa, cH = da, cV = ad, cD = dd (first letter: axis 0)
        mosaic[:m, block * k:(block + 1) * k] = t_lo.T
        mosaic[m:, block * k:(block + 1) * k] = t_hi.T
    return _rerange(mosaic)


_DMEY = tuple(np.array(f, dtype=np.float64) for f in (pywt.Wavelet("dmey").dec_lo, pywt.Wavelet("dmey").dec_hi))


_REFERENCES = """

    References
    ----------
    Haghighat, Aghagolzadeh & Seyedarabi 2011, "A non-reference image fusion metric based on mutual
    information of image features", Comput. Electr. Eng. 37(5), 744-756.
    Haghighat & Razian 2014, "Fast-FMI: non-reference image fusion metric", IEEE AICT, 1-3.
"""


def _cites_haghighat(fn):
    """Append the two FMI papers to a metric's docstring (shared by the three feature variants)."""
    fn.__doc__ = fn.__doc__.rstrip() + "\n" + _REFERENCES
    return fn


@register_metric("FMI_pixel", higher_is_better=True, value_range=(0, 1), conventions=("default",))
@_cites_haghighat
def fmi_pixel(a, b, f, *, convention="default"):
    """Feature mutual information on raw pixel intensities (Fast-FMI, 3x3 windows).

    Haghighat et al. 2011, eq. (11): FMI = (I(A;F)/(H_A + H_F) + I(B;F)/(H_B + H_F)) with the MI taken
    per window (Fast-FMI, Haghighat & Razian 2014) and averaged; here the normalised form
    2 I / (H_X + H_F) per window, mean of the two sources, as ``fmi.m`` returns it. Higher is better;
    range about [0, 1], 1 when F = A = B.

    Notes
    -----
    'pixel' means the intensities themselves, as in Haghighat's paper (the ``'none'`` feature of
    ``fmi.m``); this reproduces ``tang.FMI_none``. Tang's table column called FMI_pixel is in fact
    computed with the ``'edge'`` feature (the function's default), which depends on MATLAB's ``edge``
    thinning and is not provided. Always defined: windows whose source and fused pixels are identical
    count as 1 (F = A = B gives 1, constant or not), flat windows follow ``fmi.m``'s arithmetic.
    """
    x, y, z = to255(a), to255(b), to255(f)
    return feature_mutual_information(x, y, z)


@register_metric("FMI_dct", higher_is_better=True, value_range=(0, 1), conventions=("default",))
@_cites_haghighat
def fmi_dct(a, b, f, *, convention="default"):
    """Feature mutual information on the images' 2-D DCT coefficients (Fast-FMI, 3x3 windows).

    Haghighat et al. 2011 with the ``'dct'`` feature of ``fmi.m``: MATLAB ``dct2`` (orthonormal DCT-II
    of the whole image) of A, B, F, then 3x3-window normalised MI as for ``FMI_pixel``. Higher is
    better; range about [0, 1]. Reproduces ``tang.FMI_dct``. Always defined: a window whose source and
    fused features are identical scores 1 (F = A = B gives 1, constant or not), flat windows follow
    ``fmi.m``'s arithmetic (``sequential_sum``).
    """
    x, y, z = (fft.dctn(to255(v), type=2, norm="ortho") for v in (a, b, f))
    return feature_mutual_information(x, y, z)


@register_metric("FMI_wavelet", higher_is_better=True, value_range=(0, 1), conventions=("default",))
@_cites_haghighat
def fmi_wavelet(a, b, f, *, convention="default"):
    """Feature mutual information on one-level discrete Meyer wavelet coefficients (Fast-FMI, 3x3).

    Haghighat et al. 2011 with the ``'wavelet'`` feature of ``fmi.m``: ``dwt2(x, 'dmey')`` arranged as
    ``[cA cH; cV cD]``, min-max re-ranged to [0, 1] per image, then 3x3-window normalised MI as for
    ``FMI_pixel``. Higher is better; range about [0, 1], 1 when F = A = B.

    Notes
    -----
    No reference value exists (``dwt2`` needs MATLAB's Wavelet Toolbox; Tang's ``FMI_w`` does not run in
    Octave); PyWavelets' ``'dmey'`` with 'symmetric' extension is MATLAB's default ``dwtmode('sym')``.
    Always defined: a constant image's mosaic is all ones (``rerange``), and identical windows score 1.
    """
    x, y, z = (dmey_mosaic(to255(v)) for v in (a, b, f))
    return feature_mutual_information(x, y, z)
