"""Sparse-representation fusion: Batch-OMP against a plain OMP, the max-l1 rule, dictionaries, K-SVD."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import methods
from common.errors import UserError
from methods.sr import (DEFAULT_DICTIONARY, batch_omp, learn_dictionary, load_dictionary, normalise_columns,
                        overcomplete_dct, sparse_fusion, training_patches)


def plain_omp(d, x, epsilon, max_atoms):
    """Textbook OMP for one signal: greedy atom, least-squares refit, stop on the residual norm."""
    support, coef, residual = [], np.zeros(0), x.copy()
    while np.linalg.norm(residual) > epsilon and len(support) < max_atoms:
        support.append(int(np.argmax(np.abs(d.T @ residual))))
        coef = np.linalg.lstsq(d[:, support], x, rcond=None)[0]
        residual = x - d[:, support] @ coef
    out = np.zeros(d.shape[1])
    out[support] = coef
    return out


def test_batch_omp_matches_plain_omp():
    rng = np.random.default_rng(0)
    d = normalise_columns(rng.standard_normal((16, 40)))
    x = rng.standard_normal((16, 300)) * 5
    for epsilon, max_atoms in [(1.0, 16), (0.0, 5)]:
        ours = batch_omp(d, x, epsilon, max_atoms=max_atoms, chunk=64)
        ref = np.stack([plain_omp(d, x[:, i], epsilon, max_atoms) for i in range(x.shape[1])], axis=1)
        np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_batch_omp_reaches_the_error_target_and_skips_small_signals():
    rng = np.random.default_rng(1)
    d = overcomplete_dct(8, 256)
    x = 20 * rng.standard_normal((64, 200))
    x[:, :10] *= 1e-3                                      # |x| <= epsilon: coded by no atom
    codes = batch_omp(d, x, 0.5)
    assert not codes[:, :10].any()
    assert np.linalg.norm(x - d @ codes, axis=0).max() <= 0.5 + 1e-9


def test_sparse_fusion_keeps_the_textured_patch_and_identical_inputs():
    rng = np.random.default_rng(2)
    flat = np.full((48, 48), 100.0) + 0.01 * rng.random((48, 48))
    textured = flat + 40 * (np.indices((48, 48)).sum(axis=0) % 2)   # checkerboard: large l1 code
    d = overcomplete_dct(8, 256)
    fused = sparse_fusion(flat, textured, d)
    np.testing.assert_allclose(fused[8:-8, 8:-8], textured[8:-8, 8:-8], atol=0.1)
    np.testing.assert_allclose(sparse_fusion(textured, textured, d), textured, atol=0.1)


def test_sr_method_on_identical_inputs_returns_the_input():
    x = gaussian_filter(np.random.default_rng(3).random((40, 40)), 1.5).astype(np.float32)
    assert np.abs(methods.fuse(x, x, "sr") - x).max() < 0.1 / 255


def test_own_dictionary_is_shipped_small_and_loads():
    assert DEFAULT_DICTIONARY.stat().st_size < 200_000
    with np.load(DEFAULT_DICTIONARY) as content:
        assert content["D"].shape == (64, 256) and content["D"].dtype == np.float32
        assert "K-SVD" in str(content["recipe"])
    d = load_dictionary()
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, atol=1e-5)
    assert np.abs(d.sum(axis=0)).max() < 1e-3 * 8               # atoms of mean-removed patches have zero mean


def test_authors_dictionary_loads_from_the_reference(baseline_reference_dir):
    d = load_dictionary(baseline_reference_dir / "dictionaries" / "D_100000_256_8.mat")
    assert d.shape == (64, 256) and np.isfinite(d).all()


def test_bad_dictionary_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_dictionary(tmp_path / "missing.npz")
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(UserError, match=".mat or .npz"):
        load_dictionary(tmp_path / "d.txt")
    np.savez(tmp_path / "wrong.npz", D=np.zeros((60, 10)))
    with pytest.raises(UserError, match="patch_side"):
        load_dictionary(tmp_path / "wrong.npz")
    np.savez(tmp_path / "nokey.npz", W=np.zeros((64, 10)))
    with pytest.raises(UserError, match="no variable 'D'"):
        load_dictionary(tmp_path / "nokey.npz")


def test_ksvd_improves_on_its_dct_start():
    rng = np.random.default_rng(4)
    images = [255 * gaussian_filter(rng.random((64, 64)), s) for s in (0.8, 1.2, 2.0)]
    images += [np.where(gaussian_filter(rng.random((64, 64)), 3) > 0.5, 200.0, 50.0) for _ in range(2)]
    d = learn_dictionary(images, n_atoms=64, n_patches=1500, sparsity=3, iterations=4, seed=0)
    np.testing.assert_allclose(np.linalg.norm(d, axis=0), 1.0, atol=1e-12)
    x = training_patches(images, n_patches=1500, seed=0)
    start = overcomplete_dct(8, 64)
    error = [np.linalg.norm(x - dd @ batch_omp(dd, x, 0.0, max_atoms=3)) for dd in (start, d)]
    assert error[1] < 0.95 * error[0]
