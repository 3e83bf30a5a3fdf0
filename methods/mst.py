"""Multi-scale-transform (MST) fusion and its MST + sparse-representation (MST-SR) variants.

Every method here follows the authors' MATLAB code of the MST-SR fusion toolbox (Y. Liu,
yuliu316316/MST-SR-Fusion-Toolbox @ 6885bcd), which reuses O. Rockinger's toolbox for the pyramids:

* low-pass band: mean of the two sources (``selb(., ., 3)``); the ``*_sr`` variants fuse it instead
  with ``sparse_fusion`` (Yang & Li 2010) -- the framework of Liu, Liu, Wang 2015;
* every band-pass / directional sub-band: ``selc(., ., 3)`` -- choose the larger local (3x3) max of
  |coefficient| with a 3x3 majority consistency check (Li et al. 1995); ties go to B.

Scale: the authors feed ``double(uint8)`` images on 0..255. These methods take [0, 1] images and
work on ``input_scale * x`` (default 255), then divide the result back. Only two steps are not
scale-free: the ratio pyramid's ``eps = 1e-6`` and OMP's absolute ``epsilon = 0.1``; with the default
``input_scale`` both act exactly as in the authors' code.

References
----------
Y. Liu, S. Liu, Z. Wang, "A general framework for image fusion based on multi-scale transform and
sparse representation", Inf. Fusion 24:147-164, 2015.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from methods.registry import between, each, one_of, register_method
from methods.sr import INPUT_SCALE, SR_ALLOWED, load_dictionary, sparse_fusion, to_input_scale
from methods.transforms import pyramid
from methods.transforms.dtcwt import DTCWTPyramid, dtcwt_decompose, dtcwt_reconstruct
from methods.transforms.dwt import WaveletPyramid, dwt_decompose, dwt_reconstruct
from methods.transforms.nsct import NSCTCoefficients, nsct_decompose, nsct_reconstruct
from methods.transforms.rules import average, select_max_abs_consistent

LIU_2015 = ("Y. Liu, S. Liu, Z. Wang, \"A general framework for image fusion based on multi-scale transform "
            "and sparse representation\", Inf. Fusion 24:147-164, 2015")

LowpassRule = Callable[[np.ndarray, np.ndarray], np.ndarray]

# pyramid and wavelet levels: 10 halvings take a 1024-pixel side down to one pixel
LEVEL_ALLOWED = {"level": between(1, 10)}
LEVEL_SR_ALLOWED = {**LEVEL_ALLOWED, **SR_ALLOWED}


def _discrete_wavelets() -> list[str]:
    import pywt
    return pywt.wavelist(kind="discrete")


WAVELET_ALLOWED = {"wavelet": one_of(_discrete_wavelets)}
# NSCT directional levels: 2**k directions per pyramid level, the toolbox's filters up to k = 5
NSCT_ALLOWED = {"levels": each(between(0, 5))}


def _lowpass_rule(dictionary: str | None, overlap: int, epsilon: float) -> LowpassRule:
    d = load_dictionary(dictionary)
    return lambda low_a, low_b: sparse_fusion(low_a, low_b, d, overlap, epsilon)


def fuse_on_input_scale(fuse_scaled: Callable[[np.ndarray, np.ndarray], np.ndarray], a, b, input_scale: float) -> np.ndarray:
    """Run ``fuse_scaled`` on ``input_scale * a``, ``input_scale * b`` (the authors' 0..255) and scale back."""
    fused = fuse_scaled(to_input_scale(a, input_scale), to_input_scale(b, input_scale))
    return (fused / input_scale).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# pyramids
# ----------------------------------------------------------------------------------------------

def pyramid_fuse(a, b, levels: int, *, ratio: bool, lowpass_rule: LowpassRule = average) -> np.ndarray:
    """``lp_fuse`` / ``rp_fuse`` (and ``*_sr_fuse`` with ``lowpass_rule = sparse_fusion``)."""
    decompose = pyramid.ratio_pyramid if ratio else pyramid.laplacian_pyramid
    reconstruct = pyramid.ratio_reconstruct if ratio else pyramid.laplacian_reconstruct
    pa, pb = decompose(a, levels), decompose(b, levels)
    details = [select_max_abs_consistent(da, db) for da, db in zip(pa.details, pb.details)]
    return reconstruct(pyramid.Pyramid(details, lowpass_rule(pa.base, pb.base), pa.sizes))


@register_method("lp", citation="P. J. Burt, E. H. Adelson, IEEE Trans. Commun. 31(4):532-540, 1983 "
                                "(fusion code: O. Rockinger's toolbox, as in the MST-SR toolbox)",
                 allowed=LEVEL_ALLOWED)
def lp_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 4, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """Laplacian-pyramid fusion (``lp_fuse(A, B, 4, 3, 3)``): mean base, consistent max-abs details."""
    return fuse_on_input_scale(lambda x, y: pyramid_fuse(x, y, level, ratio=False), a, b, input_scale)


@register_method("rp", citation="A. Toet, \"Image fusion by a ratio of low-pass pyramid\", Pattern Recognit. "
                                "Lett. 9(4):245-253, 1989", allowed=LEVEL_ALLOWED)
def rp_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 4, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """Ratio-of-low-pass pyramid fusion (``rp_fuse(A, B, 4, 3, 3)``)."""
    return fuse_on_input_scale(lambda x, y: pyramid_fuse(x, y, level, ratio=True), a, b, input_scale)


@register_method("lp_sr", citation=LIU_2015, allowed=LEVEL_SR_ALLOWED)
def lp_sr_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 4, dictionary: str | None = None,
                 overlap: int = 6, epsilon: float = 0.1, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """LP-SR (``lp_sr_fuse(A, B, 4, 3, 3, D, 6, 0.1)``): Laplacian pyramid, SR-fused base."""
    rule = _lowpass_rule(dictionary, overlap, epsilon)
    return fuse_on_input_scale(lambda x, y: pyramid_fuse(x, y, level, ratio=False, lowpass_rule=rule), a, b, input_scale)


@register_method("rp_sr", citation=LIU_2015, allowed=LEVEL_SR_ALLOWED)
def rp_sr_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 4, dictionary: str | None = None,
                 overlap: int = 6, epsilon: float = 0.1, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """RP-SR (``rp_sr_fuse(A, B, 4, 3, 3, D, 6, 0.1)``): ratio pyramid, SR-fused base."""
    rule = _lowpass_rule(dictionary, overlap, epsilon)
    return fuse_on_input_scale(lambda x, y: pyramid_fuse(x, y, level, ratio=True, lowpass_rule=rule), a, b, input_scale)


# ----------------------------------------------------------------------------------------------
# DWT
# ----------------------------------------------------------------------------------------------

def dwt_fuse(a, b, levels: int, wavelet: str = "db1", lowpass_rule: LowpassRule = average) -> np.ndarray:
    """``dwt_fuse`` / ``dwt_sr_fuse``: periodic DWT, low-pass rule, ``selc`` on every detail band."""
    pa, pb = dwt_decompose(a, levels, wavelet), dwt_decompose(b, levels, wavelet)
    details = [tuple(select_max_abs_consistent(x, y) for x, y in zip(bands_a, bands_b))
               for bands_a, bands_b in zip(pa.details, pb.details)]
    return dwt_reconstruct(WaveletPyramid(details, lowpass_rule(pa.base, pb.base), pa.sizes), wavelet)


@register_method("dwt", citation="H. Li, B. S. Manjunath, S. K. Mitra, Graph. Models Image Process. 57(3):235-245, 1995",
                 allowed={**LEVEL_ALLOWED, **WAVELET_ALLOWED})
def dwt_fusion(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db1", level: int = 4,
               input_scale: float = INPUT_SCALE) -> np.ndarray:
    """DWT fusion (``dwt_fuse(A, B, 4)``: db1, periodic): mean approximation, consistent max-abs details."""
    return fuse_on_input_scale(lambda x, y: dwt_fuse(x, y, level, wavelet), a, b, input_scale)


@register_method("dwt_sr", citation=LIU_2015, allowed={**LEVEL_SR_ALLOWED, **WAVELET_ALLOWED})
def dwt_sr_fusion(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db1", level: int = 4,
                  dictionary: str | None = None, overlap: int = 6, epsilon: float = 0.1,
                  input_scale: float = INPUT_SCALE) -> np.ndarray:
    """DWT-SR (``dwt_sr_fuse(A, B, 4, D, 6, 0.1)``): DWT, SR-fused approximation band."""
    rule = _lowpass_rule(dictionary, overlap, epsilon)
    return fuse_on_input_scale(lambda x, y: dwt_fuse(x, y, level, wavelet, rule), a, b, input_scale)


# ----------------------------------------------------------------------------------------------
# DTCWT
# ----------------------------------------------------------------------------------------------

def dtcwt_fuse(a, b, levels: int, lowpass_rule: LowpassRule = average) -> np.ndarray:
    """``dtcwt_fuse`` / ``dtcwt_sr_fuse``: ``dtwavexfm2(., levels, 'legall', 'qshift_06')``, low-pass
    rule on ``Yl``, ``selc`` on the modulus of each of the six complex sub-bands per level."""
    pa, pb = dtcwt_decompose(a, levels), dtcwt_decompose(b, levels)
    highpasses = [np.stack([select_max_abs_consistent(ha[..., k], hb[..., k]) for k in range(ha.shape[-1])], axis=-1)
                  for ha, hb in zip(pa.highpasses, pb.highpasses)]
    return dtcwt_reconstruct(DTCWTPyramid(highpasses, lowpass_rule(pa.low, pb.low), pa.shape))


@register_method("dtcwt", citation="J. J. Lewis, R. J. O'Callaghan, S. G. Nikolov, D. R. Bull, N. Canagarajah, "
                                   "\"Pixel- and region-based image fusion with complex wavelets\", Inf. Fusion "
                                   "8(2):119-130, 2007", allowed=LEVEL_ALLOWED)
def dtcwt_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 4, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """DTCWT fusion (``dtcwt_fuse(A, B, 4)``, LeGall + qshift_06): mean low-pass, consistent max-|z|."""
    return fuse_on_input_scale(lambda x, y: dtcwt_fuse(x, y, level), a, b, input_scale)


@register_method("dtcwt_sr", citation=LIU_2015, allowed=LEVEL_SR_ALLOWED)
def dtcwt_sr_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 4, dictionary: str | None = None,
                    overlap: int = 6, epsilon: float = 0.1, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """DTCWT-SR (``dtcwt_sr_fuse(A, B, 4, D, 6, 0.1)``): DTCWT, SR-fused low-pass."""
    rule = _lowpass_rule(dictionary, overlap, epsilon)
    return fuse_on_input_scale(lambda x, y: dtcwt_fuse(x, y, level, rule), a, b, input_scale)


# ----------------------------------------------------------------------------------------------
# NSCT
# ----------------------------------------------------------------------------------------------

NSCT_LEVELS = (2, 3, 3, 4)


def nsct_fuse(a, b, levels=NSCT_LEVELS, lowpass_rule: LowpassRule = average) -> np.ndarray:
    """``nsct_fuse`` / ``nsct_sr_fuse``: ``nsctdec(., levels, 'vk', 'pyrexc')``, low-pass rule,
    ``selc`` on every directional sub-band (B by default, A where the 3x3 majority says A)."""
    ca, cb = nsct_decompose(a, levels), nsct_decompose(b, levels)
    bands = [[select_max_abs_consistent(x, y) for x, y in zip(level_a, level_b)]
             for level_a, level_b in zip(ca.bands, cb.bands)]
    return nsct_reconstruct(NSCTCoefficients(lowpass_rule(ca.low, cb.low), bands))


def parse_levels(levels) -> tuple[int, ...]:
    """NSCT directional levels from a tuple or a "2,3,3,4" string (command-line parameters)."""
    return tuple(int(v) for v in (levels.split(",") if isinstance(levels, str) else levels))


@register_method("nsct", citation="Q. Zhang, B. Guo, \"Multifocus image fusion using the nonsubsampled contourlet "
                                  "transform\", Signal Process. 89(7):1334-1346, 2009 (NSCT: A. L. da Cunha, "
                                  "J. Zhou, M. N. Do, IEEE TIP 15(10):3089-3101, 2006)",
                 allowed=NSCT_ALLOWED)
def nsct_fusion(a: np.ndarray, b: np.ndarray, *, levels: tuple = NSCT_LEVELS,
                input_scale: float = INPUT_SCALE) -> np.ndarray:
    """NSCT fusion (``nsct_fuse(A, B, [2 3 3 4])``, 'pyrexc' + 'vk'): mean low-pass, consistent max-abs."""
    return fuse_on_input_scale(lambda x, y: nsct_fuse(x, y, parse_levels(levels)), a, b, input_scale)


@register_method("nsct_sr", citation=LIU_2015, allowed={**NSCT_ALLOWED, **SR_ALLOWED})
def nsct_sr_fusion(a: np.ndarray, b: np.ndarray, *, levels: tuple = NSCT_LEVELS, dictionary: str | None = None,
                   overlap: int = 6, epsilon: float = 0.1, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """NSCT-SR (``nsct_sr_fuse(A, B, [2 3 3 4], D, 6, 0.1)``): NSCT, SR-fused (full-size) low-pass."""
    rule = _lowpass_rule(dictionary, overlap, epsilon)
    return fuse_on_input_scale(lambda x, y: nsct_fuse(x, y, parse_levels(levels), rule), a, b, input_scale)
