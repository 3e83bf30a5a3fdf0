"""Training pairs for the dense-block GAN: registry datasets (lazily loaded) or tiny synthetic pairs.

Every sample is (a, b, detail) float32 tensors (1, P, P) in [0, 1]: the luma of each source (PET/SPECT
are RGB; we train on their BT.601 Y, as ``methods.registry.fuse`` fuses them) and the dataset's
detail-rich source (``detail`` in datasets.yaml) for the discriminator. Augmentation (random patch,
flips, 90-degree rotations) draws from a generator seeded by (seed, epoch, index), so a sample does not
depend on worker processes, ranks or where a run was resumed. A pair's luma images are decoded once and
kept (``cache: true``, the default): an epoch of random patches then costs no PNG decoding, which was a
large share of a CPU training step (760 Harvard pairs take about 400 MB as float32).
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from common.colour import luma
from common.errors import UserError


def synthetic_pair(index: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tiny deterministic test pair: smooth blobs (A, 'functional') and sharp rectangles (B, 'structural')."""
    rng = np.random.default_rng((seed, index))
    yy, xx = np.mgrid[0:size, 0:size] / size
    a = np.zeros((size, size))
    for cx, cy, r in rng.uniform(0.2, 0.8, (3, 3)):
        a += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (0.05 * r))
    b = np.zeros((size, size))
    for x0, y0, x1, y1 in np.sort(rng.uniform(0, 1, (4, 2, 2)), axis=1).reshape(4, 4)[:, [0, 2, 1, 3]]:
        b[(xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)] += 0.4
    return (a / a.max()).astype(np.float32), np.clip(b, 0, 1).astype(np.float32)


class FusionPairs(Dataset):
    """Pairs from ``data:`` config: ``datasets: [names]`` resolved by ``datasets`` (bench's dataset registry,
    ``Registry().dataset``, which the ``bench`` commands pass in), or ``synthetic: {pairs, size}``."""

    def __init__(self, cfg: dict, seed: int = 0, datasets=None):
        self.patch = cfg.get("patch_size")
        self.flips = bool(cfg.get("flips", True))
        self.rot90 = bool(cfg.get("rot90", False))
        self.seed = seed
        self.epoch = 0
        # random patches drawn per pair and epoch: with 64-px patches of 256-px slices one patch per pair
        # would make an epoch a few dozen steps; `patches_per_pair` makes an epoch N such draws per pair
        per_pair = cfg.get("patches_per_pair")
        self.patches_per_pair = 1 if per_pair is None else int(per_pair)
        if self.patches_per_pair < 1:
            raise UserError(f"training config: data.patches_per_pair must be at least 1, got {self.patches_per_pair}")
        self.cache: dict[int, np.ndarray] | None = {} if cfg.get("cache", True) else None
        self.items: list = []          # (loader, detail) with loader() -> (a, b)
        if cfg.get("synthetic"):
            n, size = int(cfg["synthetic"]["pairs"]), int(cfg["synthetic"]["size"])
            self.items = [(lambda i=i: synthetic_pair(i, size, seed), "b") for i in range(n)]
        else:
            names = cfg.get("datasets") or []
            if isinstance(names, str):
                names = [n for n in names.split(",") if n]
            if not names:
                raise UserError("training config: data.datasets lists no dataset (and no data.synthetic)")
            if datasets is None:
                raise UserError("training config: data.datasets names registry datasets, but no dataset registry "
                                "was given (train through python -m bench train)")
            for name in names:
                ds = datasets(name)
                self.items += [(p.load, ds.detail) for p in ds.pairs(cfg.get("max_pairs_per_dataset"))]
        if not self.items:
            raise UserError("training config: the training data holds no pairs")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items) * self.patches_per_pair

    def __getitem__(self, index: int):
        stack = self.sources(index % len(self.items))
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.patch:
            h, w = stack.shape[1:]
            if self.patch > min(h, w):
                raise UserError(f"patch_size {self.patch} is larger than a {w}x{h} training image")
            y, x = rng.integers(0, h - self.patch + 1), rng.integers(0, w - self.patch + 1)
            stack = stack[:, y:y + self.patch, x:x + self.patch]
        if self.flips:
            if rng.random() < 0.5:
                stack = stack[:, :, ::-1]
            if rng.random() < 0.5:
                stack = stack[:, ::-1, :]
        if self.rot90:
            stack = np.rot90(stack, k=int(rng.integers(0, 4)), axes=(1, 2))
        t = torch.from_numpy(np.ascontiguousarray(stack)).unsqueeze(1)      # (2, 1, P, P)
        return t[0], t[1], t[1] if self.items[index % len(self.items)][1] == "b" else t[0]

    def sources(self, index: int) -> np.ndarray:
        """(2, H, W) float32: the luma of pair ``index``'s two sources, decoded once when caching."""
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        a, b = (luma(x).astype(np.float32) for x in self.items[index][0]())
        if a.shape != b.shape:
            raise UserError(f"training pair {index}: sources differ in size ({a.shape} vs {b.shape})")
        stack = np.stack([a, b])
        stack.setflags(write=False)
        if self.cache is not None:
            self.cache[index] = stack
        return stack
