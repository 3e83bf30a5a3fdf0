"""NSCT + RPCNN fusion (Das & Kundu 2013): PCNN building blocks and fusion properties."""
import numpy as np
from scipy.ndimage import gaussian_filter

import methods
from methods.nsct_pcnn import fuzzy_linking_strength, modified_spatial_frequency, pcnn_select, rpcnn_fire_counts


def smooth(seed, shape=(64, 64)):
    return gaussian_filter(np.random.default_rng(seed).random(shape), 2).astype(np.float32)


def test_msf_is_zero_on_constants_and_grows_with_activity():
    assert not modified_spatial_frequency(np.full((16, 16), 3.0)).any()
    rng = np.random.default_rng(0)
    weak, strong = rng.standard_normal((32, 32)), 3 * rng.standard_normal((32, 32))
    np.testing.assert_allclose(modified_spatial_frequency(strong) / 3, modified_spatial_frequency(strong / 3))
    assert modified_spatial_frequency(strong).mean() > modified_spatial_frequency(weak).mean()


def test_fuzzy_linking_strength_is_a_membership():
    x = np.zeros((16, 16))
    x[8, 8] = 10.0                                               # an outlier links weakly
    beta = fuzzy_linking_strength(x)
    assert ((beta >= 0) & (beta <= 1)).all()
    assert beta[8, 8] < 0.5 and beta[0, 0] == 1.0


def test_stronger_stimulus_fires_more_often():
    stimulus = np.linspace(0.05, 1.0, 64).reshape(8, 8)
    counts = rpcnn_fire_counts(stimulus, np.zeros_like(stimulus), iterations=100)
    assert counts[-1, -1] > counts[0, 0] and np.all(np.diff(counts.ravel()) >= 0)


def test_pcnn_select_takes_the_active_source():
    rng = np.random.default_rng(1)
    quiet = 0.01 * rng.standard_normal((32, 32))
    busy = rng.standard_normal((32, 32))
    chosen = pcnn_select(quiet, busy, iterations=50)
    assert np.mean(chosen == busy) > 0.9


def test_identical_inputs_return_the_input():
    x = smooth(0)
    np.testing.assert_allclose(methods.fuse(x, x, "nsct_pcnn", iterations=30), x, atol=1e-5)


def test_keeps_the_stronger_texture():
    flat = np.full((64, 64), 0.4, np.float32) + 1e-3 * smooth(1)
    textured = flat.copy()
    textured[16:48, 16:48:2] += 0.4
    fused = methods.fuse(flat, textured, "nsct_pcnn", iterations=50)
    contrast = np.abs(np.diff(fused[24:40, 24:40], axis=1)).mean()
    assert contrast > 0.8 * 0.4
