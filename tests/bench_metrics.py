"""pytest-benchmark timings of the metric suite on one 256x256 triple:
``python -m pytest tests/bench_metrics.py --benchmark-only`` (set OMP_NUM_THREADS=1 for one core)."""
import warnings

import numpy as np
import pytest
from scipy import ndimage

import metrics
from metrics.sets import EVALUATOR_PY


@pytest.fixture(scope="module")
def triple():
    rng = np.random.default_rng(0)
    a, b = (ndimage.gaussian_filter(rng.random((256, 256)), 2) for _ in range(2))
    a, b = ((x - x.min()) / (x.max() - x.min()) for x in (a, b))
    return a, b, np.maximum(a, b)


@pytest.mark.parametrize("name", list(metrics.METRICS))
def test_metric_speed(benchmark, triple, name):
    fn = metrics.get_metric(name).fn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = benchmark(fn, *triple)
    assert np.isfinite(value) or np.isnan(value)


def test_whole_suite_speed(benchmark, triple):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = benchmark(metrics.compute, *triple)
    assert set(values) == set(metrics.METRICS)




def test_evaluator_metrics_speed(benchmark, triple):
    """The 12 metrics of CDDFuse's Evaluator.py under its convention (issue target: 10x faster than it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = benchmark(metrics.compute, *triple, names=list(EVALUATOR_PY), convention="cddfuse")
    assert list(values) == list(EVALUATOR_PY)
