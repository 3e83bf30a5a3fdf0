"""The metrics' compiled (numba) kernels against their numpy paths, and the fallback when numba is missing."""
import sys
import warnings

import numpy as np
import pytest
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
    assert _compiled.compiled_kernels("metrics._fmi_numba", None, "FMI") is not None   # it did run compiled
    assert compiled == pytest.approx(_feature_mutual_information_numpy(a, b, f), rel=1e-13, abs=0)
    flat = np.full((5, 5), 7.0)
    assert feature_mutual_information(flat, flat + 1, flat) == _feature_mutual_information_numpy(flat, flat + 1, flat)


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
    eo = fft.ifft2(fft.fft2(x).astype(np.complex64)[None, None] * bank)
    compiled = phase.phase_congruency(x)
    assert _compiled.compiled_kernels("metrics._phase_numba", None, "Qp") is not None
    for ours, numpy_path in zip(compiled, phase._congruency_numpy(eo, bank0_energy, sum_an2, cross)):
        assert 0.05 < np.nanmax(numpy_path) and np.array_equal(ours, numpy_path, equal_nan=True)
