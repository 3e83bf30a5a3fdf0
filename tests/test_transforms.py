"""Transforms of the MST baselines: perfect reconstruction, padding, and the ``selc`` selection rule."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from methods.transforms import pyramid
from methods.transforms.dtcwt import dtcwt_decompose, dtcwt_reconstruct
from methods.transforms.dwt import dwt_decompose, dwt_reconstruct
from methods.transforms.nsct import nsct_decompose, nsct_reconstruct
from methods.transforms.rules import select_max_abs_consistent


def image(shape=(96, 112), seed=0):
    """Smooth random image on the 0..255 scale (the scale the MST-SR toolbox works on)."""
    return 255 * gaussian_filter(np.random.default_rng(seed).random(shape), 1.5)


@pytest.mark.parametrize("shape", [(96, 112), (75, 61)])
def test_laplacian_and_ratio_pyramids_reconstruct_perfectly(shape):
    x = image(shape) + 1.0
    lap = pyramid.laplacian_pyramid(x, 4)
    assert [d.shape for d in lap.details][0] == (shape[0] + shape[0] % 2, shape[1] + shape[1] % 2)
    assert np.abs(pyramid.laplacian_reconstruct(lap) - x).max() < 1e-10
    assert np.abs(pyramid.ratio_reconstruct(pyramid.ratio_pyramid(x, 4)) - x).max() < 1e-9


@pytest.mark.parametrize("wavelet, shape", [("db1", (96, 112)), ("db1", (75, 61)), ("db4", (96, 112))])
def test_dwt_reconstructs_perfectly(wavelet, shape):
    x = image(shape)
    pyr = dwt_decompose(x, 3, wavelet)
    assert len(pyr.details) == 3 and all(len(bands) == 3 for bands in pyr.details)
    assert np.abs(dwt_reconstruct(pyr, wavelet) - x).max() < 1e-9


def test_haar_dwt_is_orthonormal():
    x = image((64, 64))
    pyr = dwt_decompose(x, 2)
    energy = np.sum(pyr.base ** 2) + sum(np.sum(b ** 2) for bands in pyr.details for b in bands)
    assert energy == pytest.approx(np.sum(x ** 2), rel=1e-12)


@pytest.mark.parametrize("shape", [(96, 112), (75, 61)])
def test_dtcwt_reconstructs_perfectly_with_six_complex_bands(shape):
    x = image(shape)
    pyr = dtcwt_decompose(x, 4)
    assert len(pyr.highpasses) == 4 and all(h.shape[-1] == 6 and np.iscomplexobj(h) for h in pyr.highpasses)
    assert np.abs(dtcwt_reconstruct(pyr) - x).max() < 1e-9


def test_nsct_reconstructs_perfectly_and_is_undecimated():
    x = image((64, 80))
    coeffs = nsct_decompose(x, (2, 3))
    assert [len(level) for level in coeffs.bands] == [4, 8]
    assert all(b.shape == x.shape for level in coeffs.bands for b in level) and coeffs.low.shape == x.shape
    assert np.abs(nsct_reconstruct(coeffs) - x).max() < 1e-9


def test_nsct_directional_bands_separate_orientations():
    # a horizontal grating should put its energy in few directional bands, a vertical one in others
    yy, xx = np.mgrid[0:64, 0:64]
    horizontal = 100 * np.cos(2 * np.pi * yy / 5)
    vertical = 100 * np.cos(2 * np.pi * xx / 5)
    e_h = [np.sum(b[16:-16, 16:-16] ** 2) for b in nsct_decompose(horizontal, (3,)).bands[-1]]
    e_v = [np.sum(b[16:-16, 16:-16] ** 2) for b in nsct_decompose(vertical, (3,)).bands[-1]]
    assert np.argmax(e_h) != np.argmax(e_v)
    assert max(e_h) > 0.4 * sum(e_h) and max(e_v) > 0.4 * sum(e_v)


def test_es2_reflects_without_repeating_the_edge_and_zeroes_corners():
    x = np.arange(20.0).reshape(4, 5)
    y = pyramid.mirror_extend_zero_corners(x, 2)
    np.testing.assert_array_equal(y[2:-2, 2:-2], x)
    np.testing.assert_array_equal(y[0, 2:-2], x[2])          # row index -2 mirrors row 2
    np.testing.assert_array_equal(y[2:-2, -1], x[:, -3])
    assert not y[:2, :2].any() and not y[-2:, -2:].any() and not y[:2, -2:].any() and not y[-2:, :2].any()


def test_selc_picks_the_stronger_source_on_an_edge_and_b_on_ties():
    c1 = np.zeros((32, 32))
    c2 = np.full((32, 32), 0.1)
    c1[:, 16] = 5.0                                            # strong edge in source 1 only
    fused = select_max_abs_consistent(c1, c2)
    assert (fused[:, 15:18] == c1[:, 15:18]).all()             # the edge and its 3x3 neighbours come from c1
    assert (fused[:, :10] == c2[:, :10]).all()                 # elsewhere c2 is larger
    np.testing.assert_array_equal(select_max_abs_consistent(c2, -c2), -c2)   # equal magnitudes: B


def test_selc_majority_vote_around_a_peak():
    # the 3x3 local max makes A win on the 3x3 block around a strong coefficient; the 3x3 majority
    # (> 4 of 9 votes) then keeps the cross (6 votes) and gives the block's corners (4 votes) to B
    c2 = np.ones((20, 20))
    c1 = 0.5 * np.ones((20, 20))
    c1[10, 10] = 3.0
    from_a = select_max_abs_consistent(c1, c2) == c1
    cross = np.zeros((20, 20), dtype=bool)
    cross[10, 9:12] = cross[9:12, 10] = True
    np.testing.assert_array_equal(from_a, cross)
