"""pytest-benchmark timings of one 256x256 reference pair for CSMCA and NSST-PAPCNN.

Run with ``OMP_NUM_THREADS=2 python -m pytest tests/bench_csmca.py --benchmark-only`` (pytest skips
benchmarks by default). The pair is the first Harvard CT-MRI test pair of the Octave reference set.
"""
import numpy as np
import pytest
from PIL import Image

from methods.csmca import csmca_fusion
from methods.nsst_papcnn import nsst_papcnn_fusion

PAIR = "harvard_CT-MRI_16009"


def _pair(reference_dir):
    return tuple(np.asarray(Image.open(reference_dir / "inputs" / f"{PAIR}_{side}.png"), np.float32) / 255
                 for side in ("A", "B"))


def test_bench_csmca_one_pair(benchmark, baseline_reference_dir):
    a, b = _pair(baseline_reference_dir)
    fused = benchmark.pedantic(csmca_fusion, args=(a, b), kwargs={"dictionaries": str(baseline_reference_dir / "dictionaries")},
                               rounds=1, iterations=1)
    assert fused.shape == a.shape and np.isfinite(fused).all()


def test_bench_nsst_papcnn_one_pair(benchmark, baseline_reference_dir):
    a, b = _pair(baseline_reference_dir)
    fused = benchmark.pedantic(nsst_papcnn_fusion, args=(a.astype(np.float64), b.astype(np.float64)),
                               rounds=3, iterations=1)
    assert fused.shape == a.shape and np.isfinite(fused).all()
