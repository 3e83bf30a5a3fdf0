"""Inference with a dense-block GAN generator: numpy in, numpy out.

``fuse_arrays(generator, a, b)`` is the one inference path: the registered methods, validation during
training and the benchmarks all call it.
"""
from __future__ import annotations

import numpy as np
import torch

from bench.errors import UserError
from methods.densegan.model import Generator


def _as_tensor(x: np.ndarray, device) -> torch.Tensor:
    return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, None]
            .to(device, memory_format=torch.channels_last))


def fuse_arrays(generator: Generator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """F = G(A, B) for grey float (H, W) sources in [0, 1]; float32 (H, W) in [0, 1]."""
    if a.shape != b.shape or a.ndim != 2:
        raise UserError(f"densegan: sources must be two grey images of one size, got {a.shape} and {b.shape}")
    if min(a.shape) < 2:
        raise UserError(f"densegan: a {a.shape[1]}x{a.shape[0]} image is too small (reflection padding needs "
                        f"at least 2 pixels along each side)")
    device = next(generator.parameters()).device
    with torch.inference_mode():
        fused = generator(_as_tensor(a, device), _as_tensor(b, device))[0, 0].float().cpu().numpy()
    return np.clip(fused, 0.0, 1.0).astype(np.float32)
