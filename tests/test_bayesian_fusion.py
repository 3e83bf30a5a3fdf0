"""Hierarchical Bayesian fusion (Zhao et al. 2020): E-step moments, TV h-step, fusion behaviour."""
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.ndimage import gaussian_filter

import methods
from methods.bayesian_fusion import _gradients, laplace_mixture_moments, tv_h_step


@pytest.mark.parametrize("r, tau", [(0.3, 1.0), (0.05, 0.2), (1.7, 3.0)])
def test_e_step_moments_are_the_posterior_expectations_of_the_mixing_variance(r, tau):
    # r | a ~ N(0, a), a ~ Exp(mean tau): integrate the posterior numerically
    joint = lambda a: np.exp(-r * r / (2 * a) - a / tau) / np.sqrt(a)  # noqa: E731
    z = quad(joint, 0, np.inf)[0]
    inverse = quad(lambda a: joint(a) / a, 0, np.inf)[0] / z
    mean = quad(lambda a: joint(a) * a, 0, np.inf)[0] / z
    got_inverse, got_mean = laplace_mixture_moments(np.array(r), tau)
    assert got_inverse == pytest.approx(inverse, rel=1e-6)
    assert got_mean == pytest.approx(mean, rel=1e-5)


def test_h_step_solves_its_normal_equations_with_the_g_step_differences():
    rng = np.random.default_rng(0)
    x, gx, gy = (rng.standard_normal((20, 24)) for _ in range(3))
    h = tv_h_step(x, gx, gy)
    dx, dy = _gradients(h, "paper")
    # (I + D'D) h = x + D'g, with D' the adjoint of the circular forward difference
    adjoint = lambda px, py: (np.roll(px, 1, axis=1) - px) + (np.roll(py, 1, axis=0) - py)  # noqa: E731
    np.testing.assert_allclose(h + adjoint(dx - gx, dy - gy), x, atol=1e-12)


def test_identical_sources_return_the_source():
    x = gaussian_filter(np.random.default_rng(1).random((40, 40)), 2).astype(np.float32)
    np.testing.assert_array_equal(methods.fuse(x, x, "bayesian_fusion"), x)


def test_fused_image_keeps_the_texture_source_edges_and_the_intensity_source_blob():
    yy, xx = np.mgrid[:64, :64]
    intensity = 0.2 + 0.6 * np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / (2 * 8.0 ** 2))   # smooth bright blob
    texture = 0.3 + 0.2 * ((xx // 4) % 2)                                                  # sharp stripes
    fused = methods.fuse(intensity.astype(np.float32), texture.astype(np.float32), "bayesian_fusion")
    edges = lambda img: np.diff(img, axis=1).ravel()  # noqa: E731
    assert np.corrcoef(edges(fused), edges(texture))[0, 1] > 0.9
    blob = (yy - 32) ** 2 + (xx - 32) ** 2 < 16
    far = (yy - 32) ** 2 + (xx - 32) ** 2 > 28 ** 2
    # the blob lifts the fused image where the texture source has none (0.13 of the 0.42 gap), and
    # the fused image is darker than the texture source far from it, where the intensity source is 0.2
    assert fused[blob].mean() - texture[blob].mean() > 0.1
    assert fused[far].mean() < texture[far].mean()
