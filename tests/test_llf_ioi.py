"""LLF-IOI: properties (no reference output exists)."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from common.errors import UserError
from methods import get_method
from methods.llf_ioi import fuse_residual, llf_decompose, llf_ioi_fusion, llf_reconstruct, local_laplacian_filter


def _image(seed=0, shape=(96, 112)):
    return gaussian_filter(np.random.default_rng(seed).random(shape), 1.5)


def test_decomposition_reconstructs_exactly():
    x = _image()
    residuals, coarse = llf_decompose(x, 3)
    assert np.abs(llf_reconstruct(residuals, coarse) - x).max() < 1e-12


def test_identical_inputs_give_the_input():
    x = _image(1)
    assert np.abs(llf_ioi_fusion(x, x) - x).max() < 1e-6


def test_llf_smooths_small_details_and_keeps_a_large_step():
    step = np.zeros((64, 64)); step[:, 32:] = 1.0
    noise = 0.02 * np.random.default_rng(3).standard_normal((64, 64))
    out = local_laplacian_filter(step + noise, sigma_r=0.1, alpha=2.0, n_samples=24)
    # the fast LLF needs intensity samples spaced below sigma_r to suppress details well
    assert np.std(out[:, :24]) < 0.7 * np.std(noise[:, :24])
    assert out[:, 40:].mean() - out[:, :24].mean() > 0.9


def test_residual_rule_picks_the_stronger_edge():
    weak = np.zeros((32, 32)); weak[:, 16:] = 0.1
    strong = np.zeros((32, 32)); strong[:, 16:] = 0.8
    rw, _ = llf_decompose(weak, 2)
    rs, _ = llf_decompose(strong, 2)
    fused = fuse_residual(rw[0], rs[0])
    edge = np.abs(rs[0]) > 1e-3
    np.testing.assert_array_equal(fused[edge], rs[0][edge])
    fused_swapped = fuse_residual(rs[0], rw[0])
    np.testing.assert_array_equal(fused_swapped[edge], rs[0][edge])


def test_output_range_and_determinism():
    a, b = _image(4), _image(5)
    f1, f2 = llf_ioi_fusion(a, b), llf_ioi_fusion(a, b)
    np.testing.assert_array_equal(f1, f2)
    assert f1.dtype == np.float32 and f1.shape == a.shape
    assert -0.25 < f1.min() and f1.max() < 1.25
    assert np.mean(np.abs(f1 - np.clip(f1, 0, 1))) < 0.01


@pytest.mark.parametrize("kwargs", [{"scales": 0}, {"scales": 9}, {"sigma_r": 0}, {"n_samples": 1}])
def test_bad_parameters_raise_user_error(kwargs):
    x = _image(6, (64, 64)).astype(np.float32)
    with pytest.raises(UserError):
        get_method("llf_ioi")(x, x, **kwargs)
