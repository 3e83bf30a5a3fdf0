"""Statistics of the fused image and simple source-to-fused comparisons: EN, SD, SF, AG, EI, CE, MSE, RMSE,
PSNR, CC, SCD.

All work on the 0..255 scale. ``cddfuse`` reproduces CDDFuse ``utils/Evaluator.py`` (fd8da1f), ``vifb``
reproduces VIFB's ``metrics/metrics*.m`` (22b2ea9), quirks included; see each docstring.
"""
from __future__ import annotations

import numpy as np

from metrics._filters import entropy, grey_levels, histogram, pearson, sobel, to255, warn
from metrics.registry import register_metric

ALL = ("default", "cddfuse", "vifb")


@register_metric("EN", higher_is_better=True, value_range=(0, 8), conventions=ALL)
def entropy_metric(a, b, f, *, convention="default"):
    """Entropy of F: -sum p_k log2 p_k over 256 grey levels (bits).

    Roberts, van Aardt & Ahmed 2008, "Assessment of image fusion procedures using entropy, image quality,
    and multispectral classification", J. Appl. Remote Sens. 2, 023522. Higher is better; range [0, 8].

    Notes
    -----
    Every convention is the same number: F rounded to its 256 uint8 levels (CDDFuse ``np.round`` +
    ``bincount``; VIFB 256 bins of ``floor``; identical for 8-bit images). A constant F gives 0.
    """
    return entropy(histogram(grey_levels(f)))


@register_metric("SD", higher_is_better=True, value_range=(0, 127.5), conventions=ALL)
def standard_deviation(a, b, f, *, convention="default"):
    """Standard deviation of F on the 0..255 scale, population form sqrt(mean((F - mean F)^2)).

    Rao 1997 (contrast of the fused image). Higher is better; range [0, 127.5]. Same in every
    convention (CDDFuse ``np.std``, VIFB ``metricsVariance`` both divide by N). Constant F gives 0.
    """
    return float(to255(f).std())


@register_metric("SF", higher_is_better=True, value_range=(0, 255 * np.sqrt(2)), conventions=ALL)
def spatial_frequency(a, b, f, *, convention="default"):
    """Spatial frequency sqrt(RF^2 + CF^2) of F (Eskicioglu & Fisher 1995, IEEE Trans. Commun. 43(12)).

    RF^2 and CF^2 are the mean squared horizontal and vertical first differences (0..255 scale).
    Higher is better.

    Notes
    -----
    ``default``/``cddfuse``: each mean is over its own number of differences, M(N-1) and (M-1)N.
    ``vifb``: both sums are divided by M*N (VIFB ``metricsSpatial_frequency``), i.e. about
    sqrt((N-1)/N) times the default on square images. Constant F gives 0.
    """
    x = to255(f)
    dx2, dy2 = np.diff(x, axis=1) ** 2, np.diff(x, axis=0) ** 2
    if convention == "vifb":
        return float(np.sqrt((dx2.sum() + dy2.sum()) / x.size))
    return float(np.sqrt(dx2.mean() + dy2.mean()))


@register_metric("AG", higher_is_better=True, conventions=ALL)
def average_gradient(a, b, f, *, convention="default"):
    """Average gradient of F: mean of sqrt((Gx^2 + Gy^2) / 2) (Cui et al. 2015, Opt. Commun. 341, 199-209).

    Gradients are central differences inside and one-sided at the border (``np.gradient`` = MATLAB
    ``gradient``), 0..255 scale. Higher is better.

    Notes
    -----
    ``default``/``cddfuse``: mean over the M*N pixels. ``vifb``: the sum divided by (M-1)(N-1)
    (VIFB ``metricsAvg_gradient``), 256^2/255^2 times larger on 256x256 images. Constant F gives 0.
    """
    x = to255(f)
    gy, gx = np.gradient(x)
    s = np.sqrt((gx * gx + gy * gy) / 2)
    if convention == "vifb":
        rows, cols = x.shape
        return float(s.sum() / ((rows - 1) * (cols - 1)))
    return float(s.mean())


@register_metric("EI", higher_is_better=True, conventions=ALL)
def edge_intensity(a, b, f, *, convention="default"):
    """Edge intensity: mean Sobel gradient magnitude of F, sqrt(Sx^2 + Sy^2) (Rajalingam & Priya 2018).

    Unnormalised 3x3 Sobel kernels, replicated border (VIFB ``metricsEdge_intensity``: ``fspecial('sobel')``
    with ``imfilter(..., 'replicate')``), 0..255 scale. Higher is better. One definition for all
    conventions (CDDFuse has no EI). Constant F gives 0.
    """
    gx, gy = sobel(to255(f), mode="nearest")
    return float(np.sqrt(gx * gx + gy * gy).mean())


def _kl_bits(source_levels, fused_hist):
    p = histogram(source_levels)
    p /= p.sum()
    both = (p > 0) & (fused_hist > 0)
    return float((p[both] * np.log2(p[both] / fused_hist[both])).sum())


@register_metric("CE", higher_is_better=False, value_range=(-np.inf, np.inf), conventions=ALL)
def cross_entropy(a, b, f, *, convention="default"):
    """Cross entropy (relative entropy) of the grey-level histograms, (KL(A||F) + KL(B||F)) / 2, bits.

    Bulanon, Burks & Alchanatis 2009, Biosystems Eng. 103(1), 12-22; VIFB ``metricsCross_entropy``.
    KL(X||F) = sum_k p_X(k) log2(p_X(k) / p_F(k)) over the 256 levels where both are non-zero (the
    reference skips the others, so the value stays finite). Lower is better; 0 when F has the
    histograms of both sources. One definition for all conventions.

    Skipping the levels F never takes makes this a partial sum, not a true divergence: it can be
    negative, e.g. about -0.07 for a constant F that the sources take on a few pixels only. Identical
    or constant A, B, F give 0.
    """
    q = histogram(grey_levels(f))
    q /= q.sum()
    return (_kl_bits(grey_levels(a), q) + _kl_bits(grey_levels(b), q)) / 2


def _sse(x, y):
    return float(((x - y) ** 2).sum())


@register_metric("MSE", higher_is_better=False, value_range=(0, 255.0 ** 2), conventions=ALL)
def mean_squared_error(a, b, f, *, convention="default"):
    """Mean squared error (MSE(A, F) + MSE(B, F)) / 2 on the 0..255 scale (Jagalingam & Hegde 2015).

    Lower is better. Same in every convention (CDDFuse ``Evaluator.MSE``; Tang's code reports the same
    number on the [0, 1] scale, i.e. divided by 255^2). Always defined; 0 when F = A = B.
    """
    x, y, z = to255(a), to255(b), to255(f)
    return (_sse(x, z) + _sse(y, z)) / (2 * z.size)


@register_metric("RMSE", higher_is_better=False, value_range=(0, 255.0), conventions=ALL)
def root_mean_squared_error(a, b, f, *, convention="default"):
    """Root mean squared error (RMSE(A, F) + RMSE(B, F)) / 2, 0..255 scale (Jagalingam & Hegde 2015).

    Lower is better.

    Notes
    -----
    ``default``/``cddfuse``: RMSE(X, F) = sqrt(mean((X - F)^2)). ``vifb`` reproduces VIFB
    ``metricsRmse``, which is not an RMSE: sqrt(sum((X - F)^2)) / (M*N) (about 1/256 of the RMSE on
    256x256 images). Always defined; 0 when F = A = B.
    """
    x, y, z = to255(a), to255(b), to255(f)
    if convention == "vifb":
        return (np.sqrt(_sse(x, z)) + np.sqrt(_sse(y, z))) / (2 * z.size)
    return (np.sqrt(_sse(x, z) / z.size) + np.sqrt(_sse(y, z) / z.size)) / 2


@register_metric("PSNR", higher_is_better=True, value_range=(0, np.inf), conventions=ALL)
def peak_signal_to_noise_ratio(a, b, f, *, convention="default"):
    """Peak signal-to-noise ratio 10 log10(P^2 / MSE) in dB, MSE = (MSE(A,F) + MSE(B,F)) / 2 (0..255).

    Jagalingam & Hegde 2015, Aquatic Procedia 4, 133-142. Higher is better; +inf when F = A = B.

    Notes
    -----
    ``default``: P = 255 (standard PSNR). ``cddfuse``: P = max(F) (``Evaluator.PSNR``), equal to the
    default only when F reaches 255, and -inf (with a warning) when F is all black. ``vifb``:
    20 log10(255 / sqrt(m)) with VIFB's "mse" m = (sqrt(SSE_A) + sqrt(SSE_B)) / (2 M N)
    (``metricsPsnr``), about 40 dB above the standard value.
    """
    z = to255(f)
    if convention == "vifb":
        m = root_mean_squared_error(a, b, f, convention="vifb")
        with np.errstate(divide="ignore"):
            return float(20 * np.log10(255.0 / np.sqrt(m)))
    mse = mean_squared_error(a, b, f)
    if mse == 0:
        return float("inf")
    peak = z.max() if convention == "cddfuse" else 255.0
    if peak == 0:
        warn("PSNR is -inf: F is all black, so its peak max(F) is 0 (cddfuse convention, as Evaluator.py)")
        return float("-inf")
    return float(10 * np.log10(peak * peak / mse))


@register_metric("CC", higher_is_better=True, value_range=(-1, 1), conventions=ALL)
def correlation_coefficient(a, b, f, *, convention="default"):
    """Correlation coefficient (r(A, F) + r(B, F)) / 2, Pearson r (Deshmukh & Bhosale 2010).

    Higher is better; range [-1, 1]. Same in every convention. NaN (with a warning) when F or a source
    is constant (0/0).
    """
    z = to255(f)
    value = (pearson(to255(a), z) + pearson(to255(b), z)) / 2
    if np.isnan(value):
        warn("CC is NaN: F or a source image is constant (0/0 correlation)")
    return value


@register_metric("SCD", higher_is_better=True, value_range=(-2, 2), conventions=ALL)
def sum_of_correlations_of_differences(a, b, f, *, convention="default"):
    """Sum of the correlations of differences r(A, F - B) + r(B, F - A) (Aslantas & Bendes 2015,
    AEU Int. J. Electron. Commun. 69(12), 1890-1896).

    Higher is better; range [-2, 2]. Same in every convention. NaN (with a warning), as in both
    references, when F equals a source (F - A constant, 0/0) or a source is constant.
    """
    x, y, z = to255(a), to255(b), to255(f)
    value = pearson(x, z - y) + pearson(y, z - x)
    if np.isnan(value):
        warn("SCD is NaN: F equals a source or an image is constant (0/0 correlation)")
    return value
