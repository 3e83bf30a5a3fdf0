"""Discrete wavelet transform fusion.

H. Li, B. S. Manjunath, S. K. Mitra, "Multisensor image fusion using the wavelet transform",
Graphical Models and Image Processing 57(3):235-245, 1995.
"""
import numpy as np
import pywt

from methods.registry import register_method


@register_method("dwt", citation="H. Li, B. S. Manjunath, S. K. Mitra, Graph. Models Image Process. 57(3):235-245, 1995")
def dwt_fusion(a: np.ndarray, b: np.ndarray, *, wavelet: str = "db1", level: int = 4,
               mode: str = "periodization") -> np.ndarray:
    """DWT fusion: average the approximation band, keep the larger-magnitude detail coefficient."""
    ca = pywt.wavedec2(a.astype(np.float64), wavelet, mode=mode, level=level)
    cb = pywt.wavedec2(b.astype(np.float64), wavelet, mode=mode, level=level)
    fused = [(ca[0] + cb[0]) / 2]
    for da, db in zip(ca[1:], cb[1:]):
        fused.append(tuple(np.where(np.abs(x) >= np.abs(y), x, y) for x, y in zip(da, db)))
    out = pywt.waverec2(fused, wavelet, mode=mode)
    return out[: a.shape[0], : a.shape[1]].astype(np.float32)
