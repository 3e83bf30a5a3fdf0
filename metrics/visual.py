"""Human-visual-system metrics: VIF (Sheikh & Bovik pixel-domain VIF), Qcb (Chen & Blum), Qcv (Chen & Varshney)."""
from __future__ import annotations

import numpy as np

from metrics._filters import (block_reduce, filter2, filter_separable, freqspace_grid,
                              sobel, stretch_levels, to255, warn)
from metrics._shared import shared
from metrics.registry import register_metric

VIF_NOISE_VAR = 2.0  # sigma_n^2 of the HVS noise model (Sheikh & Bovik 2006, vifp_mscale.m)
VIF_EPS = 1e-10


def _vif_windows():
    """Scale s = 1..4: N = 2^(5-s) + 1 (17, 9, 5, 3), Gaussian sigma N / 5, as 1-D factors."""
    out = []
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        coords = np.arange(n) - (n - 1) / 2
        g = np.exp(-(coords ** 2) / (2 * (n / 5.0) ** 2))
        out.append(g / g.sum())
    return out


VIF_WINDOWS = _vif_windows()


def vif_pyramid(x):
    """Per scale: (image, local mean, local variance) of Sheikh & Bovik's 4-scale pyramid ('valid'
    Gaussian filtering, then 2x down-sampling with the next scale's window). A source or the fused
    image is analysed once and paired with the other images' pyramids by ``vif_channel_maps``."""
    levels = []
    for scale, g in enumerate(VIF_WINDOWS, start=1):
        if scale > 1:
            x = filter_separable(x, g)[::2, ::2]
        mean = filter_separable(x, g)
        levels.append((x, mean, filter_separable(x * x, g) - mean * mean))
    return levels


def vif_channel_maps(ref, dist):
    """Per scale s = 1..4, the maps (g, sigma_ref^2, sigma_v^2) of Sheikh & Bovik's ``vifp_mscale``:
    the gain and noise variance of the channel dist = g ref + v, with the code's clamps (flat reference
    -> g = 0 and sigma_v^2 = sigma_dist^2; flat dist -> g = sigma_v^2 = 0; g < 0 -> g = 0 and
    sigma_v^2 = sigma_dist^2; sigma_v^2 >= 1e-10). Shared by VIF and Han's VIFF.

    ``ref`` and ``dist`` are images or their ``vif_pyramid`` (pass a pyramid to reuse it)."""
    ref_levels = ref if isinstance(ref, list) else vif_pyramid(ref)
    dist_levels = dist if isinstance(dist, list) else vif_pyramid(dist)
    out = []
    for g, (r, mu1, s1), (d, mu2, s2) in zip(VIF_WINDOWS, ref_levels, dist_levels):
        s12 = filter_separable(r * d, g) - mu1 * mu2
        s1, s2 = np.maximum(s1, 0), np.maximum(s2, 0)
        gain = s12 / (s1 + VIF_EPS)
        sv = s2 - gain * s12
        flat_ref = s1 < VIF_EPS
        gain = np.where(flat_ref, 0, gain)
        sv = np.where(flat_ref, s2, sv)
        s1 = np.where(flat_ref, 0, s1)
        flat_dist = s2 < VIF_EPS
        gain = np.where(flat_dist, 0, gain)
        sv = np.where(flat_dist, 0, sv)
        negative = gain < 0
        sv = np.where(negative, s2, sv)
        gain = np.where(negative, 0, gain)
        out.append((gain, s1, np.maximum(sv, VIF_EPS)))
    return out


def _information_maps(gain, s1, sv, noise_var):
    """Eq. (8)-(9) of Sheikh & Bovik 2006 per pixel: information F carries about the reference
    log10(1 + g^2 s1 / (sv + n)), and the reference's own log10(1 + s1 / n)."""
    return np.log10(1 + gain * gain * s1 / (sv + noise_var)), np.log10(1 + s1 / noise_var)


def _source_channel_maps(a, b, f):
    """``vif_channel_maps`` of A -> F and B -> F on the 0..255 scale, built once per ``compute`` call
    for VIF and VIFF (F's pyramid once for both sources)."""
    def build(x, y, z):
        fused = vif_pyramid(z)
        return [vif_channel_maps(vif_pyramid(source), fused) for source in (x, y)]
    return shared("vif_channel_maps", build, to255(a), to255(b), to255(f))


def vif_pixel_multiscale(maps):
    """Sheikh & Bovik's ``vifp_mscale``: sum over 4 scales of the information F keeps about the
    reference, over the information in the reference (eq. 10 of the paper, pixel-domain version), from
    the channel maps ``vif_channel_maps(ref, dist)``."""
    num = den = 0.0
    for gain, s1, sv in maps:
        kept, own = _information_maps(gain, s1, sv, VIF_NOISE_VAR)
        num += kept.sum()
        den += own.sum()
    with np.errstate(invalid="ignore"):
        value = num / den
    return 1.0 if np.isnan(value) else float(value)


@register_metric("VIF", higher_is_better=True, value_range=(0, np.inf), conventions=("default", "cddfuse"))
def visual_information_fidelity(a, b, f, *, convention="default"):
    """Visual information fidelity VIF(A, F) + VIF(B, F), pixel-domain multiscale form.

    Sheikh & Bovik 2006, "Image information and visual quality", IEEE TIP 15(2), 430-444 (``vifp_mscale``:
    sigma_n^2 = 2, 4 scales with Gaussian windows N = 17, 9, 5, 3, sigma = N/5, 'valid' filtering and
    2x down-sampling). Higher is better; usually in [0, 2] (1 per source when F equals it; contrast
    enhancement can exceed it).

    Notes
    -----
    Every convention reproduces CDDFuse's ``Evaluator.VIFF`` (also Tang's ``VIF``): the SUM over the two
    sources, each 0/0 (flat source) taken as 1. Despite CDDFuse's name this is NOT Han et al. 2013's VIFF.
    """
    maps_a, maps_b = _source_channel_maps(a, b, f)
    return vif_pixel_multiscale(maps_a) + vif_pixel_multiscale(maps_b)


# ---------------------------------------------------------------------------------------- VIFF
VIFF_NOISE_VAR = 0.005 * 255 * 255          # Han et al.: visual noise sigma_n^2 (VIFF_Public.m, sq)
VIFF_C = 1e-7                               # added to every pixel's information before summing
VIFF_SCALE_WEIGHTS = np.array([1.0, 0.0, 0.15, 1.0]) / 2.15  # p in VIFF_Public.m


@register_metric("VIFF", higher_is_better=True, value_range=(0, np.inf), conventions=("default",))
def visual_information_fidelity_fusion(a, b, f, *, convention="default"):
    """VIFF, Han et al.'s visual-information-fidelity fusion metric (not CDDFuse's "VIFF", which is VIF).

    Han, Cai, Cao & Xu 2013, "A new image fusion performance metric based on visual information
    fidelity", Information Fusion 14(2), 127-135. Per scale k (Sheikh & Bovik's 4-scale Gaussian
    pyramid, N = 17, 9, 5, 3): the channel of each source X to F gives per-pixel kept information
    VID_X = log10(1 + g^2 s_X^2 / (s_v^2 + n)) and own information VIND_X = log10(1 + s_X^2 / n), n = 0.005
    * 255^2; each pixel takes both from the source with the SMALLER gain g (the one F preserves
    worse, so F = A with an unrelated B scores low); VIFF_k = sum(VID + C) /
    sum(VIND + C), C = 1e-7; VIFF = sum_k p_k VIFF_k with p = (1, 0, 0.15, 1) / 2.15. Higher is
    better; 1 when F = A = B (up to 1e-10), above 1 possible for contrast-enhanced F.

    Notes
    -----
    Port of the authors' ``VIFF_Public.m`` (its constants, its choice of the smaller-gain source and
    its weights; the paper's scale-2 weight 0 included). Grey images on the 0..255 scale; the code's
    L*a*b* path for colour input is not needed (``compute`` passes luma). No reference vector exists;
    tested by properties (identity 1, symmetry, falls with noise and blur).
    """
    maps_a, maps_b = _source_channel_maps(a, b, f)
    value = 0.0
    for weight, (ga, sa, va), (gb, sb, vb) in zip(VIFF_SCALE_WEIGHTS, maps_a, maps_b):
        kept_a, own_a = _information_maps(ga, sa, va, VIFF_NOISE_VAR)
        kept_b, own_b = _information_maps(gb, sb, vb, VIFF_NOISE_VAR)
        from_a = ga < gb
        kept = np.where(from_a, kept_a, kept_b)
        own = np.where(from_a, own_a, own_b)
        value += weight * (kept + VIFF_C).sum() / (own + VIFF_C).sum()
    return float(value)


# ------------------------------------------------------------------------------------ Chen-Blum
CB_F0, CB_F1, CB_A = 15.3870, 1.3456, 0.7622  # DoG contrast sensitivity (Chen & Blum 2009, eq. 8)
CB_K, CB_H, CB_P, CB_Q, CB_Z = 1.0, 1.0, 3.0, 2.0, 1e-4  # masking (eq. 11)


def _unnormalised_gaussian(sigma):
    x = np.arange(-15, 16, dtype=np.float64)
    g = np.exp(-x * x / (2 * sigma * sigma))
    return g / np.sqrt(2 * np.pi * sigma * sigma)  # outer(g, g) = exp(-r^2/2s^2) / (2 pi s^2), 31x31


CB_G1, CB_G2 = _unnormalised_gaussian(2.0), _unnormalised_gaussian(4.0)


def _complex_filter(x, g):
    return filter_separable(x.real, g, "same") + 1j * filter_separable(x.imag, g, "same")


def _masked_contrast(filtered):
    contrast = np.abs(_complex_filter(filtered, CB_G1) / _complex_filter(filtered, CB_G2) - 1)
    return CB_K * contrast ** CB_P / (CB_H * contrast ** CB_Q + CB_Z)


@register_metric("Qcb", higher_is_better=True, value_range=(0, 1), conventions=("default", "vifb"))
def chen_blum(a, b, f, *, convention="default"):
    """Chen-Blum perceptual fusion metric Q_CB (Chen & Blum 2009, "A new automated quality assessment
    algorithm for image fusion", Image Vis. Comput. 27, 1421-1432).

    CSF filtering (DoG, f0 = 15.387, f1 = 1.3456, a = .7622), local band-limited contrast
    G(2) * I / G(4) * I - 1, masked contrast C^3 / (C^2 + 1e-4), per-pixel preservation min(C_X, C_F) /
    max(C_X, C_F), saliency weights C_X^2 / (C_A^2 + C_B^2); mean of the quality map. Higher is better.

    Notes
    -----
    Every convention reproduces VIFB ``metricsQcb`` = Zheng Liu ``metricChenBlum`` (``vifb.Qcb``): images
    min-max stretched to 0..255 (``normalize1``), the CSF evaluated on MATLAB's ``freqspace`` grid scaled
    by (cols/30, rows/30), 31x31 unnormalised Gaussians, complex filtering kept as MATLAB does.
    Agreement is about 1e-8 on CT-MRI and SPECT-MRI, but only about 1e-2 on the PET-MRI triples.

    The PET-MRI difference is FFT rounding noise, not a convention: Q_CB is ill-conditioned on an image
    with a large black area. Far from any content the CSF-filtered image (FFT, multiply, inverse FFT) is
    smaller than the FFT's rounding residue (~1e-14, real and imaginary), so the residue is what is left
    there. The local contrast G(2) * I / G(4) * I - 1 of that residue is a ratio of noise of order
    one, and it enters the quality map through the saliency weights. The PET image (86% black) has 22% of
    its pixels in that state (|G(4) * I| < 1e-9), against at most 2% for the other vectors' sources.
    Changing only the FFT code (numpy vs scipy.fft, or a real vs complex transform) moves Q_CB on the
    PET triples by about 1e-3 and on the others by < 5e-7; Octave's FFTW rounds differently again. Ruled out: RGB-to-grey
    conversion (the vectors are single-channel PNGs, the same for every suite), image size (all 256x256),
    ``normalize1`` (max(A) = 226 is stretched and rounded exactly as MATLAB; SPECT's max 131 matches to
    1e-8) and the filtering (a direct port with ``scipy.signal.convolve2d`` agrees with this code to 3e-5
    on PET, 1e-8 elsewhere).

    A constant image (after the stretch: all zero) has local contrast 0/0 everywhere: NaN, with a
    warning (MATLAB's ``normalize1`` already gives NaN there).
    """
    return chen_blum_from_levels(*(stretch_levels(to255(x)) for x in (a, b, f)))


def chen_blum_from_levels(im_a, im_b, im_f, fft2=np.fft.fft2, ifft2=np.fft.ifft2):
    """Q_CB of three ``normalize1``-stretched 0..255 images; ``fft2`` / ``ifft2`` are replaceable so
    that tests can show how much the value depends on the FFT's rounding noise (see ``chen_blum``)."""
    if any(x.min() == x.max() for x in (im_a, im_b, im_f)):
        warn("Qcb is NaN: an image is constant (its local contrast is 0/0 everywhere)")
        return float("nan")
    u, v = freqspace_grid(im_a.shape)
    rows, cols = im_a.shape
    r = np.hypot(u * cols / 30, v * rows / 30)
    csf = np.exp(-(r / CB_F0) ** 2) - CB_A * np.exp(-(r / CB_F1) ** 2)
    transfer = np.fft.ifftshift(csf)
    c_a, c_b, c_f = (_masked_contrast(ifft2(fft2(x) * transfer)) for x in (im_a, im_b, im_f))
    with np.errstate(divide="ignore", invalid="ignore"):
        q_af = np.where(c_a < c_f, c_a / c_f, c_f / c_a)
        q_bf = np.where(c_b < c_f, c_b / c_f, c_f / c_b)
        lam_a = c_a * c_a / (c_a * c_a + c_b * c_b)
        lam_b = c_b * c_b / (c_a * c_a + c_b * c_b)
    return float((lam_a * q_af + lam_b * q_bf).mean())


# -------------------------------------------------------------------------------- Chen-Varshney
CV_BLOCK, CV_ALPHA = 16, 5


@register_metric("Qcv", higher_is_better=False, value_range=(0, np.inf), conventions=("default", "vifb"))
def chen_varshney(a, b, f, *, convention="default"):
    """Chen-Varshney human-perception fusion metric Q_CV (Chen & Varshney 2007, "A human perception
    inspired quality metric for image fusion based on regional information", Inf. Fusion 8, 193-207).

    Q = sum_blocks (lam_A D(A, F) + lam_B D(B, F)) / sum_blocks (lam_A + lam_B): 16x16 blocks, saliency
    lam_X = sum of Sobel magnitude^5 over the block, D = mean squared CSF-filtered difference (Mannos-
    Sakrison CSF). LOWER is better; values are in the hundreds or thousands (0 when F = A = B).

    Notes
    -----
    Every convention reproduces VIFB ``metricsQcv`` = Zheng Liu ``metricChen`` (``vifb.Qcv``):
    ``normalize1`` stretch, zero-padded 'same' Sobel, CSF on the ``freqspace`` grid x (cols/8, rows/8),
    partial blocks zero-padded (``blkproc``). The complex rounding residue is dropped (real part, as MATLAB).
    Sources without a single edge (both all black: the zero-padded Sobel sees the border of any other
    constant) give 0/0: NaN, with a warning.
    """
    im_a, im_b, im_f = (stretch_levels(to255(x)) for x in (a, b, f))

    def saliency(x):
        gx, gy = sobel(x, mode="constant")
        return block_reduce(np.hypot(gx, gy) ** CV_ALPHA, CV_BLOCK, lambda t: t.sum(axis=(1, 3)))

    rows, cols = im_a.shape
    u, v = freqspace_grid(im_a.shape)
    r = np.hypot(u * cols / 8, v * rows / 8)
    csf = 2.6 * (0.0192 + 0.144 * r) * np.exp(-(0.144 * r) ** 1.1)
    transfer = np.fft.ifftshift(csf)

    def distortion(x):
        d = np.fft.ifft2(np.fft.fft2(x - im_f) * transfer)
        return block_reduce(d * d, CV_BLOCK, lambda t: t.mean(axis=(1, 3)))

    lam_a, lam_b = saliency(im_a), saliency(im_b)
    total_saliency = (lam_a + lam_b).sum()
    if total_saliency == 0:
        warn("Qcv is NaN: neither source has an edge (0/0 saliency weights)")
        return float("nan")
    q = (lam_a * distortion(im_a) + lam_b * distortion(im_b)).sum() / total_saliency
    return float(q.real)
