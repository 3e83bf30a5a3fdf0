"""Guided filtering fusion (Li, Kang, Hu 2013): guided filter and fusion properties."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import methods
from methods.gff import box_mean, gaussian_kernel, guided_filter


def smooth(seed, shape=(64, 64)):
    return gaussian_filter(np.random.default_rng(seed).random(shape), 2).astype(np.float32)


def test_box_mean_uses_the_window_clipped_to_the_image():
    x = np.arange(25.0).reshape(5, 5)
    m = box_mean(x, 1)
    assert m[2, 2] == pytest.approx(x[1:4, 1:4].mean())
    assert m[0, 0] == pytest.approx(x[:2, :2].mean())


def test_gaussian_kernel_matches_fspecial():
    g = gaussian_kernel(11, 5.0)
    assert g.sum() == pytest.approx(1.0) and g[5, 5] == g.max()
    np.testing.assert_allclose(g, g.T)
    assert g[5, 0] / g[5, 5] == pytest.approx(np.exp(-25 / 50))


def test_guided_filter_preserves_edges_of_the_guide_and_smooths_flat_regions():
    guide = np.zeros((64, 64))
    guide[:, 32:] = 1.0
    noisy = guide + 0.1 * np.random.default_rng(0).standard_normal(guide.shape)
    out = guided_filter(guide, noisy, 4, 1e-3)
    assert out[:, 34:].mean() - out[:, :30].mean() > 0.9          # the step survives
    assert out[:, :28].std() < 0.5 * noisy[:, :28].std()          # the noise does not
    np.testing.assert_allclose(guided_filter(guide, guide, 4, 1e-6), guide, atol=1e-3)


def test_identical_inputs_return_the_input():
    x = smooth(0)
    np.testing.assert_allclose(methods.fuse(x, x, "gff"), x, atol=1e-6)


def test_keeps_the_stronger_texture():
    flat = np.full((96, 96), 0.4, np.float32) + 1e-3 * smooth(1, (96, 96))
    textured = flat.copy()
    textured[24:72, 24:72:2] += 0.4
    fused = methods.fuse(flat, textured, "gff")
    contrast = np.abs(np.diff(fused[36:60, 36:60], axis=1)).mean()
    assert contrast > 0.8 * 0.4                                   # averaging would give 0.2


def test_output_is_a_convex_combination_per_scale():
    a, b = smooth(2), smooth(3)
    fused = methods.fuse(a, b, "gff")
    assert fused.shape == a.shape and np.isfinite(fused).all()
    lo, hi = np.minimum(a, b).min(), np.maximum(a, b).max()
    assert lo - 0.05 <= fused.min() and fused.max() <= hi + 0.05
