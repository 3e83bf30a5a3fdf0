"""pytest-benchmark: one 256x256 pair through the shipped dense-block GAN variants on 2 CPU threads, and
the inference kernels (Lmax into a buffer, convolution with fused ReLU, the reflection ring).

    python -m pytest tests/bench_densegan.py -o addopts="" --benchmark-enable -q

Skipped by default (``--benchmark-skip`` in pyproject's addopts, which ``-o addopts=""`` clears). The
timing depends on machine load; the table with MACs and parameters is ``python -m bench.speed.densegan``.
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


@pytest.fixture(scope="module")
def features():
    return torch.rand(2, 64, 256, 256).to(memory_format=torch.channels_last)


def test_lmax_into_256(benchmark, two_threads, features):
    from methods.densegan.inference import lmax_into
    out = torch.empty(1, 64, 256, 256).to(memory_format=torch.channels_last)
    benchmark.pedantic(lmax_into, args=(features, out), rounds=20, warmup_rounds=2)


def test_conv_valid_relu_64_to_64(benchmark, two_threads, features):
    from methods.densegan.inference import conv_valid
    conv = torch.nn.Conv2d(64, 64, 3)
    with torch.inference_mode():
        benchmark.pedantic(conv_valid, args=(features[:1], conv, True), rounds=10, warmup_rounds=2)


def test_reflect_border_64_channels(benchmark, two_threads):
    from methods.densegan.inference import reflect_border_
    padded = torch.rand(2, 64, 258, 258).to(memory_format=torch.channels_last)
    benchmark.pedantic(reflect_border_, args=(padded,), rounds=50, warmup_rounds=2)
