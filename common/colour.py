"""Colour handling for functional (PET/SPECT) sources, written once for every method.

Fusion runs on the luma Y of the colour source; the result is re-coloured with that source's chroma.
We use ITU-R BT.601 full-range YCbCr (the JPEG/JFIF form) on [0, 1] values:

    Y  =  0.299    R + 0.587    G + 0.114    B
    Cb = -0.168736 R - 0.331264 G + 0.5      B + 0.5
    Cr =  0.5      R - 0.418688 G - 0.081312 B + 0.5

and its exact matrix inverse. Y is the luma that the metric references use
(``floor(0.299 R + 0.587 G + 0.114 B + 0.5)`` on 8-bit values). ``ycbcr_to_rgb`` clips the RGB result to
[0, 1] (a fused Y outside the source's gamut would otherwise leave the cube); nothing is clipped on the
way in. The MATLAB baselines (NSST-PAPCNN ``ConvertRGBtoYUV``) use YUV instead of YCbCr: the same Y, other
chroma axes; re-colouring with either gives the same RGB for the same fused Y up to the clipping.
"""
from __future__ import annotations

import numpy as np

RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114],
                         [-0.168736, -0.331264, 0.5],
                         [0.5, -0.418688, -0.081312]])
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)
_CHROMA_OFFSET = np.array([0.0, 0.5, 0.5])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (H, W, 3) Y, Cb, Cr in [0, 1] (BT.601 full range)."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return (rgb @ RGB_TO_YCBCR.T + _CHROMA_OFFSET).astype(np.float32)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of ``rgb_to_ycbcr``; the result is clipped to [0, 1]."""
    ycc = np.asarray(ycc, dtype=np.float64)
    return np.clip((ycc - _CHROMA_OFFSET) @ YCBCR_TO_RGB.T, 0.0, 1.0).astype(np.float32)


def luma(img: np.ndarray) -> np.ndarray:
    """Y of an RGB image; a grey image is returned as it is."""
    img = np.asarray(img)
    if img.ndim == 2:
        return img.astype(np.float32, copy=False)
    return rgb_to_ycbcr(img)[..., 0]


def recolour(fused_y: np.ndarray, colour_source: np.ndarray) -> np.ndarray:
    """Put a fused Y together with the Cb, Cr of ``colour_source`` (RGB) and return RGB."""
    ycc = rgb_to_ycbcr(colour_source)
    ycc[..., 0] = fused_y
    return ycbcr_to_rgb(ycc)
