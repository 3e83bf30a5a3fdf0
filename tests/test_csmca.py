"""CSMCA: building blocks, properties, dictionaries, parity with the authors' code under Octave."""
import numpy as np
import pytest
from PIL import Image

from common.errors import UserError
from methods import get_method
from methods.csmca import (OWN_DICTIONARIES, cbpdn, csmca_fusion, fuse_coefficients, load_dictionaries,
                           tikhonov_lowpass)


def test_tikhonov_lowpass_splits_exactly_and_keeps_constants():
    x = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    base, detail = tikhonov_lowpass(x)
    np.testing.assert_allclose(base + detail, x, atol=1e-6)
    assert np.std(base) < np.std(x)
    flat_base, _ = tikhonov_lowpass(np.full((32, 32), 0.3, np.float32))
    np.testing.assert_allclose(flat_base, 0.3, atol=1e-5)


def test_cbpdn_lowers_the_bpdn_objective_with_a_sparse_code():
    rng = np.random.default_rng(1)
    filters = rng.standard_normal((4, 5, 5))
    filters /= np.linalg.norm(filters.reshape(4, -1), axis=1)[:, None, None]
    code = np.zeros((4, 48, 48), np.float32)
    code[rng.integers(0, 4, 20), rng.integers(0, 48, 20), rng.integers(0, 48, 20)] = 1.0
    dft = np.fft.fft2(filters, s=(48, 48))
    synth = lambda c: np.real(np.fft.ifft2((dft * np.fft.fft2(c)).sum(0)))
    signal = synth(code)
    lam = 0.05
    objective = lambda c: 0.5 * np.sum((synth(c) - signal) ** 2) + lam * np.abs(c).sum()
    y = cbpdn(filters, signal[None].astype(np.float32), lam, 50 * lam + 1)[0]
    assert objective(y) < 0.5 * objective(np.zeros_like(code))
    assert np.mean(np.abs(y) > 1e-3) < 0.1


def _cbpdn_reference(filters, signal, lam, rho, max_iter, rel_tol=1e-3, relax=1.8, rho_ratio=1.2, rho_scaling=100.0):
    """SPORCO's ConvBPDN ADMM (default options) written out plainly in double precision with full FFTs."""
    d = np.fft.fft2(filters, s=signal.shape)
    s_f = np.fft.fft2(signal)
    y = np.zeros(d.shape); u = np.zeros(d.shape)
    target = 1 + 18.3 ** (np.log10(lam) + 1)
    for k in range(1, max_iter + 1):
        z = np.fft.fft2(y - u)
        gain = (s_f - (d * z).sum(0)) / ((np.abs(d) ** 2).sum(0) + rho)
        x = np.real(np.fft.ifft2(z + np.conj(d) * gain))
        x_r = relax * x + (1 - relax) * y
        y_prev, y = y, np.sign(x_r + u) * np.maximum(np.abs(x_r + u) - lam / rho, 0)
        u = u + x_r - y
        r = np.linalg.norm(x - y) / max(np.linalg.norm(x), np.linalg.norm(y))
        s = np.linalg.norm(y_prev - y) / np.linalg.norm(u)
        if k != 1:
            mult = min(max(np.sqrt(r / (s * target)), np.sqrt(s * target / r)), rho_scaling)
            rsf = mult if r > target * rho_ratio * s else (1 / mult if s > rho_ratio / target * r else 1.0)
            rho *= rsf
            u /= rsf
        if r <= rel_tol and s <= rel_tol:
            break
    return y, k


@pytest.mark.parametrize("max_iter", [30, 300])
def test_cbpdn_follows_the_plain_admm_on_odd_sizes(max_iter):
    # sizes that fill neither a whole block of filters nor of rows; non-square filters
    rng = np.random.default_rng(4)
    filters = rng.standard_normal((6, 5, 7))
    filters /= np.linalg.norm(filters.reshape(6, -1), axis=1)[:, None, None]
    signals = (0.1 * rng.standard_normal((2, 37, 45))).astype(np.float32)
    iterations = []
    ours = cbpdn(filters, signals, 0.05, 3.5, max_iter=max_iter, stats=iterations)
    for signal, y, k in zip(signals, ours, iterations):
        ref, ref_k = _cbpdn_reference(filters, signal.astype(np.float64), 0.05, 3.5, max_iter)
        assert abs(k - ref_k) <= 1
        np.testing.assert_allclose(y, ref, atol=1e-4 * np.abs(ref).max())


def test_coefficient_rule_takes_the_more_active_source_and_b_on_ties():
    a = np.zeros((2, 20, 20), np.float32); a[:, :, :10] = 1
    b = np.zeros((2, 20, 20), np.float32); b[:, :, 10:] = 2
    fused = fuse_coefficients(a, b, 1)
    assert (fused[:, :, :8] == 1).all() and (fused[:, :, 12:] == 2).all()
    np.testing.assert_array_equal(fuse_coefficients(a, a + 0, 1), a)


def test_own_dictionaries_are_shipped_small():
    cartoon, texture = load_dictionaries(None)
    assert cartoon.shape == texture.shape == (32, 8, 8)
    assert all(p.stat().st_size < 50_000 for p in OWN_DICTIONARIES)
    np.testing.assert_allclose(np.linalg.norm(cartoon.reshape(32, -1), axis=1), 1, atol=1e-4)


def test_identical_inputs_give_nearly_the_input():
    from scipy.ndimage import gaussian_filter
    x = gaussian_filter(np.random.default_rng(2).random((48, 48)), 1).astype(np.float32)
    out = csmca_fusion(x, x)
    # the fused detail is the CSR approximation of x's detail, not x's detail itself
    assert np.abs(out - x).mean() < 0.01


@pytest.mark.parametrize("kwargs", [{"rounds": 0}, {"lowpass_lambda": -1}, {"cartoon_radius": 1.5},
                                    {"dictionaries": "/nonexistent/folder"}])
def test_bad_parameters_raise_user_error(kwargs):
    x = np.zeros((32, 32), np.float32)
    with pytest.raises(UserError):
        get_method("csmca")(x, x + 0.5, **kwargs)


# CSMCA takes ~40 s a pair on 2 cores: the default run checks the authors' own pair and one Harvard pair;
# `python -m pytest -m slow` checks all ten.
FAST_PARITY_PAIRS = ("csmca_source1_source2", "harvard_CT-MRI_16009")


def _reference_pairs(ref_dir):
    return [line.split("\t")[0] for line in (ref_dir / "pairs.tsv").read_text().splitlines()[1:]]


def _parity_psnr(ref_dir, pair):
    a = np.asarray(Image.open(ref_dir / "inputs" / f"{pair}_A.png"), np.float32) / 255
    b = np.asarray(Image.open(ref_dir / "inputs" / f"{pair}_B.png"), np.float32) / 255
    fused = csmca_fusion(a, b, dictionaries=str(ref_dir / "dictionaries"))
    ours = np.clip(np.floor(fused * np.float32(255) + 0.5), 0, 255).astype(np.float64)
    ref = np.asarray(Image.open(ref_dir / "csmca" / f"{pair}.png"), np.float64)
    return 10 * np.log10(255 ** 2 / max(np.mean((ours - ref) ** 2), 1e-12))


@pytest.mark.parametrize("pair", FAST_PARITY_PAIRS)
def test_parity_with_octave_reference(baseline_reference_dir, pair):
    """The authors' dictionaries and parameters: uint8 output vs Octave, PSNR >= 35 dB."""
    psnr = _parity_psnr(baseline_reference_dir, pair)
    assert psnr >= 35, f"{pair}: PSNR {psnr:.2f} dB"


# The authors' code under Octave returns NaN on this pair (uint8(NaN) = 0, so the reference PNG is black):
# a flat detail layer makes SPORCO's residuals 0/0. Our port keeps those NaNs out of the image (see cbpdn).
DEGENERATE_REFERENCE_PAIRS = ("harvard_SPECT-MRI_10018",)


@pytest.mark.slow
def test_parity_with_octave_reference_all_pairs(baseline_reference_dir):
    for pair in _reference_pairs(baseline_reference_dir):
        if pair not in FAST_PARITY_PAIRS + DEGENERATE_REFERENCE_PAIRS:
            psnr = _parity_psnr(baseline_reference_dir, pair)
            assert psnr >= 35, f"{pair}: PSNR {psnr:.2f} dB"


@pytest.mark.slow
@pytest.mark.parametrize("pair", DEGENERATE_REFERENCE_PAIRS)
def test_degenerate_reference_pair_gives_a_finite_image(baseline_reference_dir, pair):
    ref = np.asarray(Image.open(baseline_reference_dir / "csmca" / f"{pair}.png"))
    assert ref.max() == 0, f"{pair}: the Octave reference is no longer black; move it back to the parity test"
    a = np.asarray(Image.open(baseline_reference_dir / "inputs" / f"{pair}_A.png"), np.float32) / 255
    b = np.asarray(Image.open(baseline_reference_dir / "inputs" / f"{pair}_B.png"), np.float32) / 255
    fused = csmca_fusion(a, b, dictionaries=str(baseline_reference_dir / "dictionaries"))
    assert np.isfinite(fused).all() and 0.05 < fused.mean() < 0.95
