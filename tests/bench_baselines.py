"""Speed of the MST transforms and of Batch-OMP on 256x256 images (run with --benchmark-only).

OMP_NUM_THREADS=2 python -m pytest tests/bench_baselines.py --benchmark-only -q
Whole methods, per pair, against the Octave timings: ``python -m bench.speed.baseline``.
"""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from methods.sr import batch_omp, extract_patches, load_dictionary, normalise_columns
from methods.transforms import pyramid
from methods.transforms.dtcwt import dtcwt_decompose, dtcwt_reconstruct
from methods.transforms.dwt import dwt_decompose, dwt_reconstruct
from methods.transforms.nsct import nsct_decompose, nsct_reconstruct
from methods.transforms.rules import select_max_abs_consistent


@pytest.fixture(scope="module")
def image():
    return 255 * gaussian_filter(np.random.default_rng(0).random((256, 256)), 1.5)


TRANSFORMS = {
    "laplacian": lambda x: pyramid.laplacian_reconstruct(pyramid.laplacian_pyramid(x, 4)),
    "ratio": lambda x: pyramid.ratio_reconstruct(pyramid.ratio_pyramid(x + 1, 4)),
    "dwt_db1": lambda x: dwt_reconstruct(dwt_decompose(x, 4)),
    "dtcwt": lambda x: dtcwt_reconstruct(dtcwt_decompose(x, 4)),
    "nsct_2334": lambda x: nsct_reconstruct(nsct_decompose(x, (2, 3, 3, 4))),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_bench_transform_round_trip(benchmark, image, name):
    out = benchmark(TRANSFORMS[name], image)
    assert out.shape == image.shape


def test_bench_selc_rule(benchmark, image):
    benchmark(select_max_abs_consistent, image, image[::-1])


def test_bench_batch_omp_one_image(benchmark, image):
    d = normalise_columns(load_dictionary())
    patches = extract_patches(image, 8, 2)
    codes = benchmark.pedantic(batch_omp, args=(d, patches - patches.mean(axis=0), 0.1), rounds=1, iterations=1)
    assert codes.shape == (256, patches.shape[1])


def test_bench_nsct_pcnn_one_pair(benchmark, image):
    """NSCT-PCNN on one 256x256 pair (74 RPCNNs x 200 steps); threads follow OMP_NUM_THREADS."""
    import methods

    a = np.clip(image / 255, 0, 1).astype(np.float32)
    fused = benchmark.pedantic(methods.fuse, args=(a, a[::-1].copy(), "nsct_pcnn"), rounds=3, iterations=1)
    assert fused.shape == a.shape and np.isfinite(fused).all()
