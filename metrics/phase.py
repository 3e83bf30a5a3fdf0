"""Phase-congruency metric Qp (Zhao et al.), with Kovesi's phase congruency as Zheng Liu revised it."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft

from metrics._compiled import compiled_kernels
from metrics._filters import filter_separable, gaussian_window, to255, warn
from metrics.registry import register_metric

N_SCALE, N_ORIENT, MIN_WAVELENGTH, MULT, SIGMA_ON_F = 4, 6, 3, 2.1, 0.55
D_THETA_ON_SIGMA, NOISE_K, CUT_OFF, SHARPNESS, PC_EPS = 1.2, 2.0, 0.5, 10, 1e-4


def _axis(n):
    return (np.arange(n) - n // 2) / n if n % 2 == 0 else np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)


@lru_cache(maxsize=4)
def _filters(shape):
    """Log-Gabor x angular filter bank (orient, scale, rows, cols) and its spatial versions (scale, ...)."""
    rows, cols = shape
    x, y = np.meshgrid(_axis(cols), _axis(rows))
    radius = np.sqrt(x * x + y * y)
    radius[rows // 2, cols // 2] = 1.0
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    radius = np.fft.ifftshift(radius)
    lx = (np.arange(cols) - cols // 2) / cols
    ly = (np.arange(rows) - rows // 2) / rows
    lr = np.sqrt(lx[None, :] ** 2 + ly[:, None] ** 2)
    lowpass = np.fft.fftshift(1.0 / (1.0 + (lr / 0.45) ** (2 * 15)))
    log_gabor = []
    for s in range(N_SCALE):
        fo = 1.0 / (MIN_WAVELENGTH * MULT ** s)
        lg = np.exp(-(np.log(radius / fo)) ** 2 / (2 * np.log(SIGMA_ON_F) ** 2)) * lowpass
        lg[0, 0] = 0.0
        log_gabor.append(lg)
    theta_sigma = np.pi / N_ORIENT / D_THETA_ON_SIGMA
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    bank = []
    for o in range(N_ORIENT):
        angle = o * np.pi / N_ORIENT
        ds = sin_t * np.cos(angle) - cos_t * np.sin(angle)
        dc = cos_t * np.cos(angle) + sin_t * np.sin(angle)
        spread = np.exp(-np.arctan2(ds, dc) ** 2 / (2 * theta_sigma ** 2))
        bank.append([lg * spread for lg in log_gabor])
    bank = np.array(bank)
    # noise-model constants depend on the filters only (Kovesi: sums of the spatial filters' products)
    spatial = np.fft.ifft2(bank).real * np.sqrt(rows * cols)
    sum_an2 = (spatial ** 2).sum(axis=(2, 3)).sum(axis=1)
    cross = np.zeros(N_ORIENT)
    for si in range(N_SCALE - 1):
        for sj in range(si + 1, N_SCALE):
            cross += (spatial[:, si] * spatial[:, sj]).sum(axis=(1, 2))
    return bank.astype(np.float32), (bank[:, 0] ** 2).sum(axis=(1, 2)), sum_an2, cross


def _sum_over_scales(responses, term=lambda r: r):
    """sum(term(responses[:, s]) for s in scales), scale by scale in order: the same float32 additions as
    ``term(responses).sum(axis=1)`` without the (orient, scale, rows, cols) temporaries (~2x faster)."""
    total = term(responses[:, 0]).copy()
    for s in range(1, responses.shape[1]):
        total += term(responses[:, s])
    return total


def _energy_term(e, o, mean_e, mean_o):
    """Kovesi's energy term e * mean_e + o * mean_o - |e * mean_o - o * mean_e| (in place, same order)."""
    aligned = e * mean_e
    aligned += o * mean_o
    across = e * mean_o
    across -= o * mean_e
    np.abs(across, out=across)
    aligned -= across
    return aligned


def phase_congruency(image):
    """(PC, M, m) of Zheng Liu's ``myphasecong3`` (Kovesi's phasecong3 with default parameters):
    phase congruency, maximum and minimum moments of the PC covariance.

    After the 24 filter responses, the per-pixel work runs in compiled loops (``metrics._phase_numba``,
    the same arithmetic in the same precisions, each response read once) when numba is available."""
    bank, bank0_energy, sum_an2, cross = _filters(image.shape)
    # single precision for the 24 filter responses: Qp stays within 1e-7 of Zheng Liu's double code
    spectrum = fft.fft2(image).astype(np.complex64)
    kernels = compiled_kernels("metrics._phase_numba", _warm_up, "Qp's phase congruency")
    if kernels is None:
        eo = inverse_fft2(spectrum[None, None] * bank)  # (orient, scale, rows, cols)
        return _congruency_numpy(eo, bank0_energy, sum_an2, cross)
    filtered = np.empty(bank.shape, np.complex64)
    kernels.filter_spectrum(spectrum, bank, filtered)                   # the same products, no temporary
    eo = inverse_fft2(filtered)
    del filtered                    # (torch's FFT writes a new array: free the spectra at once)
    sum_an, spread, energy, first_scale_power = (np.empty(eo.shape[:1] + eo.shape[2:], np.float32) for _ in range(4))
    kernels.orientation_sums(eo, CUT_OFF, SHARPNESS, sum_an, spread, energy, first_scale_power)
    threshold = _noise_threshold(first_scale_power, bank0_energy, sum_an2, cross, kernels)
    pc, big, small = (np.empty(image.shape) for _ in range(3))
    kernels.congruency_and_moments(sum_an, np.exp(spread, out=spread), energy, threshold, *_ORIENTATION_COS_SIN,
                                   pc, big, small)
    return pc, big, small


def inverse_fft2(spectra: np.ndarray) -> np.ndarray:
    """Inverse 2-D FFTs over the last two axes of complex64 ``spectra`` (Qp's 24 filter responses per
    image), by torch's FFT (MKL), which the speed issue allows for Qp: Qp alone went from 70 / 63 to
    39 / 38 ms per triple (``python -m bench.speed.metrics``, old and new checkouts alternated; README,
    Speed). Its float32 rounding is not scipy's pocketfft's: on the 14 reference triples Qp moved by at
    most 3.1e-8 relative and stays within 1.3e-8 of Zheng Liu's double code (1.7e-8 before). Its
    values do not depend on the batch shape or on torch's thread count. Unlike scipy's in-place
    transform it holds a second array of the responses' size during the call (192 MiB for a 1024x1024
    image; tracemalloc does not see it). torch is imported here, on the first Qp of a process (once;
    the start-up line of ``python -m bench.speed.metrics`` includes it), not with ``metrics``."""
    import torch
    return torch.fft.ifft2(torch.from_numpy(np.ascontiguousarray(spectra))).numpy()


_ORIENTATION_COS_SIN = (np.cos(np.arange(N_ORIENT) * np.pi / N_ORIENT), np.sin(np.arange(N_ORIENT) * np.pi / N_ORIENT))


def _warm_up(kernels) -> None:
    """Compile both loops for the argument types ``phase_congruency`` passes."""
    eo = np.ones((N_ORIENT, N_SCALE, 2, 2), np.complex64)
    maps = [np.ones((N_ORIENT, 2, 2), np.float32) for _ in range(4)]
    kernels.orientation_sums(eo, CUT_OFF, SHARPNESS, *maps)
    kernels.congruency_and_moments(*maps[:3], np.zeros(N_ORIENT), *_ORIENTATION_COS_SIN,
                                   *(np.empty((2, 2)) for _ in range(3)))
    kernels.row_medians(maps[0].reshape(N_ORIENT, -1), np.empty(N_ORIENT, np.float32))
    kernels.filter_spectrum(eo[0, 0], np.ones((N_ORIENT, N_SCALE, 2, 2), np.float32), eo)
    maps = tuple(np.ones((2, 2)) for _ in range(3))
    kernels.best_local_correlation(maps[0], maps[0], maps, maps, maps, tuple(np.ones((2, 2), bool) for _ in range(3)),
                                   ZHAO_C, np.empty((2, 2)))


def _noise_threshold(first_scale_power, bank0_energy, sum_an2, cross, kernels=None):
    """Per-orientation noise threshold from the smallest scale's squared amplitudes (Kovesi 1999,
    sec. 5): a Rayleigh noise model whose median gives the noise power. The medians by the compiled
    radix select when ``kernels`` is given (numpy's median to the bit, ~3x faster), else np.median."""
    power = np.ascontiguousarray(first_scale_power.reshape(N_ORIENT, -1))
    median_e2n = np.empty(N_ORIENT, power.dtype)
    if kernels is None or power.dtype != np.float32 or not kernels.row_medians(power, median_e2n):
        median_e2n = np.median(power, axis=1)
    noise_power = (-median_e2n / np.log(0.5)) / bank0_energy
    noise_energy2 = 2 * noise_power * sum_an2 + 4 * noise_power * cross
    tau = np.sqrt(noise_energy2 / 2)
    return (tau * np.sqrt(np.pi / 2) + NOISE_K * np.sqrt((2 - np.pi / 2) * tau ** 2)) / 1.7


def _congruency_numpy(eo, bank0_energy, sum_an2, cross):
    """``phase_congruency`` after the filter responses, vectorised over whole (orient, scale, ...) arrays."""
    amplitude = np.abs(eo)
    sum_an = amplitude.sum(axis=1)
    sum_e, sum_o = _sum_over_scales(eo.real), _sum_over_scales(eo.imag)
    x_energy = np.sqrt(sum_e ** 2 + sum_o ** 2) + PC_EPS
    mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
    energy = _sum_over_scales(eo, lambda r: _energy_term(r.real, r.imag, mean_e, mean_o))
    threshold = _noise_threshold(amplitude[:, 0] ** 2, bank0_energy, sum_an2, cross)
    energy = np.maximum(energy - threshold[:, None, None], 0)
    width = sum_an / (amplitude.max(axis=1) + PC_EPS) / N_SCALE
    weight = 1.0 / (1 + np.exp((CUT_OFF - width) * SHARPNESS))
    weighted = weight * energy
    pc = weighted.sum(axis=0) / (sum_an.sum(axis=0) + PC_EPS)
    with np.errstate(divide="ignore", invalid="ignore"):
        pc_orient = weighted / sum_an
    covx = pc_orient * _ORIENTATION_COS_SIN[0][:, None, None]
    covy = pc_orient * _ORIENTATION_COS_SIN[1][:, None, None]
    covx2 = (covx ** 2).sum(0) / (N_ORIENT / 2)
    covy2 = (covy ** 2).sum(0) / (N_ORIENT / 2)
    covxy = (covx * covy).sum(0) / N_ORIENT  # as in myphasecong3 (Kovesi's original has 4 * covxy / norient)
    denom = np.sqrt(covxy ** 2 + (covx2 - covy2) ** 2) + PC_EPS
    return pc, (covy2 + covx2 + denom) / 2, (covy2 + covx2 - denom) / 2


ZHAO_WINDOW = gaussian_window(11, 1.5)
ZHAO_C = 1e-4
FEATURE_THRESHOLD = 0.1


def _feature_correlation(f1, f2, f_max, f_fused, m1, m2, m3):
    """Zhao's ``correlation_coeffcient``: masked local correlations of a feature map, max over the three
    references, summed and divided by the mask area of the maximum map. The per-pixel part after the
    filtering runs in one compiled loop when numba is available (the same operations: the same bits)."""
    f1, f2, f_max = m1 * f1, m2 * f2, m3 * f_max
    filt = lambda z: filter_separable(z, ZHAO_WINDOW, "same")  # noqa: E731  (zero-padded 'same')
    mu_f, sq_f = filt(f_fused), filt(f_fused * f_fused)
    references = ((f1, m1), (f2, m2), (f_max, m3))
    mus, sqs, crosses = zip(*((filt(feat), filt(feat * feat), filt(feat * f_fused)) for feat, _ in references))
    masks = tuple(mask for _, mask in references)
    kernels = compiled_kernels("metrics._phase_numba", _warm_up, "Qp's phase congruency")
    if kernels is None:
        best = _best_local_correlation_numpy(mu_f, sq_f, mus, sqs, crosses, masks)
    else:
        best = np.empty(f_fused.shape)
        kernels.best_local_correlation(mu_f, sq_f, mus, sqs, crosses, masks, ZHAO_C, best)
    return float(best.sum() / m3.sum())


def _best_local_correlation_numpy(mu_f, sq_f, mus, sqs, crosses, masks):
    """``metrics._phase_numba.best_local_correlation`` in numpy: the best masked local correlation of
    the three references from their filtered maps (mean, square, product with F's feature map)."""
    var_f = sq_f - mu_f * mu_f
    results = []
    for mu, sq, cross, mask in zip(mus, sqs, crosses, masks):
        var = sq - mu * mu
        cov = cross - mu * mu_f
        r = (cov + ZHAO_C) / (np.sqrt(np.abs(var * var_f)) + ZHAO_C)
        results.append(np.where(mask, r, 0.0))
    return np.max(results, axis=0)


@register_metric("Qp", higher_is_better=True, value_range=(0, 1), conventions=("default", "vifb"))
def zhao_phase_congruency(a, b, f, *, convention="default"):
    """Phase-congruency fusion metric Q_P = P_p * P_M * P_m (Zhao, Laganiere & Liu 2007, "Performance
    assessment of combinative pixel-level image fusion based on an absolute feature measurement",
    IJICIC 3(6A), 1433-1447).

    Each factor is the mean over the feature mask (PC_max > 0.1) of the best local correlation (11x11
    Gaussian, C = 1e-4) between F's feature map and that of A, B or their pixel-wise maximum, for phase
    congruency, the maximum moment M and the minimum moment m. Higher is better; about [0, 1].

    Notes
    -----
    Every convention reproduces Zheng Liu's ``metricZhao`` with ``myphasecong3`` (4 scales, 6
    orientations, minimum wavelength 3, mult 2.1, sigma_f .55, k = 2, cut-off .5, g = 10), 0..255 input.
    NaN, with a warning, when an image is constant (its PC moments are 0/0) or when neither source has
    a feature (an empty mask).
    """
    images = [to255(x) for x in (a, b, f)]
    if any(x.min() == x.max() for x in images):
        warn("Qp is NaN: an image is constant (its phase-congruency moments are 0/0, as in Kovesi's code)")
        return float("nan")
    (pc1, big1, small1), (pc2, big2, small2), (pcf, bigf, smallf) = (phase_congruency(x) for x in images)
    first = pc1 > pc2
    m1, m2 = pc1 > FEATURE_THRESHOLD, pc2 > FEATURE_THRESHOLD
    pc_max = np.where(first, pc1, pc2)
    m3 = pc_max > FEATURE_THRESHOLD
    if not m3.any():
        warn(f"Qp is NaN: neither source has a phase-congruency feature (PC > {FEATURE_THRESHOLD})")
        return float("nan")
    result = 1.0
    for f1, f2, ff in ((pc1, pc2, pcf), (big1, big2, bigf), (small1, small2, smallf)):
        result *= _feature_correlation(f1, f2, np.where(first, f1, f2), ff, m1, m2, m3)
    return result
