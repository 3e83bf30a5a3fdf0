"""Speed of CSMCA, NSST-PAPCNN and LLF-IOI on one 256x256 reference pair (run with --benchmark-only).

OMP_NUM_THREADS=2 python -m pytest tests/bench_csmca_nsst.py --benchmark-only -q
Octave CPU seconds for the same calls: ../shared/reference/baselines/timings.tsv.
"""
import numpy as np
import pytest
from PIL import Image

from methods.csmca import csmca_fusion
from methods.llf_ioi import llf_ioi_fusion
from methods.nsst_papcnn import nsst_papcnn_fusion

PAIR = "harvard_CT-MRI_16009"


@pytest.fixture(scope="module")
def pair(baseline_reference_dir):
    load = lambda s: np.asarray(Image.open(baseline_reference_dir / "inputs" / f"{PAIR}_{s}.png"), np.float32) / 255
    return load("A"), load("B"), baseline_reference_dir


def test_bench_csmca_authors_dictionaries(benchmark, pair):
    a, b, ref = pair
    benchmark.pedantic(csmca_fusion, args=(a, b), kwargs={"dictionaries": str(ref / "dictionaries")}, rounds=1, iterations=1)


def test_bench_nsst_papcnn(benchmark, pair):
    a, b, _ = pair
    benchmark.pedantic(nsst_papcnn_fusion, args=(a, b), rounds=2, iterations=1)


def test_bench_llf_ioi(benchmark, pair):
    a, b, _ = pair
    benchmark.pedantic(llf_ioi_fusion, args=(a, b), rounds=3, iterations=1)
