"""Independent oracles that need no ../shared: scikit-image, scipy and hand-derived values.

The reference-vector tests (tests/test_metrics_reference.py) compare with the published codes but skip
without ../shared; these run in every clone.
"""
import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

import metrics
from bench.phantom import phantom_pair
from methods.densegan.losses import ssim as ssim_loss_ssim


@pytest.fixture(scope="module")
def triple():
    a, b = (x.astype(np.float64) for x in phantom_pair("CT", "MR-T2", 0, size=96))
    f = np.clip(0.6 * a + 0.4 * b + 0.02 * np.random.default_rng(0).standard_normal(a.shape), 0, 1)
    return a, b, np.round(f * 255) / 255           # an 8-bit fused image, as read from a PNG


def wang(x, y, data_range):
    """Wang et al. 2004 SSIM as scikit-image computes it with the paper's settings."""
    return structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range)


def test_ssim_is_the_mean_of_wang_ssims(triple):
    a, b, f = triple
    expected = (wang(a * 255, f * 255, 255) + wang(b * 255, f * 255, 255)) / 2
    assert metrics.compute(a, b, f, names=["SSIM"])["SSIM"] == pytest.approx(expected, abs=1e-6)


def test_mse_and_psnr_against_scikit_image(triple):
    a, b, f = triple
    mse = (mean_squared_error(a * 255, f * 255) + mean_squared_error(b * 255, f * 255)) / 2
    got = metrics.compute(a, b, f, names=["MSE", "PSNR"])
    assert got["MSE"] == pytest.approx(mse, rel=1e-9)
    assert got["PSNR"] == pytest.approx(10 * np.log10(255 ** 2 / mse), rel=1e-9)
    # one source only: PSNR(A, F) is scikit-image's
    assert metrics.compute(a, a, f, names=["PSNR"])["PSNR"] == pytest.approx(
        peak_signal_noise_ratio(a * 255, f * 255, data_range=255), rel=1e-9)


def test_entropy_against_scipy(triple):
    _, _, f = triple
    counts = np.bincount(np.round(f * 255).astype(int).ravel(), minlength=256)
    assert metrics.compute(f, f, f, names=["EN"])["EN"] == pytest.approx(scipy.stats.entropy(counts, base=2), abs=1e-9)


def test_hand_derived_values():
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)      # 0/1 checkerboard
    flat = np.full((8, 8), 0.5)
    got = metrics.compute(flat, flat, checker, names=["EN", "SD", "SF", "MSE"])
    assert got["EN"] == pytest.approx(1.0)                           # two equally likely levels
    assert got["SD"] == pytest.approx(127.5)                          # population std of {0, 255}
    # every horizontal and vertical neighbour differs by 255: RF = CF = 255 (means over the differences)
    assert got["SF"] == pytest.approx(255 * np.sqrt(2), rel=1e-6)
    assert got["MSE"] == pytest.approx(127.5 ** 2)


def test_gan_ssim_loss_matches_scikit_image(triple):
    a, _, f = triple
    ours = float(ssim_loss_ssim(torch.from_numpy(a)[None, None], torch.from_numpy(f)[None, None]))
    assert ours == pytest.approx(wang(a, f, 1.0), abs=1e-6)
