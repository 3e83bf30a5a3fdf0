"""Pixel-wise reference rules: the floor every fusion method has to clear."""
import numpy as np

from methods.registry import register_method


@register_method("average", citation="Pixel-wise mean of the two sources (baseline rule).")
def average_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel-wise mean, F = (A + B) / 2."""
    return (a + b) * np.float32(0.5)


@register_method("max", citation="Pixel-wise choose-max (baseline rule).")
def max_fusion(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixel-wise choose-max, F = max(A, B)."""
    return np.maximum(a, b)
