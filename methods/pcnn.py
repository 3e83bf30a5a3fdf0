"""The padded grid and neighbour sums shared by the two PCNN fusion methods (NSCT-PCNN, NSST-PAPCNN).

Both networks keep their spikes on a flat int8 grid: the images of a stack, each padded by one zero
pixel on every side, flattened one after another. A neighbour is then a fixed flat offset (+-1 along
a row, +-``row`` across rows, ``row`` = padded width), so a neighbour sum over the whole stack is one
add of two shifted contiguous slices, and the padding (which never fires) supplies the zero border.
The sums are small integers: exact in int8, and exact again when cast to float32.
"""
from __future__ import annotations

import numpy as np


def neighbour_counts(spikes: np.ndarray, row: int, vertical: np.ndarray, n4: np.ndarray, nd: np.ndarray) -> None:
    """Firing 4-neighbours (``n4``) and diagonal neighbours (``nd``) of the cells ``row + 1 ..
    spikes.size - row - 2`` of a flat padded grid of 0/1 int8 ``spikes``.

    ``vertical`` (``spikes``' size, int8) is scratch: cell i gets Y[i - row] + Y[i + row], from which
    the diagonal count is vertical[i - 1] + vertical[i + 1]. ``n4`` and ``nd`` (int8, length
    ``spikes.size - 2 row - 2``) are written in place. Four int8 passes; cells that wrap across a row
    end are padding and get meaningless counts, which their callers never read.
    """
    size = spikes.size
    first, stop = row + 1, size - row - 1
    np.add(spikes[:size - 2 * row], spikes[2 * row:], out=vertical[row:size - row])
    np.add(vertical[first - 1:stop - 1], vertical[first + 1:stop + 1], out=nd)
    np.add(spikes[first - 1:stop - 1], spikes[first + 1:stop + 1], out=n4)
    n4 += vertical[first:stop]


def to_padded_grid(images: np.ndarray, dtype) -> np.ndarray:
    """A stack (N, H, W) of images on the flat padded grid: each image inside a one-pixel zero border,
    the N padded images one after another, flattened (length N (H + 2) (W + 2), rows of W + 2)."""
    n, h, w = images.shape
    grid = np.zeros((n, h + 2, w + 2), dtype=dtype)
    grid[:, 1:-1, 1:-1] = images
    return grid.reshape(-1)


def from_padded_grid(grid: np.ndarray, n: int, h: int, w: int) -> np.ndarray:
    """The (N, H, W) interior of a flat padded grid (a view; see :func:`to_padded_grid`)."""
    return grid.reshape(n, h + 2, w + 2)[:, 1:-1, 1:-1]
