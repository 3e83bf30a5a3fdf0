"""NSCT + reduced pulse-coupled neural network (RPCNN) fusion, after Das & Kundu (2013).

S. Das, M. K. Kundu, "A neuro-fuzzy approach for medical image fusion", IEEE Trans. Biomed. Eng.
60(12):3347-3353, 2013.

Scheme of the paper, on top of this project's NSCT (``methods.transforms.nsct``): every sub-band of
both sources (low-pass and all directional band-pass sub-bands) drives an RPCNN whose external
stimulus is the modified spatial frequency (MSF) of the coefficients in a 3x3 window and whose
linking strength is set per neuron by a fuzzy membership of the coefficient in its 3x3
neighbourhood; the fused coefficient is the one whose neuron fired more often.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from methods.mst import INPUT_SCALE, NSCT_ALLOWED, NSCT_LEVELS, parse_levels, fuse_on_input_scale
from methods.pcnn import from_padded_grid, neighbour_counts, to_padded_grid
from methods.registry import between, register_method, worker_threads
from methods.transforms.nsct import nsct_decompose_levels, nsct_reconstruct_levels

# 3x3 linking weights: inverse distance to the centre (the usual PCNN synaptic weights)
LINK_WEIGHTS = np.array([[0.7071, 1.0, 0.7071], [1.0, 0.0, 1.0], [0.7071, 1.0, 0.7071]])


def box_mean_nearest(x: np.ndarray, window: int = 3) -> np.ndarray:
    """Mean of each ``window`` x ``window`` neighbourhood, edges replicated (scipy's ``mode="nearest"``;
    GFF's ``box_mean`` instead averages over the part of the window inside the image).

    Summed directly, ``window`` shifted slices per axis: about 4x faster than scipy's
    ``uniform_filter`` on a 256x256 float64 image (its running sum is a sequential loop along each
    line), and a sum of non-negative terms stays non-negative (the running sum can round below zero).
    """
    r = window // 2
    padded = np.pad(x, r, mode="edge")
    h, w = x.shape
    rows = padded[:h].copy()
    for k in range(1, window):
        rows += padded[k:k + h]
    out = rows[:, :w].copy()
    for k in range(1, window):
        out += rows[:, k:k + w]
    out *= 1.0 / (window * window)
    return out


def modified_spatial_frequency(c: np.ndarray, window: int = 3) -> np.ndarray:
    """MSF = sqrt(RF^2 + CF^2 + DF^2) over a ``window``^2 neighbourhood.

    RF, CF: mean squared horizontal / vertical first differences; DF: mean squared differences
    along both diagonals, weighted by 1/sqrt(2)^2 (the diagonal step is sqrt(2) long). The three
    means share one window, so their sum is one box mean of the summed squared differences.
    """
    pad = np.pad(c, 1, mode="edge")
    core = pad[1:-1, 1:-1]
    activity = (core - pad[1:-1, :-2]) ** 2
    activity += (core - pad[:-2, 1:-1]) ** 2
    activity += 0.5 * ((core - pad[:-2, :-2]) ** 2 + (core - pad[:-2, 2:]) ** 2)
    return np.sqrt(box_mean_nearest(activity, window))


def fuzzy_linking_strength(c: np.ndarray, window: int = 3) -> np.ndarray:
    """beta = Gaussian membership of the coefficient in its neighbourhood: exp(-(c - m)^2 / (2 s^2)).

    m, s: local mean and standard deviation (``window``^2). A coefficient typical of its
    neighbourhood links strongly (beta -> 1); an outlier (an edge or a feature) links weakly.
    """
    m = box_mean_nearest(c, window)
    var = np.maximum(box_mean_nearest(c * c, window) - m * m, 0.0)
    deviation = c - m
    return np.exp(-(deviation * deviation) / (2 * var + 1e-12))


def rpcnn_fire_counts(stimulus: np.ndarray, beta: np.ndarray, *, iterations: int = 200,
                      alpha_theta: float = 0.2, v_theta: float = 20.0) -> np.ndarray:
    """Firing counts of a reduced PCNN (feeding = stimulus, no feeding/linking decay).

    ``L[n] = W * Y[n-1]``, ``U[n] = S (1 + beta L[n])``, ``Y[n] = U[n] > theta[n-1]``,
    ``theta[n] = exp(-alpha_theta) theta[n-1] + v_theta Y[n]``, ``theta[0] = 1``, ``T = sum_n Y[n]``;
    ``W``: 1 for the 4-neighbours, ``LINK_WEIGHTS[0, 0]`` (1/sqrt 2) for the diagonals, zero outside
    the image. The stimulus is normalised to [0, 1] by the caller so that one ``v_theta`` suits
    every sub-band. ``stimulus`` and ``beta`` are (H, W) or a stack (K, H, W) of independent
    networks (linking stays within a slice).

    Notes
    -----
    float32, every step in this order: ``L = n4 + (w_diag nd)`` (``n4``, ``nd``: firing 4- and
    diagonal neighbours), ``U = ((L beta) + 1) S``, ``theta = (theta e^{-alpha_theta}) + v_theta Y``.
    The neighbour counts are small integers, summed exactly in int8 and converted exactly, so the
    spikes are those of the plain float32 iteration (the tests pin this against a straightforward
    loop). Speed: all networks live in one flat zero-padded buffer (rows of ``W + 2``), so each
    neighbour sum is one add of two shifted contiguous slices (the pad never fires: its ``S`` is 0);
    spikes and counts are one byte a neuron, and every step works in preallocated arrays.
    """
    stimulus, beta = np.asarray(stimulus), np.asarray(beta)   # cast to float32 on the grid below
    if stimulus.shape != beta.shape:
        raise ValueError(f"stimulus {stimulus.shape} and beta {beta.shape} differ in shape")
    image_shape = stimulus.shape
    n, h, w = stimulus.reshape((-1,) + image_shape[-2:]).shape
    row = w + 2                                        # padded row: neighbours at +-1 and +-row
    size = n * (h + 2) * row
    first, stop = row + 1, size - row - 1              # flat span holding every interior neuron
    s = to_padded_grid(stimulus.reshape(n, h, w), np.float32)[first:stop]
    b = to_padded_grid(beta.reshape(n, h, w), np.float32)[first:stop]
    decay = np.float32(np.exp(-alpha_theta))
    diagonal = np.float32(LINK_WEIGHTS[0, 0])
    v_theta = np.float32(v_theta)
    spikes = np.zeros(size, dtype=np.int8)             # Y[n-1] on the padded grid, 0 / 1
    spiked = spikes[first:stop].view(np.uint8)         # this step's spikes, as 0 / 1 bytes
    fired = spiked.view(bool)                          # U > theta is written straight into it
    vertical = np.zeros(size, dtype=np.int8)           # scratch of neighbour_counts
    n4 = np.empty(stop - first, dtype=np.int8)
    nd = np.empty(stop - first, dtype=np.int8)
    drive = np.empty(stop - first, dtype=np.float32)
    as_float = np.empty(stop - first, dtype=np.float32)   # exact int8 -> float32 copies
    theta = np.ones(stop - first, dtype=np.float32)
    counts = np.zeros(stop - first, dtype=np.uint8 if iterations < 256 else np.int32)
    for _ in range(iterations):
        neighbour_counts(spikes, row, vertical, n4, nd)
        # L = n4 + w_diag nd; a cast copy then a float32 op beats numpy's mixed-type loops
        np.copyto(drive, nd)
        drive *= diagonal
        np.copyto(as_float, n4)
        drive += as_float
        drive *= b                                     # U = (L beta + 1) S
        drive += np.float32(1)
        drive *= s
        np.greater(drive, theta, out=fired)
        counts += spiked
        theta *= decay
        np.copyto(as_float, spiked)
        as_float *= v_theta
        theta += as_float
    grid = np.zeros(size, dtype=np.float64)
    grid[first:stop] = counts
    return from_padded_grid(grid, n, h, w).reshape(image_shape)


# Coefficient pairs (six networks) run as one stack per task. With two threads, one pair a task lost
# ~15 % of the wall time to handing the GIL back and forth (each step is 15 short numpy calls); three
# pairs make every call three times longer for the same arithmetic. Stacks of 8-16 networks fall out
# of cache (1.3-2x slower per network).
PAIRS_PER_TASK = 3


def pcnn_select_group(pairs, iterations: int = 200) -> list[np.ndarray]:
    """For each coefficient pair (C_A, C_B): keep the coefficient whose RPCNN neuron fired more (A on
    ties), both stimuli on one scale. All the pairs' networks run as one stack (see ``PAIRS_PER_TASK``);
    they do not interact, so each pair's result is the same as alone."""
    stimuli, betas = [], []
    for c1, c2 in pairs:
        s1, s2 = modified_spatial_frequency(c1), modified_spatial_frequency(c2)
        scale = max(s1.max(), s2.max(), 1e-12)   # one scale per pair: the comparison stays fair
        stimuli += [s1 / scale, s2 / scale]
        betas += [fuzzy_linking_strength(c1), fuzzy_linking_strength(c2)]
    counts = rpcnn_fire_counts(np.stack(stimuli), np.stack(betas), iterations=iterations)
    return [np.where(counts[2 * k] >= counts[2 * k + 1], c1, c2) for k, (c1, c2) in enumerate(pairs)]


def pcnn_select(c1: np.ndarray, c2: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Keep the coefficient whose RPCNN neuron fired more (A on ties); both stimuli share one scale."""
    return pcnn_select_group([(c1, c2)], iterations)[0]


class _Done:
    """``pool.submit`` for one thread: runs the task at once; ``result()`` returns its value."""

    def __init__(self, fn, *args):
        self.value = fn(*args)

    def result(self):
        return self.value


def nsct_pcnn_fuse(a, b, levels=NSCT_LEVELS, iterations: int = 200) -> np.ndarray:
    """NSCT of both sources, RPCNN selection of every sub-band pair, inverse NSCT.

    This thread decomposes A and B level by level, finest first, and hands each level's pairs (in
    tasks of ``PAIRS_PER_TASK``, single pairs for the two coarsest) to a pool of
    :func:`methods.registry.worker_threads` threads as soon as they exist, so the RPCNNs of the fine
    levels run while the coarse ones are being decomposed; it then inverts each level's directional
    filter bank (and applies its pyramid synthesis filter) as soon as that level's selections are done.
    With one thread the tasks run in turn. Either way every result is the same, bit for bit.
    """
    workers, n_levels = worker_threads(), len(levels)
    per_level, tasks, pending = [], [], []
    with ThreadPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        submit = pool.submit if pool else _Done
        levels_a, levels_b = nsct_decompose_levels(a, levels), nsct_decompose_levels(b, levels)
        for k, (level_a, level_b) in enumerate(zip(levels_a, levels_b)):
            pairs = list(zip(level_a, level_b)) if k < n_levels else [(level_a, level_b)]  # last: low-pass
            per_level.append(pairs)
            pending += pairs
            # the coarsest directional level and the low-pass go one pair a task: the last tasks are then
            # short, so the thread that finishes first waits less for the other (~5 % of the wall time)
            size = 1 if k >= n_levels - 1 else PAIRS_PER_TASK
            while len(pending) >= size:
                group, pending = pending[:size], pending[size:]
                tasks.append(submit(pcnn_select_group, group, iterations))

        def fused_levels():                      # finest first, low-pass last, waiting on the tasks in turn
            fused = (f for task in tasks for f in task.result())
            for pairs in per_level[:-1]:
                yield [next(fused) for _ in pairs]
            yield next(fused)
        return nsct_reconstruct_levels(fused_levels())


@register_method("nsct_pcnn", citation="S. Das, M. K. Kundu, \"A neuro-fuzzy approach for medical image fusion\", "
                                       "IEEE Trans. Biomed. Eng. 60(12):3347-3353, 2013",
                 allowed={**NSCT_ALLOWED, "iterations": between(1)})
def nsct_pcnn_fusion(a: np.ndarray, b: np.ndarray, *, levels: tuple = NSCT_LEVELS, iterations: int = 200,
                     input_scale: float = INPUT_SCALE) -> np.ndarray:
    """NSCT + RPCNN fusion (Das & Kundu 2013): MSF stimulus, fuzzy linking strength, max firing count.

    Parameters
    ----------
    a, b : (H, W) float images in [0, 1].
    levels : NSCT directional levels per pyramid level, coarse to fine (tuple or "2,3,3,4").
    iterations : RPCNN time steps.
    input_scale : the images are fused as ``input_scale * x`` (0..255, as the MST methods).

    Returns
    -------
    (H, W) float32 fused image.

    Notes
    -----
    Per sub-band ``C`` (the low-pass and every directional band of both sources), with 3x3 windows:

    * stimulus ``S = MSF(C) / max(MSF(C_A), MSF(C_B))``, ``MSF = sqrt(RF^2 + CF^2 + DF^2)`` (local mean
      squared row, column and diagonal differences, diagonals weighted 1/2);
    * linking strength ``beta = exp(-(C - mean_3x3 C)^2 / (2 var_3x3 C))`` (Gaussian membership);
    * RPCNN: ``L[n] = W * Y[n-1]`` (W: 1 for 4-neighbours, 1/sqrt(2) diagonal), ``U[n] = S (1 + beta
      L[n])``, ``Y[n] = [U[n] > theta[n-1]]``, ``theta[n] = exp(-alpha_theta) theta[n-1] + V_theta
      Y[n]``, ``theta[0] = 1``; firing count ``T = sum_n Y[n]``;
    * fused coefficient: ``C_A`` where ``T_A >= T_B``, else ``C_B``; inverse NSCT.

    The RPCNN constants (``alpha_theta = 0.2``, ``V_theta = 20``, 200 iterations, 3x3 windows,
    inverse-distance linking weights) and the NSCT (``'pyrexc'`` + ``'vk'``, levels [2, 3, 3, 4])
    are this implementation's choices; they and the paper's equation numbering were not checked
    against the paper's text, and no reference output exists (tests are property tests).
    """
    return fuse_on_input_scale(lambda x, y: nsct_pcnn_fuse(x, y, parse_levels(levels), iterations), a, b, input_scale)
