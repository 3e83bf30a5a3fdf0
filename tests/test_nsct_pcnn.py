"""NSCT + RPCNN fusion (Das & Kundu 2013): PCNN building blocks and fusion properties."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, uniform_filter

import methods
from methods.nsct_pcnn import (LINK_WEIGHTS, box_mean_nearest, fuzzy_linking_strength, modified_spatial_frequency,
                               pcnn_select, pcnn_select_group, rpcnn_fire_counts)


def smooth(seed, shape=(64, 64)):
    return gaussian_filter(np.random.default_rng(seed).random(shape), 2).astype(np.float32)


@pytest.mark.parametrize("window", [3, 5])
def test_box_mean_nearest_is_scipys_uniform_filter_nearest(window):
    x = np.random.default_rng(window).standard_normal((23, 31)) * 100
    expected = uniform_filter(x, window, mode="nearest")
    np.testing.assert_allclose(box_mean_nearest(x, window), expected, rtol=0, atol=1e-12)
    assert (box_mean_nearest(np.abs(x) * 1e-300, window) >= 0).all()


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


def plain_rpcnn_fire_counts(stimulus, beta, iterations, alpha_theta=0.2, v_theta=20.0):
    """The RPCNN iteration written out for one network, every neuron every step, in float32.

    L = n4 + w_diag nd (zero outside the image), U = (L beta + 1) S, Y = U > theta,
    theta = theta e^{-alpha_theta} + v_theta Y, T = sum Y.
    """
    s, b = np.float32(stimulus), np.float32(beta)
    w_diag = np.float32(LINK_WEIGHTS[0, 0])
    decay = np.float32(np.exp(-alpha_theta))
    theta = np.ones_like(s)
    fired = np.zeros_like(s)
    counts = np.zeros(s.shape, dtype=np.int64)
    for _ in range(iterations):
        p = np.pad(fired, 1)
        n4 = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
        nd = p[:-2, :-2] + p[:-2, 2:] + p[2:, :-2] + p[2:, 2:]
        link = n4 + w_diag * nd
        u = (link * b + np.float32(1)) * s
        fired = (u > theta).astype(np.float32)
        theta = theta * decay + np.float32(v_theta) * fired
        counts += fired.astype(np.int64)
    return counts


@pytest.mark.parametrize("seed", range(4))
def test_fast_rpcnn_matches_the_plain_iteration(seed):
    rng = np.random.default_rng(seed)
    shape = (3, 23, 31)                                  # odd sizes: the flat padded layout's row seams
    stimulus = rng.random(shape) ** 3                    # many weak neurons: linking decides most spikes
    stimulus[0, :4] = 0.0                                # silent neurons never fire
    beta = rng.random(shape)
    beta[1] = 1.0
    beta[2, :, :5] = -0.5                                # any sign: the iteration is the same arithmetic
    counts = rpcnn_fire_counts(stimulus, beta, iterations=120)
    plain = np.stack([plain_rpcnn_fire_counts(s, b, 120) for s, b in zip(stimulus, beta)])
    assert counts.sum() > 0 and not counts[0, :4].any()
    np.testing.assert_array_equal(counts, plain)


def test_fast_rpcnn_matches_the_plain_iteration_on_one_image_and_strong_linking():
    rng = np.random.default_rng(7)
    stimulus = gaussian_filter(rng.random((40, 40)), 1.5)
    stimulus /= stimulus.max()
    beta = np.ones_like(stimulus)                        # strong linking: firing spreads in waves
    counts = rpcnn_fire_counts(stimulus, beta, iterations=200, v_theta=5.0)
    np.testing.assert_array_equal(counts, plain_rpcnn_fire_counts(stimulus, beta, 200, v_theta=5.0))


def test_rpcnn_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differ in shape"):
        rpcnn_fire_counts(np.ones((4, 4)), np.ones((4, 5)), iterations=3)


def test_grouped_selection_matches_each_pair_alone():
    # pcnn_select_group stacks several pairs' networks into one RPCNN run: no spike may link across
    rng = np.random.default_rng(5)
    pairs = [(rng.standard_normal((20, 20)) * (k + 1), rng.standard_normal((20, 20))) for k in range(5)]
    for (c1, c2), fused in zip(pairs, pcnn_select_group(pairs, iterations=40)):
        np.testing.assert_array_equal(fused, pcnn_select(c1, c2, iterations=40))


@pytest.mark.parametrize("threads", ("1", "2"))
def test_pipelined_fusion_equals_the_plain_composition(monkeypatch, threads):
    # nsct_pcnn_fuse decomposes level by level and selects while decomposing; it must give exactly
    # decompose -> select each sub-band pair -> reconstruct, with every band back in its place
    from methods.nsct_pcnn import nsct_pcnn_fuse
    from methods.transforms.nsct import NSCTCoefficients, nsct_decompose, nsct_reconstruct
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    a, b = smooth(7) * 255, np.random.default_rng(8).random((64, 64)) * 255
    ca, cb = nsct_decompose(a, (2, 3)), nsct_decompose(b, (2, 3))
    bands = [[pcnn_select(x, y, iterations=20) for x, y in zip(la, lb)] for la, lb in zip(ca.bands, cb.bands)]
    plain = nsct_reconstruct(NSCTCoefficients(pcnn_select(ca.low, cb.low, iterations=20), bands))
    np.testing.assert_array_equal(nsct_pcnn_fuse(a, b, (2, 3), iterations=20), plain)


def test_fast_rpcnn_counts_past_255_iterations():
    rng = np.random.default_rng(11)
    stimulus = 0.5 + 0.5 * rng.random((12, 12))
    beta = rng.random((12, 12))
    counts = rpcnn_fire_counts(stimulus, beta, iterations=300, v_theta=0.5)   # fires nearly every step
    assert counts.max() > 255
    np.testing.assert_array_equal(counts, plain_rpcnn_fire_counts(stimulus, beta, 300, v_theta=0.5))
