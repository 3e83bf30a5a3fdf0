"""Feature mutual information FMI (Haghighat et al.), computed as Fast-FMI on 3x3 sliding windows.

Every 3x3 window of a feature image is turned into a 9-sample "PDF" (min-max normalised, divided by
its sum); the joint PDF of a source window and the fused window is built from their CDFs with Nelsen's
method (a mixture of the Frechet bound and the independent product, weighted so that the joint PDF
has the windows' Pearson correlation); the window's normalised MI is 2 I / (H_X + H_F). FMI is the
mean over windows of (FMI_AF + FMI_BF) / 2.

All windows are processed at once: ``(n_windows, 9)`` arrays for the marginals and ``(n_windows, 9, 9)``
for the joint PDFs, in chunks so the working set stays in cache. The reference (Haghighat's
``fmi.m``, Tang's ``analysis_fmi.m``) loops over windows and pixels and takes minutes per image.
"""
from __future__ import annotations

import numpy as np
import pywt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft

from metrics._filters import to255
from metrics.registry import register_metric

FMI_WINDOW = 3          # w = 3: 3x3 windows (Haghighat & Razian 2014; Tang's default)
CHUNK = 1024          # windows per vectorised block: (1024, 81) float64 cell arrays stay in cache


def window_vectors(feature: np.ndarray, size: int = FMI_WINDOW) -> np.ndarray:
    """All ``size x size`` windows of ``feature`` ('valid' positions, row-major over positions) as rows
    of a ``(n_windows, size*size)`` array, each window flattened in MATLAB's column-major ``(:)`` order
    (the order matters: the CDFs accumulate along it)."""
    view = sliding_window_view(feature, (size, size))          # (rows', cols', r, c), no copy
    return view.transpose(0, 1, 3, 2).reshape(-1, size * size)  # one copy, column-major per window


def sequential_sum(x: np.ndarray) -> np.ndarray:
    """Row sums added left to right, as MATLAB/Octave ``sum`` does for a short vector.

    The order matters here, unlike almost anywhere else: a flat window's PDF is nine copies of
    fl(1/9), whose left-to-right sum is 1 + 2^-52, so ``pdf - mean(pdf)`` is a tiny non-zero constant
    and two flat windows come out perfectly correlated (c = 1, window FMI 1). numpy's pairwise sum
    gives exactly 1, c = 0 and window FMI 0 -- a 0.5% change of FMI on images with black backgrounds.
    """
    total = x[:, 0].copy()
    for k in range(1, x.shape[1]):
        total += x[:, k]
    return total


def _minmax_windows(windows: np.ndarray) -> np.ndarray:
    """Each window min-max normalised to [0, 1]; a flat window becomes all ones (``fmi.m``)."""
    lo, hi = windows.min(axis=1, keepdims=True), windows.max(axis=1, keepdims=True)
    span = hi - lo
    flat = span == 0
    return np.where(flat, 1.0, (windows - lo) / np.where(flat, 1.0, span))


def _window_pdfs(scaled: np.ndarray, size: int = FMI_WINDOW) -> np.ndarray:
    """Normalised windows divided by ``sum(sum(sub))`` (column sums first, then their sum)."""
    n = len(scaled)
    column_sums = sequential_sum(scaled.reshape(n, size, size).transpose(0, 2, 1).reshape(n * size, size))
    return scaled / sequential_sum(column_sums.reshape(n, size))[:, None]


def _plogp(p: np.ndarray) -> np.ndarray:
    """p ln |p| elementwise (0 where p = 0). For a negative joint 'probability' (Nelsen's mixture can
    give one) ``-p log |p|`` is MATLAB's ``real(-p .* log2(p))`` up to the base: the imaginary part is dropped.
    Natural log (see ``_nelsen_nmi``)."""
    mag = np.abs(p)
    mag += TINY  # ln(0 + TINY) is finite and multiplied by p = 0; any |p| > 1e-280 is unchanged
    np.log(mag, out=mag)
    mag *= p
    return mag


TINY = 1e-300


def _index_sd(p: np.ndarray) -> np.ndarray:
    """Population standard deviation of the index 1..n under each window's PDF (the ``e_aPdf`` loop)."""
    index = np.arange(1, p.shape[1] + 1, dtype=np.float64)
    mean = p @ index
    second = p @ (index * index)
    return np.sqrt(np.maximum(second - mean * mean, 0.0))


def _nelsen_nmi(x_pdf: np.ndarray, f_pdf: np.ndarray) -> np.ndarray:
    """Normalised MI 2 I(X;F) / (H(X) + H(F)) per window from marginal window PDFs (n, l).

    Haghighat et al. 2011, sec. 3 (eqs. 6-10): c = Pearson correlation of the two PDFs; for c >= 0 the
    joint PDF is phi * dU + (1 - phi) * p_F p_X with U(i, j) = min(C_F(i), C_X(j)) the Frechet upper
    bound and phi = c / corr(U); for c < 0 the lower bound L(i, j) = max(C_F(i) + C_X(j) - 1, 0) and
    theta = c / corr(L). ``dU`` is the 2-D difference of the bound (its probability mass per cell).
    Natural logs: the ratio does not depend on the log base (``fmi.m`` uses log2, several times slower
    in numpy).
    """
    n, l = x_pdf.shape
    x_cdf, f_cdf = np.cumsum(x_pdf, axis=1), np.cumsum(f_pdf, axis=1)
    xt = x_pdf - (sequential_sum(x_pdf) / l)[:, None]
    ft = f_pdf - (sequential_sum(f_pdf) / l)[:, None]
    num = sequential_sum(xt * ft)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(num == 0, 0.0, num / np.sqrt(sequential_sum(xt * xt) * sequential_sum(ft * ft)))
    x_sd, f_sd = _index_sd(x_pdf), _index_sd(f_pdf)
    negative = c < 0
    # Joint-PDF cells as flat (n, l*l) rows, cell (i, j) at i*l + j: rows F index i, columns X index j
    # (np.repeat / np.tile keep every elementwise pass contiguous; broadcasting over 9x9 blocks is
    # several times slower in numpy). The Frechet bound's mass in cell (i, j) is the overlap of
    # F's CDF step [C_F(i-1), C_F(i)] with X's step -- [C_X(j-1), C_X(j)] for the upper bound
    # (comonotone), [1 - C_X(j), 1 - C_X(j-1)] for the lower bound (countermonotone).
    f_prev, x_prev = (np.concatenate([np.zeros((n, 1)), cdf[:, :-1]], axis=1) for cdf in (f_cdf, x_cdf))
    f_hi, f_lo = np.repeat(f_cdf, l, axis=1), np.repeat(f_prev, l, axis=1)
    y_hi = np.tile(np.where(negative[:, None], 1.0 - x_prev, x_cdf), (1, l))
    y_lo = np.tile(np.where(negative[:, None], 1.0 - x_cdf, x_prev), (1, l))
    # covariance of the bound: sum_ij (bound_ij - C_F(i) C_X(j)); U = min(C_F, C_X),
    # L = max(C_F + C_X - 1, 0) = C_F - min(C_F, 1 - C_X)
    bound_min = np.minimum(f_hi, np.where(negative[:, None], y_lo, y_hi)).sum(axis=1)
    bound_sum = np.where(negative, l * f_cdf.sum(axis=1) - bound_min, bound_min)
    cov_bound = bound_sum - f_cdf.sum(axis=1) * x_cdf.sum(axis=1)
    no_dependence = (x_sd == 0) | (f_sd == 0) | (~negative & (c == 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        weight = np.where(no_dependence, 0.0, c * (f_sd * x_sd) / cov_bound)
    mass = np.minimum(f_hi, y_hi, out=f_hi)
    mass -= np.maximum(f_lo, y_lo, out=f_lo)
    np.maximum(mass, 0.0, out=mass)
    independent = np.repeat(f_pdf, l, axis=1)
    independent *= np.tile(x_pdf, (1, l))
    mass -= independent                      # joint = independent + w (mass - independent)
    mass *= weight[:, None]
    mass += independent
    h_joint = -_plogp(mass).sum(axis=1)
    h_x, h_f = -_plogp(x_pdf).sum(axis=1), -_plogp(f_pdf).sum(axis=1)
    mi = h_x + h_f - h_joint
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mi == 0, 0.0, 2.0 * mi / (h_x + h_f))


def _window_nmi(x_win: np.ndarray, same: np.ndarray, f_pdf: np.ndarray) -> np.ndarray:
    """Per-window FMI of source X with F: 1 where ``same``, else Nelsen's normalised MI."""
    out = np.ones(len(x_win))
    differ = ~same
    if differ.any():
        out[differ] = _nelsen_nmi(_window_pdfs(_minmax_windows(x_win[differ])), f_pdf[differ])
    return out


def feature_mutual_information(fa: np.ndarray, fb: np.ndarray, ff: np.ndarray, size: int = FMI_WINDOW) -> float:
    """Mean over all 'valid' ``size x size`` windows of (FMI(A, F) + FMI(B, F)) / 2 on feature images.

    As in Haghighat's ``fmi.m``, a window scores 1 when the source and fused windows are identical.
    Quirk kept: ``fmi.m`` overwrites the fused window with its min-max normalised version while scoring
    A, so wherever A's window differed from F's, B's window is compared with F's NORMALISED window.
    An identical one-hot B window then scores 0 (zero entropies, "mi == 0") instead of 1; reproducing
    this is what matches ``tang.FMI_none`` to 1e-14 (about 1% of the value on medical images).
    """
    wa, wb, wf = (window_vectors(x, size) for x in (fa, fb, ff))
    total = 0.0
    for start in range(0, len(wf), CHUNK):
        part = slice(start, start + CHUNK)
        f_raw = wf[part]
        f_scaled = _minmax_windows(f_raw)
        f_pdf = _window_pdfs(f_scaled, size)
        a_same = (wa[part] == f_raw).all(axis=1)
        f_seen_by_b = np.where(a_same[:, None], f_raw, f_scaled)
        b_same = (wb[part] == f_seen_by_b).all(axis=1)
        total += _window_nmi(wa[part], a_same, f_pdf).sum() + _window_nmi(wb[part], b_same, f_pdf).sum()
    return float(total / (2 * len(wf)))


def _rerange(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a constant image becomes all ones (``rerange`` in Haghighat's code)."""
    lo, hi = x.min(), x.max()
    return np.ones_like(x) if hi == lo else (x - lo) / (hi - lo)


def dmey_mosaic(x: np.ndarray) -> np.ndarray:
    """One-level discrete Meyer DWT arranged as MATLAB's ``[cA, cH; cV, cD]`` and re-ranged to [0, 1]
    (``dwt2(x, 'dmey')`` with MATLAB's default half-sample symmetric extension = pywt 'symmetric')."""
    ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
    return _rerange(np.block([[ca, ch], [cv, cd]]))


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
    thinning and is not provided. Windows whose source and fused pixels are identical count as 1.
    """
    x, y, z = to255(a), to255(b), to255(f)
    return feature_mutual_information(x, y, z)


@register_metric("FMI_dct", higher_is_better=True, value_range=(0, 1), conventions=("default",))
@_cites_haghighat
def fmi_dct(a, b, f, *, convention="default"):
    """Feature mutual information on the images' 2-D DCT coefficients (Fast-FMI, 3x3 windows).

    Haghighat et al. 2011 with the ``'dct'`` feature of ``fmi.m``: MATLAB ``dct2`` (orthonormal DCT-II
    of the whole image) of A, B, F, then 3x3-window normalised MI as for ``FMI_pixel``. Higher is
    better; range about [0, 1]. Reproduces ``tang.FMI_dct``.
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
    """
    x, y, z = (dmey_mosaic(to255(v)) for v in (a, b, f))
    return feature_mutual_information(x, y, z)
