"""Structural-similarity metrics: SSIM, MS_SSIM and the SSIM-based fusion indices Qw, Qe (Piella),
Qy (Yang) and Qc (Cvejic).

Local statistics come from ``_filters.LocalStatistics`` (Gaussian or uniform windows, 'valid' filtering), on
the 0..255 scale.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from metrics._filters import ImageTooSmall, LocalStatistics, filter2, gaussian_window, to255, warn
from metrics._shared import shared
from metrics.registry import register_metric

WANG_WINDOW = gaussian_window(11, 1.5)             # Wang et al. 2004: 11x11 Gaussian, sigma 1.5
YANG_WINDOW = gaussian_window(7, 1.5)              # Zheng Liu's ssim_yang: 7x7 Gaussian, sigma 1.5
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli & Bovik 2003, Table 1
L255 = 255.0
C1_255, C2_255 = (0.01 * L255) ** 2, (0.03 * L255) ** 2
C_YANG = 2e-16  # Zheng Liu's ssim_yang: (almost) the bare Q0 index, constants only to avoid 0/0


def wang_statistics(x, y, z):
    """Local statistics of A, B, F (0..255) under Wang's window, shared by SSIM, Qw and Qe."""
    return LocalStatistics.of({"a": x, "b": y, "f": z}, WANG_WINDOW)


def wang_ssim_means(x, y, z):
    """Mean SSIM maps SSIM(F, A), SSIM(F, B) of Wang et al. 2004 (11x11 Gaussian sigma 1.5,
    K = (0.01, 0.03), L = 255, 'valid'); F's local statistics are filtered once for both."""
    stats = wang_statistics(x, y, z)
    return [float(stats.ssim("f", k, C1_255, C2_255)[0].mean()) for k in ("a", "b")]


def _skimage_ssim(z, sources, data_range):
    """[scikit-image ``structural_similarity(z, x)`` for x in ``sources``] with its defaults on float32
    images, as CDDFuse runs it: 7x7 uniform window (reflect border), sample covariance (49/48), mean of
    the map without its 3-pixel border; z's local mean and variance are filtered once for all sources.
    The arithmetic is float32 like scikit-image's for float32 input; with data_range = 2 the constants
    are tiny, so float64 would differ by ~5e-6."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    size, pad = 7, 3
    mean = lambda t: ndimage.uniform_filter(t, size=size, mode="reflect")  # noqa: E731
    cov_norm = np.float32(size * size / (size * size - 1.0))
    x = z.astype(np.float32)
    ux = mean(x)
    vx = cov_norm * (mean(x * x) - ux * ux)
    values = []
    for y in sources:
        y = y.astype(np.float32)
        uy = mean(y)
        vy = cov_norm * (mean(y * y) - uy * uy)
        vxy = cov_norm * (mean(x * y) - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        values.append(float(s[pad:-pad, pad:-pad].astype(np.float64).mean()))
    return values


@register_metric("SSIM", higher_is_better=True, value_range=(-1, 1), conventions=("default", "cddfuse", "vifb"))
def structural_similarity(a, b, f, *, convention="default"):
    """Structural similarity of F with both sources, SSIM(A, F) and SSIM(B, F) combined.

    Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4), 600-612, eq. (13): local
    ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)) averaged over the map.
    Higher is better.

    Notes
    -----
    ``default``: the MEAN (SSIM(A,F) + SSIM(B,F)) / 2 with Wang's reference settings (11x11 Gaussian
    window sigma 1.5, K = (0.01, 0.03), L = 255, 'valid' map); range [-1, 1], 1 when F = A = B.
    ``vifb``: the SUM of the same two values (VIFB ``metricsSsim`` = Wang's ``ssim_index``); range [-2, 2].
    ``cddfuse``: the SUM of scikit-image ``structural_similarity(F, X)`` as CDDFuse calls it: 7x7 uniform
    window, sample covariance, and data_range = 2 on 0..255 images (scikit-image <= 0.19 default for
    floats), i.e. C1 = 4e-4 and C2 = 3.6e-3 -- much smaller constants than L = 255 gives.
    """
    x, y, z = to255(a), to255(b), to255(f)
    if convention == "cddfuse":
        ssim_fa, ssim_fb = _skimage_ssim(z, (x, y), 2.0)
        return ssim_fa + ssim_fb
    ssim_fa, ssim_fb = wang_ssim_means(x, y, z)
    total = ssim_fa + ssim_fb
    return total if convention == "vifb" else total / 2


def _average_pool2(x):
    """torch ``avg_pool2d(kernel 2, stride 2, padding = size % 2)`` with zero padding counted."""
    pr, pc = x.shape[0] % 2, x.shape[1] % 2
    if pr or pc:
        x = np.pad(x, ((pr, pr), (pc, pc)))
    r, c = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:r, :c]
    return (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]) / 4


def multiscale_ssim(x, y, z):
    """Wang 2003 MS-SSIM of the 0..255 image ``z`` with the sources ``x``, ``y``, as pytorch-msssim 1.0
    computes it (cs clamped at 0); z's pyramid and local statistics are computed once for both sources.

    The first scale's statistics are those of SSIM and Piella's indices (``wang_statistics``, shared
    within ``compute``). pytorch-msssim builds its window in float32, 2.6e-7 relative from the float64
    window used here; the resulting MS-SSIM differs by about 1e-7 (the reference check is 1e-3)."""
    min_side = (len(WANG_WINDOW) - 1) * 2 ** (len(MSSSIM_WEIGHTS) - 1)
    if min(z.shape) <= min_side:
        raise ImageTooSmall(f"needs images larger than {min_side} pixels on each side, got {z.shape}")
    factors = {"a": [], "b": []}
    images = {"a": x, "b": y, "f": z}
    for level in range(len(MSSSIM_WEIGHTS)):
        stats = wang_statistics(x, y, z) if level == 0 else LocalStatistics(images, WANG_WINDOW)
        last = level == len(MSSSIM_WEIGHTS) - 1
        for k in factors:
            ssim_map, cs_map = stats.ssim("f", k, C1_255, C2_255)
            factors[k].append(max((ssim_map if last else cs_map).mean(), 0.0))
        if not last:
            images = {k: _average_pool2(v) for k, v in images.items()}
    return [float(np.prod(np.power(factors[k], MSSSIM_WEIGHTS))) for k in ("a", "b")]


@register_metric("MS_SSIM", higher_is_better=True, value_range=(0, 1), conventions=("default",))
def multiscale_structural_similarity(a, b, f, *, convention="default"):
    """Multi-scale SSIM, (MS-SSIM(F, A) + MS-SSIM(F, B)) / 2.

    Wang, Simoncelli & Bovik 2003, "Multiscale structural similarity for image quality assessment",
    Asilomar Conf., eq. (7): prod_j cs_j^w_j * l_M^w_M over 5 scales, weights (.0448 .2856 .3001 .2363
    .1333), 11x11 Gaussian sigma 1.5, K = (0.01, 0.03), L = 255, 2x2 average pooling between scales.
    Higher is better; range [0, 1].

    Notes
    -----
    Reproduces PyPI ``pytorch-msssim`` 1.0 ``ms_ssim(F, X)`` with its defaults (which clamp negative cs
    at 0, unlike Wang's ``msssim.m``); the reference column ``msssim.MS_SSIM`` is the SUM, twice this
    MEAN. Needs both image sides > 160 pixels (``compute`` gives NaN, with a warning, below that).
    """
    x, y, z = to255(a), to255(b), to255(f)
    ms_fa, ms_fb = multiscale_ssim(x, y, z)
    return (ms_fa + ms_fb) / 2


# ------------------------------------------------------------------------------------------ Piella
def _piella_terms(x, y, z, convention="default"):
    """Saliency weights and SSIM maps of Zheng Liu's ``metricPeilla``: lambda = s_A^2 / (s_A^2 + s_B^2)
    from the local variances of (A, B), with 0.5 added to both where both are 0.

    ``default``: a window's variance is 0 when it is flat, so two flat windows get lambda = 1/2.
    ``vifb`` emulates MATLAB's direct ``conv2``, whose rounding leaves a flat NON-ZERO window with a
    tiny non-zero variance (only an all-zero window gives exactly 0): a flat bright A next to a black B
    then gets lambda = 1, not 1/2. This reproduces ``zhengliu.Q_S`` to 1e-10 (plain float64 filtering
    is off by up to 2e-3 on the medical vectors).
    """
    stats = wang_statistics(x, y, z)  # each image filtered once, shared with SSIM
    mean_x, mean_y, var_x, var_y = stats.mean("a"), stats.mean("b"), stats.var("a"), stats.var("b")
    flat_tol = 1e-9  # rounding leaves <~1e-11 in a flat window; a real one-level step gives >~1e-6
    var_x = np.where(var_x < flat_tol, 0.0, var_x)
    var_y = np.where(var_y < flat_tol, 0.0, var_y)
    if convention == "vifb":
        var_x = var_x + 1e-20 * ((var_x == 0) & (mean_x != 0))
        var_y = var_y + 1e-20 * ((var_y == 0) & (mean_y != 0))
    both_flat = (var_x + var_y) == 0
    var_x, var_y = var_x + 0.5 * both_flat, var_y + 0.5 * both_flat
    lam = var_x / (var_x + var_y)
    q_map = lam * stats.ssim("f", "a", C1_255, C2_255)[0] + (1 - lam) * stats.ssim("f", "b", C1_255, C2_255)[0]
    return q_map, np.maximum(var_x, var_y)


def piella_q(x, y, z, convention="default"):
    """Piella's fusion quality index Q (Zheng Liu ``metricPeilla(..., 1)``, ``zhengliu.Q_S``)."""
    return float(_piella_terms(x, y, z, convention)[0].mean())


def piella_qw(x, y, z, convention="default"):
    """Piella's weighted fusion quality index Q_W (Zheng Liu ``metricPeilla(..., 2)``); computed once
    per ``compute`` call for Qw and Qe."""
    def weighted(x, y, z):
        q_map, saliency = _piella_terms(x, y, z, convention)
        return float((saliency * q_map).sum() / saliency.sum())
    return shared("piella_qw", weighted, x, y, z, options=(convention,))


@register_metric("Qw", higher_is_better=True, value_range=(-1, 1), conventions=("default", "vifb"))
def piella_weighted(a, b, f, *, convention="default"):
    """Piella's weighted fusion quality index Q_W = sum_w c(w) [lambda(w) Q(A,F|w) + (1-lambda(w)) Q(B,F|w)].

    Piella & Heijmans 2003, "A new quality metric for image fusion", ICIP, eq. (7); saliency = local
    variance, c(w) = max(s_A^2, s_B^2) / sum, lambda = s_A^2 / (s_A^2 + s_B^2). Higher is better;
    range [-1, 1].

    Notes
    -----
    Both conventions follow Zheng Liu's ``metricPeilla(..., 2)``; they differ only in flat windows (see
    ``_piella_terms``: ``vifb`` emulates MATLAB's rounding there). The local index is the SSIM map of
    Wang's ``ssim_index`` (11x11 Gaussian, L = 255; not the bare Q0 of the paper) and 0.5 is added to both
    variances where both vanish. No reference column exists for Q_W itself; the same building block
    reproduces ``zhengliu.Q_S`` (Piella's unweighted Q, ``metricPeilla(..., 1)``).
    """
    return piella_qw(to255(a), to255(b), to255(f), convention)


PREWITT_X = np.array([[1.0, 0.0, -1.0]] * 3)  # Zheng Liu's metricPeilla edge filters
PREWITT_Y = PREWITT_X.T.copy()


def _edge_magnitude(x):
    return np.hypot(filter2(PREWITT_X, x), filter2(PREWITT_Y, x))


@register_metric("Qe", higher_is_better=True, value_range=(-1, 1), conventions=("default", "vifb"))
def piella_edge_dependent(a, b, f, *, convention="default"):
    """Piella's edge-dependent fusion quality index Q_E = Q_W(A, B, F) * Q_W(A', B', F')^alpha, alpha = 1.

    Piella & Heijmans 2003, ICIP, eq. (8); A', B', F' are Prewitt edge magnitudes (3x3, zero-padded
    'same', as in Zheng Liu's ``metricPeilla(..., 3)``). Higher is better.

    Notes
    -----
    Zheng Liu's case 3 multiplies an undefined ``Q`` (it errors in MATLAB); the paper's Q_W(A, B, F) is
    used for it. No reference column; checked by properties (Q_E(A, A, A) = 1). Constant images take
    Q_W's documented flat-window values (1 when F = A = B, constant or not).
    """
    x, y, z = to255(a), to255(b), to255(f)
    qw_edges = piella_qw(_edge_magnitude(x), _edge_magnitude(y), _edge_magnitude(z), convention)
    return piella_qw(x, y, z, convention) * qw_edges


# -------------------------------------------------------------------------------- Yang and Cvejic
def _yang_statistics(x, y, z):
    """Local statistics of A, B, F under Zheng Liu's ``ssim_yang`` window (7x7 Gaussian, sigma 1.5)."""
    return LocalStatistics.of({"a": x, "b": y, "f": z}, YANG_WINDOW)


def _weight(num, den, convention, metric):
    """num / den; ``vifb`` keeps MATLAB's NaN on 0/0, ``default`` uses the neutral weight 0.5 there."""
    with np.errstate(invalid="ignore", divide="ignore"):
        w = num / den
    undefined = den == 0
    if undefined.any():
        if convention == "vifb":
            warn(f"{metric} is NaN: 0/0 source weights where both windows are flat (Zheng Liu's code)")
        else:
            w = np.where(undefined, 0.5, w)
    return w


@register_metric("Qy", higher_is_better=True, value_range=(-1, 1), conventions=("default", "vifb"))
def yang_metric(a, b, f, *, convention="default"):
    """Yang's SSIM-based fusion metric Q_Y (Yang, Zhang, Wang & Zhang 2008, Inf. Fusion 9, 156-160, eq. 6).

    Per window: where SSIM(A, B) >= 0.75, lambda SSIM(A, F) + (1 - lambda) SSIM(B, F) with
    lambda = s_A^2 / (s_A^2 + s_B^2); elsewhere max(SSIM(A, F), SSIM(B, F)). Mean over the map.
    Higher is better; range [-1, 1].

    Notes
    -----
    Windows as Zheng Liu's ``ssim_yang`` (7x7 Gaussian sigma 1.5, C1 = C2 = 2e-16, 'valid').
    ``vifb`` reproduces ``metricYang`` exactly, including NaN whenever both sources are flat in some
    window (0/0 lambda; every medical vector with a black background, ``zhengliu.Q_Y``), with a warning.
    ``default`` gives lambda = 1/2 in those windows, so the metric is defined on medical images.
    """
    x, y, z = to255(a), to255(b), to255(f)
    stats = _yang_statistics(x, y, z)
    ssim_ab, var_a, var_b = stats.ssim("a", "b", C_YANG, C_YANG)[0], stats.var("a"), stats.var("b")
    ssim_af, ssim_bf = stats.ssim("a", "f", C_YANG, C_YANG)[0], stats.ssim("b", "f", C_YANG, C_YANG)[0]
    lam = _weight(var_a, var_a + var_b, convention, "Qy")
    similar = ssim_ab >= 0.75
    q = np.where(similar, lam * ssim_af + (1 - lam) * ssim_bf, np.maximum(ssim_af, ssim_bf))
    if convention == "vifb":
        q = q + 0 * lam  # MATLAB multiplies by the mask, so a NaN weight spoils every window
    return float(q.mean())


@register_metric("Qc", higher_is_better=True, value_range=(-1, 1), conventions=("default", "vifb"))
def cvejic_metric(a, b, f, *, convention="default"):
    """Cvejic's covariance-weighted fusion metric Q_C (Cvejic, Loza, Bull & Canagarajah 2006, Int. J.
    Inf. Commun. Eng. 2(3), 178-182).

    Per window mu = s_AF / (s_AF + s_BF) clipped as in the paper (mu < 0 -> value 0, mu > 1 -> value 1),
    value mu Q(A, F) + (1 - mu) Q(B, F); mean over the map. Higher is better; range [-1, 1].

    Notes
    -----
    Windows as Zheng Liu's ``ssim_yang`` (7x7 Gaussian sigma 1.5, C1 = C2 = 2e-16). ``vifb`` reproduces
    ``metricCvejic(..., 2)`` including NaN when s_AF + s_BF = 0 somewhere (all medical vectors,
    ``zhengliu.Q_C``), with a warning; ``default`` takes mu = 1/2 there.
    """
    x, y, z = to255(a), to255(b), to255(f)
    stats = _yang_statistics(x, y, z)
    ssim_af, cov_af = stats.ssim("a", "f", C_YANG, C_YANG)[0], stats.cov("a", "f")
    ssim_bf, cov_bf = stats.ssim("b", "f", C_YANG, C_YANG)[0], stats.cov("b", "f")
    mu = _weight(cov_af, cov_af + cov_bf, convention, "Qc")
    q = mu * ssim_af + (1 - mu) * ssim_bf
    q = np.where(mu < 0, 0.0, np.where(mu > 1, 1.0, q))
    return float(q.mean())
