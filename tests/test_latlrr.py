"""Latent LRR (inexact ALM), LatLRR and MDLatLRR fusion: solver against known answers and the
reference iteration, decomposition and fusion mechanics."""
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

import methods
from methods.latlrr import (latent_lrr, latlrr_fusion, load_projection, mdlatlrr_decompose, mdlatlrr_fusion,
                            nuclear_norms, singular_value_threshold)
from methods.sr import accumulate_patches


def nuclear(m):
    return np.linalg.svd(m, compute_uv=False).sum()


def reference_latent_lrr(x, lam, tol=1e-6, rho=1.1, mu=1e-6, max_mu=1e6):
    """A line-by-line transcription of the authors' ``latent_lrr.m`` (dense, full SVDs, explicit inverses)."""
    def svt(m, tau):
        u, s, vt = np.linalg.svd(m, full_matrices=False)
        k = int((s > tau).sum())
        return (u[:, :k] * (s[:k] - tau)) @ vt[:k]
    d, n = x.shape
    inv_a, inv_b = np.linalg.inv(x.T @ x + np.eye(n)), np.linalg.inv(x @ x.T + np.eye(d))
    z, l, e = np.zeros((n, n)), np.zeros((d, d)), np.zeros((d, n))
    y1, y2, y3 = np.zeros((d, n)), np.zeros((n, n)), np.zeros((d, d))
    for iteration in range(1, 10_000):
        j, s = svt(z + y2 / mu, 1 / mu), svt(l + y3 / mu, 1 / mu)
        z = inv_a @ (x.T @ x - x.T @ l @ x - x.T @ e + j + (x.T @ y1 - y2) / mu)
        l = ((x - x @ z - e) @ x.T + s + (y1 @ x.T - y3) / mu) @ inv_b
        xmaz = x - x @ z - l @ x
        t = xmaz + y1 / mu
        e = np.maximum(0, t - lam / mu) + np.minimum(0, t + lam / mu)
        gaps = (xmaz - e, z - j, l - s)
        if max(np.abs(g).max() for g in gaps) < tol:
            return z, l, e, iteration
        y1, y2, y3 = y1 + mu * gaps[0], y2 + mu * gaps[1], y3 + mu * gaps[2]
        mu = min(max_mu, mu * rho)
    raise AssertionError("reference did not converge")


@pytest.mark.parametrize("shape, zero_rows", [((12, 16), 0), ((16, 20), 3), ((14, 10), 0)])
def test_latent_lrr_follows_the_reference_iteration(shape, zero_rows):
    # wide, rank-deficient (black rows, as in brain scans) and tall matrices
    x = gaussian_filter(np.random.default_rng(1).random(shape), 1.0)
    x[:zero_rows] = 0.0
    z, l, e, iterations = reference_latent_lrr(x, 0.8)
    ours = latent_lrr(x, 0.8)
    assert ours.converged
    np.testing.assert_allclose(ours.z, z, atol=1e-8)
    np.testing.assert_allclose(ours.l, l, atol=1e-8)
    np.testing.assert_allclose(ours.e, e, atol=1e-8)
    assert ours.iterations == iterations
    np.testing.assert_allclose(ours.principal, x @ ours.z, atol=1e-10)
    np.testing.assert_allclose(ours.salient, ours.l @ x, atol=1e-10)


def test_noiseless_latent_lrr_reaches_the_known_optimum_rank_x():
    # min ||Z||_* + ||L||_* s.t. X = XZ + LX has optimal value rank(X) (Z = V W V', L = U (I - W) U')
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 40))
    s = latent_lrr(x, 100.0)                  # lam this large keeps E = 0
    assert s.converged and np.abs(s.e).max() == 0.0
    assert nuclear(s.z) + nuclear(s.l) == pytest.approx(3.0, abs=1e-5)
    assert np.abs(x - x @ s.z - s.l @ x).max() < 1e-6


def test_latent_lrr_separates_a_low_rank_matrix_from_sparse_corruption():
    rng = np.random.default_rng(0)
    low_rank = rng.standard_normal((30, 2)) @ rng.standard_normal((2, 40))
    support = rng.random(low_rank.shape) < 0.05
    sparse = np.where(support, rng.choice([-1.0, 1.0], low_rank.shape) * rng.uniform(3, 5, low_rank.shape), 0.0)
    s = latent_lrr(low_rank + sparse, 0.005)
    assert s.converged
    np.testing.assert_array_equal(np.abs(s.e) > 0.5, support)
    assert np.linalg.norm(s.e - sparse) < 0.1 * np.linalg.norm(sparse)
    assert np.linalg.norm(s.principal + s.salient - low_rank) < 0.1 * np.linalg.norm(low_rank)


@pytest.mark.parametrize("shape", [(8, 13), (13, 8)])
def test_singular_value_threshold_matches_the_svd_definition(shape):
    m = np.random.default_rng(2).standard_normal(shape)
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    tau = float(np.median(s))
    expected = (u * np.maximum(s - tau, 0)) @ vt
    np.testing.assert_allclose(singular_value_threshold(torch.from_numpy(m), tau).numpy(), expected, atol=1e-12)
    assert not singular_value_threshold(torch.from_numpy(m), s[0] + 1e-9).any()


def test_latlrr_fusion_is_the_mean_of_low_rank_parts_plus_the_sum_of_salient_parts():
    rng = np.random.default_rng(3)
    a, b = (gaussian_filter(rng.random((24, 24)), 1.5) for _ in range(2))
    pa, pb = latent_lrr(a, 0.8), latent_lrr(b, 0.8)
    clip = lambda v: np.clip(v, 0, 1)  # noqa: E731
    expected = (clip(pa.principal) + clip(pb.principal)) / 2 + clip(pa.salient) + clip(pb.salient)
    np.testing.assert_allclose(latlrr_fusion(a, b), expected, atol=1e-6)


def test_project_projection_matrix_is_a_16x16_patch_operator():
    matrix = load_projection()
    assert matrix.shape == (256, 256)
    # a projection learned on patches keeps smooth content out of the detail part: a constant patch
    # has a far smaller detail response than a checkerboard of the same energy
    flat = np.full(256, 0.5)
    checker = 0.5 * np.sign(np.cos(np.pi * np.arange(16)))[:, None] * np.sign(np.cos(np.pi * np.arange(16)))[None, :]
    assert np.linalg.norm(matrix @ flat) < 0.2 * np.linalg.norm(matrix @ checker.ravel(order="F"))


def test_mdlatlrr_decomposition_telescopes_back_to_the_image():
    rng = np.random.default_rng(4)
    img = gaussian_filter(rng.random((48, 48)), 1.0)
    matrix = load_projection()
    base, details = mdlatlrr_decompose(img, matrix, level=3, stride=4)
    parts = [accumulate_patches(v, img.shape, 16, 4) for v in details]
    np.testing.assert_allclose(base + sum(total / count for total, count in parts), img, atol=1e-12)
    assert len(details) == 3 and details[0].shape == (256, 9 * 9)


def test_nuclear_norms_match_numpy():
    vectors = np.random.default_rng(5).standard_normal((256, 2100))
    expected = [nuclear(v.reshape(16, 16, order="F")) for v in vectors.T]
    np.testing.assert_allclose(nuclear_norms(vectors, 16), expected, rtol=1e-10)


def test_mdlatlrr_fusion_of_identical_sources_returns_the_source_and_the_code_sum_does_not():
    img = gaussian_filter(np.random.default_rng(6).random((50, 50)), 1.0).astype(np.float32)  # 50 - 16 not /4
    np.testing.assert_allclose(mdlatlrr_fusion(img, img, level=2, stride=4), img, atol=1e-6)
    counted_twice = mdlatlrr_fusion(img, img, level=2, stride=4, detail_sum="code")
    assert np.abs(counted_twice - img).max() > 1e-3


def test_mdlatlrr_weights_favour_the_source_with_the_stronger_detail():
    rng = np.random.default_rng(7)
    smooth = np.tile(np.linspace(0.3, 0.7, 48, dtype=np.float32), (48, 1))
    textured = np.clip(0.5 + 0.15 * rng.standard_normal((48, 48)), 0, 1).astype(np.float32)
    fused = methods.fuse(smooth, textured, "mdlatlrr", level=2, stride=4)
    high = lambda v: np.linalg.norm(v - gaussian_filter(v, 2.0))  # noqa: E731
    # averaging would halve the texture (0.50); nuclear-norm weights on the detail levels keep more (0.77)
    assert high((smooth + textured) / 2) < 0.51 * high(textured)
    assert high(fused) > 0.7 * high(textured)
