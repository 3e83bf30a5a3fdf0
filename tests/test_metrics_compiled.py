"""The metrics' compiled (numba) kernels against their numpy paths, and the fallback when numba is missing."""
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import fft

from metrics import _compiled
from metrics._filters import MetricWarning
from metrics.fmi import _feature_mutual_information_numpy, dmey_mosaic, feature_mutual_information

pytest.importorskip("numba")


def _features():
    """0..255 images with a black border (identical and flat windows, fmi.m's 1 + 2^-52 rounding), few
    grey levels (ties on the CDF staircase) and an unrelated source (negatively correlated windows)."""
    rng = np.random.default_rng(11)
    a = np.round(rng.random((48, 40)) * 6) * 40
    b = np.round(rng.random((48, 40)) * 255)
    f = np.round(0.6 * a + 0.4 * b)
    for x in (a, b, f):
        x[:6] = 0
    a[6:9, :10] = f[6:9, :10]                    # windows where A = F exactly, B then meets F normalised
    b[20:23, 5:8] = (f[20:23, 5:8] - f[20:23, 5:8].min()) / np.ptp(f[20:23, 5:8])
    return a, b, f


@pytest.mark.parametrize("feature", ["pixel", "dct", "wavelet"])
def test_fmi_kernel_matches_the_numpy_path(feature):
    """Same window rules and arithmetic: the compiled loop gives the numpy path's FMI to rounding
    (libm vs numpy log), including the flat windows whose value fmi.m's summation order decides."""
    transform = {"pixel": lambda x: x, "dct": lambda x: fft.dctn(x, norm="ortho"), "wavelet": dmey_mosaic}[feature]
    a, b, f = (transform(x) for x in _features())
    compiled = feature_mutual_information(a, b, f)
    assert _compiled._LOADED["metrics._fmi_numba"] is not None   # it did run compiled
    assert compiled == pytest.approx(_feature_mutual_information_numpy(a, b, f), rel=1e-13, abs=0)
    flat = np.full((5, 5), 7.0)
    assert feature_mutual_information(flat, flat + 1, flat) == _feature_mutual_information_numpy(flat, flat + 1, flat)


@pytest.mark.parametrize("shape", [(62, 62), (63, 100), (256, 256), (70, 301)])
def test_dmey_mosaic_kernel_is_bit_identical_to_pywt(shape):
    """The compiled DWT sums pywt's terms in pywt's order: the same bits (signed zeros included),
    borders and odd sizes too; below the filter's 62 taps it is pywt itself."""
    import pywt
    rng = np.random.default_rng(5)
    x = np.round(rng.random(shape) * 255)
    x[:9] = 0
    x[:, :3] = -0.0
    ca, (ch, cv, cd) = pywt.dwt2(x, "dmey", mode="symmetric")
    blocks = np.block([[ca, ch], [cv, cd]])
    expected = (blocks - blocks.min()) / (blocks.max() - blocks.min())
    ours = dmey_mosaic(x)
    assert _compiled._LOADED["metrics._fmi_numba"] is not None
    assert ours.shape == expected.shape and np.array_equal(ours, expected)
    assert np.array_equal(np.signbit(ours), np.signbit(expected))
    small = rng.random((40, 80))
    ca, (ch, cv, cd) = pywt.dwt2(small, "dmey", mode="symmetric")
    assert dmey_mosaic(small).shape == (2 * ca.shape[0], 2 * ca.shape[1])


@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect", "mirror", "wrap"])
def test_pad_borders_is_np_pad(mode):
    """The filters' fast border padding gives np.pad's values (corners, signed zeros, widths up to and
    past one reflection, where it hands over to np.pad)."""
    from metrics._filters import _NUMPY_PAD, pad_borders
    rng = np.random.default_rng(2)
    for shape in [(1, 1), (2, 3), (7, 9), (11, 4)]:
        x = rng.standard_normal(shape)
        x[0, 0] = -0.0
        for rows in range(0, 13, 3):
            for cols in range(0, 13, 4):
                ours = pad_borders(x, rows, cols, mode)
                expected = np.pad(x, ((rows, rows), (cols, cols)), mode=_NUMPY_PAD[mode])
                assert ours.shape == expected.shape and np.array_equal(ours, expected)
                assert np.array_equal(np.signbit(ours), np.signbit(expected))


def test_row_medians_kernel_is_np_median_to_the_bit():
    """Qp's noise medians: numpy's value bit for bit (even and odd lengths, ties, negative and signed
    zeros, tiny values), and False (numpy's NaN path) when a row holds a NaN."""
    from metrics import phase
    phase.phase_congruency(np.arange(64.0).reshape(8, 8))       # loads the kernels
    kernels = _compiled._LOADED["metrics._phase_numba"]
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 10, 11, 4097, 65536):
        for x in (rng.random((3, n)), rng.standard_normal((3, n)) * 1e-3, rng.integers(0, 3, (3, n)) * -1.0,
                  rng.random((3, n)) ** 8 * 1e-30):
            x = x.astype(np.float32)
            x[0, ::2] = -0.0
            ours = np.empty(3, np.float32)
            assert kernels.row_medians(x, ours)
            assert np.array_equal(ours.view(np.uint32), np.median(x, axis=1).view(np.uint32))
    x[1, 1] = np.nan
    assert not kernels.row_medians(x, ours)


def test_fmi_falls_back_to_numpy_with_one_warning_when_numba_is_missing(monkeypatch):
    a, b, f = _features()
    expected = _feature_mutual_information_numpy(a, b, f)
    monkeypatch.setattr(_compiled, "_LOADED", {})
    monkeypatch.delitem(sys.modules, "metrics._fmi_numba", raising=False)
    monkeypatch.setitem(sys.modules, "numba", None)          # "import numba" raises ImportError
    with pytest.warns(MetricWarning) as caught:
        first = feature_mutual_information(a, b, f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # warned once per process, not per call
        second = feature_mutual_information(a, b, f)
    message = str(caught[0].message)
    assert len(caught) == 1 and "\n" not in message and "numba" in message and "numpy path" in message
    assert first == second == expected


def test_phase_congruency_kernel_is_bit_identical_to_the_numpy_path():
    """Same float32/float64 steps in the same order (numpy's complex abs and float32 exp included)."""
    from metrics import phase
    rows, cols = np.mgrid[:64, :80]
    x = 200.0 * ((rows - 30) ** 2 + (cols - 40) ** 2 < 15 ** 2) + 60.0 * (cols > 60) + (rows * cols) % 7
    x[:6] = 0                                   # a black band: zero responses, 0/0 orientations
    bank, bank0_energy, sum_an2, cross = phase._filters(x.shape)
    eo = phase.inverse_fft2(fft.fft2(x).astype(np.complex64)[None, None] * bank)
    compiled = phase.phase_congruency(x)
    assert _compiled._LOADED["metrics._phase_numba"] is not None
    for ours, numpy_path in zip(compiled, phase._congruency_numpy(eo, bank0_energy, sum_an2, cross)):
        assert 0.05 < np.nanmax(numpy_path) and np.array_equal(ours, numpy_path, equal_nan=True)


def test_qp_filter_responses_do_not_depend_on_batching_or_thread_count():
    """Qp's inverse FFTs (torch's): one image's 24 responses are the same bits alone or in a batch, with one
    torch thread or two, and agree with scipy's pocketfft to float32 rounding."""
    torch = pytest.importorskip("torch")
    from metrics import phase
    rng = np.random.default_rng(3)
    spectra = (rng.standard_normal((2, 3, 40, 48)) + 1j * rng.standard_normal((2, 3, 40, 48))).astype(np.complex64)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        batch = phase.inverse_fft2(spectra)
        torch.set_num_threads(2)
        again = phase.inverse_fft2(spectra)
    finally:
        torch.set_num_threads(threads)
    alone = phase.inverse_fft2(spectra[1, 2])
    assert batch.dtype == np.complex64 and np.array_equal(batch, again) and np.array_equal(batch[1, 2], alone)
    np.testing.assert_allclose(batch, fft.ifft2(spectra), rtol=0, atol=1e-6 * np.abs(batch).max())


def test_feature_correlation_kernel_is_bit_identical_to_the_numpy_path():
    """Qp's masked local correlations, best of three references, in one compiled loop: numpy's map to
    the bit (masks that cut through features, an empty mask, negative values, flat windows)."""
    from metrics import phase
    phase.phase_congruency(np.arange(64.0).reshape(8, 8))       # loads the kernels
    kernels = _compiled._LOADED["metrics._phase_numba"]
    rng = np.random.default_rng(4)
    mu_f, sq_f = rng.standard_normal((40, 52)), rng.random((40, 52)) * 3
    mus = tuple(rng.standard_normal((40, 52)) for _ in range(3))
    sqs = tuple(mu * mu + rng.random(mu.shape) * (k - 1) for k, mu in enumerate(mus))   # var < 0, = 0, > 0
    crosses = tuple(rng.standard_normal((40, 52)) for _ in range(3))
    masks = (mus[0] > 0.3, np.zeros((40, 52), bool), rng.random((40, 52)) < 0.7)
    ours = np.empty((40, 52))
    kernels.best_local_correlation(mu_f, sq_f, mus, sqs, crosses, masks, phase.ZHAO_C, ours)
    expected = phase._best_local_correlation_numpy(mu_f, sq_f, mus, sqs, crosses, masks)
    assert np.array_equal(ours, expected) and np.array_equal(np.signbit(ours), np.signbit(expected))


@pytest.mark.parametrize("shape, mode", [("same", "constant"), ("same", "reflect"), ("same", "nearest"),
                                         ("same", "mirror"), ("same", "wrap"), ("valid", "constant")])
def test_separable_filter_kernel_is_bit_identical_to_ndimage(shape, mode):
    """ndimage's symmetric-window additions in its order: the compiled filter gives the same bits, for
    every window length the metrics use (one tap pair to fifteen), borders wider than the image (a
    31-tap window on 9 rows) and a strided input (the real part of a complex image)."""
    from scipy import ndimage

    from metrics._filters import filter_separable, gaussian_window
    rng = np.random.default_rng(2)
    for size in (3, 5, 7, 9, 11, 17, 31):
        for x in (rng.random((37, 50)) * 255, (rng.random((40, 33)) + 1j * rng.random((40, 33))).real,
                  rng.random((9, 40)) - 0.5):
            if shape == "valid" and min(x.shape) < size:
                continue
            x[:2] = 0.0
            x[:, :3] = -0.0
            g = gaussian_window(size, size / 5)
            expected = ndimage.correlate1d(ndimage.correlate1d(x, g, axis=0, mode=mode), g, axis=1, mode=mode)
            if shape == "valid":
                expected = expected[size // 2:-(size // 2), size // 2:-(size // 2)]
            ours = filter_separable(x, g, shape, mode=mode)
            assert np.array_equal(ours, expected) and np.array_equal(np.signbit(ours), np.signbit(expected))
    assert _compiled._LOADED["metrics._filter_numba"] is not None


def test_compute_without_numba_gives_the_same_values_with_one_warning_per_kernel(monkeypatch):
    import metrics
    rows, cols = np.mgrid[:48, :56]
    a = ((rows - 20) ** 2 + (cols - 30) ** 2 < 12 ** 2) * 0.8
    b = (cols > 35) * 0.5 + (rows * cols % 5) / 40
    f = np.maximum(a, b)
    names = ["FMI_pixel", "Qp", "SSIM", "Qy"]
    compiled = metrics.compute(a, b, f, names=names)
    monkeypatch.setattr(_compiled, "_LOADED", {})
    for module in ("metrics._fmi_numba", "metrics._phase_numba", "metrics._filter_numba"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, "numba", None)
    with pytest.warns(MetricWarning) as caught:
        fallback = metrics.compute(a, b, f, names=names)
    assert sorted(str(w.message).split(" runs on")[0] for w in caught) == ["FMI", "Qp's phase congruency",
                                                                            "window filtering"]
    assert fallback == pytest.approx(compiled, rel=1e-13) and compiled["Qp"] == fallback["Qp"]


@pytest.mark.parametrize("mode", ["constant", "mirror", "nearest"])
def test_small_kernel_correlation_is_bit_identical_to_ndimage(mode):
    """Sobel and Prewitt taps in ndimage's order, zero weights skipped: the same bits, and the same
    sign of every zero (an edge orientation atan(gy / gx) tells +0 from -0), on flat black areas."""
    from scipy import ndimage

    from metrics._filters import SOBEL_X, correlate
    x = np.round(np.random.default_rng(8).random((30, 41)) * 255)
    x[:8], x[10:14, 10:20] = 0.0, -0.0
    for kernel in (SOBEL_X, SOBEL_X.T, np.array([[-1.0, 0, 1]] * 3)):
        ours, expected = correlate(x, kernel, mode), ndimage.correlate(x, kernel, mode=mode)
        assert np.array_equal(ours, expected) and np.array_equal(np.signbit(ours), np.signbit(expected))
        assert (expected == 0).sum() > 100


def test_kernels_compile_without_a_disk_cache_where_no_cache_directory_is_usable(monkeypatch):
    """numba refuses cache=True when no cache directory is writable: the kernels are then compiled
    without one (no warning, still compiled, same values). On Qp's kernels, the quickest to compile."""
    from numba.core import caching

    from metrics import phase
    x = np.round(np.random.default_rng(6).random((40, 48)) * 255)
    expected = phase.phase_congruency(x)
    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])
    monkeypatch.setattr(_compiled, "CACHE", True)
    monkeypatch.setattr(_compiled, "_LOADED", {})
    monkeypatch.delitem(sys.modules, "metrics._phase_numba", raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = phase.phase_congruency(x)
    assert _compiled._LOADED["metrics._phase_numba"] is not None and _compiled.CACHE is False
    assert all(np.array_equal(u, v, equal_nan=True) for u, v in zip(again, expected))


def test_speed_values_record_every_metric_exactly_and_refuse_to_overwrite(tmp_path, capsys, monkeypatch):
    """``python -m bench.speed.metrics --values FILE``: the record that a speed change kept every value to
    the bit: each metric under each of its conventions, from one compute and alone, as exact hex floats."""
    import json

    import metrics
    from bench.speed import metrics as speed

    rng = np.random.default_rng(5)
    a, b = rng.random((48, 48)), rng.random((48, 48))
    triple = (a, b, 0.5 * (a + b))
    monkeypatch.setattr(speed, "_triples", lambda: ([triple], None))
    out = tmp_path / "values.json"
    assert speed.main(["--values", str(out)]) == 0
    values = json.loads(out.read_text())
    assert len(values) == 2 * sum(len(m.conventions) for m in metrics.METRICS.values())
    fresh = metrics.compute(*triple, convention="default")
    for name in ("SSIM", "Qabf", "FMI_pixel", "VIF", "Qcb"):
        assert float.fromhex(values[f"0 default {name} compute"]) == fresh[name]
        assert values[f"0 default {name} alone"] == values[f"0 default {name} compute"]
    assert speed.main(["--values", str(out)]) == 2                       # an existing file is not replaced
    assert "exists" in capsys.readouterr().err
    assert json.loads(out.read_text()) == values


def test_speed_versus_times_the_other_checkouts_metrics_side_by_side(tmp_path, capsys, monkeypatch):
    """``--versus DIR`` runs DIR's own ``metrics`` (here a stand-in whose compute sleeps 0.3 s on the wall
    clock) in alternation with this checkout's, and the speed-up says which is faster; a folder that is
    not a checkout is refused with one line."""
    from bench.speed import metrics as speed

    rng = np.random.default_rng(6)
    paths = []
    for name in "ABF":
        paths.append(str(tmp_path / f"{name}.png"))
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(paths[-1])
    monkeypatch.setattr(speed, "_triple_files", lambda: ([paths], tmp_path))
    other = tmp_path / "slow"
    (other / "metrics").mkdir(parents=True)
    (other / "metrics" / "registry.py").write_text("")
    (other / "metrics" / "__init__.py").write_text(
        "import time\nMETRICS = {'EN': None, 'FMI_pixel': None}\n"
        "def compute(a, b, f, names=None, convention='default'):\n    time.sleep(0.3)\n")
    assert speed.main(["--versus", str(other), "--rounds", "2", "--repeat", "1", "--clock", "wall"]) == 0
    table = capsys.readouterr().out
    here = Path(speed.__file__).resolve().parents[2].name
    order = [line.split(":")[1].strip() for line in table.splitlines() if line.startswith("round ")]
    assert order == [here, "slow", "slow", here]                                # alternated
    speed_ups = [float(line.split()[-1].rstrip("x")) for line in table.splitlines() if line.startswith("whole suite ")]
    assert speed_ups and speed_ups[0] > 2       # this checkout's suite on a 40x40 triple: well under 0.15 s
    assert speed.main(["--versus", str(tmp_path)]) == 2
    assert "not a checkout" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:                                # nothing to time: refused
        speed.main(["--versus", str(other), "--rounds", "0"])
    assert refused.value.code == 2 and "'0' is not a whole number of at least 1" in capsys.readouterr().err


def test_fmi_refuses_images_smaller_than_its_window_on_both_paths():
    from metrics._filters import ImageTooSmall
    x = np.arange(10.0).reshape(2, 5)
    for fmi in (feature_mutual_information, _feature_mutual_information_numpy):
        with pytest.raises(ImageTooSmall, match="smaller than the 3x3 window"):
            fmi(x, x[::-1], 0.5 * x)
