"""pytest-benchmark: one 256x256 pair through the shipped dense-block GAN variants on 2 CPU threads.

    python -m pytest tests/bench_densegan.py -o addopts="" --benchmark-enable -q

Skipped by default (``--benchmark-skip`` in pyproject's addopts, which ``-o addopts=""`` clears). The
timing depends on machine load; the table with MACs and parameters is ``python -m bench.densegan_speed``.
"""
import numpy as np
import pytest
import torch

from methods.densegan import VARIANTS, WEIGHTS_DIR, fuse_with_generator


@pytest.fixture
def two_threads():
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fuse_256_pair(benchmark, two_threads, name):
    weights = WEIGHTS_DIR / f"{name}.safetensors"
    if not weights.is_file():
        pytest.skip(f"no shipped weights {weights}")
    rng = np.random.default_rng(0)
    a, b = rng.random((256, 256), dtype=np.float32), rng.random((256, 256), dtype=np.float32)
    fuse_with_generator(a, b, weights)           # load and warm up outside the timed rounds
    fused = benchmark.pedantic(fuse_with_generator, args=(a, b, weights), rounds=10, warmup_rounds=1)
    assert fused.shape == (256, 256)
