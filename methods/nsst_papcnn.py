"""NSST-PAPCNN: medical image fusion with a parameter-adaptive PCNN in the NSST domain.

M. Yin, X. Liu, Y. Liu, X. Chen, "Medical image fusion with parameter-adaptive pulse coupled neural
network in nonsubsampled shearlet transform domain", IEEE Trans. Instrum. Meas. 68(1):49-64, 2019.

A port of the authors' ``fuse_NSST_PAPCNN`` (yuliu316316/NSST-PAPCNN-Fusion @ 04454e9) that
reproduces their outputs (see ``tests/test_nsst_papcnn.py``):

1. ``nsst_dec2`` of both sources, 'maxflat' pyramid, ``dcomp = [3, 3, 4, 4]``,
   ``dsize = [8, 8, 16, 16]`` (:mod:`methods.transforms.nsst`).
2. Low-pass: keep the source with the larger ``WLE * WSEML`` (paper Sec. III-B, Eqs. 12-15; ties
   take A).
3. High-pass: the PA-PCNN of each sub-band (paper Eqs. 1-5 and the parameter rules 6-11) runs
   110 iterations on ``|coefficient|``; keep the coefficient whose neuron fired at least as often
   (``T_A >= T_B``).
4. ``nsst_rec2``.

All 2 x 48 PCNNs run as one (96, H, W) stack in single precision, in chunks of a few images (a chunk
stays in cache through its 110 iterations), the chunks shared among ``OMP_NUM_THREADS`` threads.
"""
from __future__ import annotations


import numpy as np

from common.errors import UserError
from methods.pcnn import from_padded_grid, neighbour_counts, to_padded_grid
from methods.registry import between, each, one_of, register_method, worker_threads
from methods.transforms.nsst import PYRAMID_FILTERS, nsst_dec2, nsst_rec2

_SMOOTH_121 = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) / 16


def pad_reflect_zero_corners(x: np.ndarray, n: int) -> np.ndarray:
    """The toolboxes' ``es2(x, n)``: mirror padding without repeating the edge, corner blocks zero."""
    padded = np.pad(x, ((0, 0),) * (x.ndim - 2) + ((n, n), (n, n)), mode="reflect")
    for rows in (slice(0, n), slice(-n, None)):
        for cols in (slice(0, n), slice(-n, None)):
            padded[..., rows, cols] = 0.0
    return padded


def _correlate_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'valid' 2-D correlation of a stack (..., H, W) with a small kernel, by shifted sums."""
    kh, kw = kernel.shape
    h, w = x.shape[-2] - kh + 1, x.shape[-1] - kw + 1
    out = np.zeros(x.shape[:-2] + (h, w))
    for i in range(kh):
        for j in range(kw):
            if kernel[i, j] != 0:
                out += kernel[i, j] * x[..., i:i + h, j:j + w]
    return out


def weighted_local_energy(x: np.ndarray) -> np.ndarray:
    """WLE (paper Eq. 12; authors' ``WLE.m``): 3x3 [1 2 1]^T[1 2 1]/16-weighted sum of x^2, ``es2`` padding."""
    return _correlate_valid(pad_reflect_zero_corners(x * x, 1), _SMOOTH_121)


def weighted_sum_modified_laplacian(x: np.ndarray) -> np.ndarray:
    """WSEML (paper Eqs. 13-14; authors' ``WSEML.m``).

    Eight-neighbour modified Laplacian (diagonals weighted 1/sqrt 2), root-mean over a 3x3 window,
    then smoothed by the 3x3 [1 2 1] kernel; every step pads symmetrically with edge repetition
    (MATLAB ``padarray(.., 'symmetric')`` / ``imfilter(.., 'symmetric')``).
    """
    pad = np.pad(x, ((0, 0),) * (x.ndim - 2) + ((1, 1), (1, 1)), mode="symmetric")
    centre = pad[..., 1:-1, 1:-1]
    h, w = x.shape[-2:]
    eml = np.zeros_like(x)
    for (di, dj), weight in (((-1, 0), 1.0), ((1, 0), 1.0), ((0, -1), 1.0), ((0, 1), 1.0),
                             ((-1, -1), 1 / np.sqrt(2)), ((1, 1), 1 / np.sqrt(2)),
                             ((1, -1), 1 / np.sqrt(2)), ((-1, 1), 1 / np.sqrt(2))):
        eml += weight * np.abs(centre - pad[..., 1 + di:1 + di + h, 1 + dj:1 + dj + w])
    eml = np.pad(eml, ((0, 0),) * (x.ndim - 2) + ((1, 1), (1, 1)), mode="symmetric")
    local = np.sqrt(_correlate_valid(eml, np.ones((3, 3))) / 9)
    local = np.pad(local, ((0, 0),) * (x.ndim - 2) + ((1, 1), (1, 1)), mode="symmetric")
    return _correlate_valid(local, _SMOOTH_121)


def matlab_graythresh(x: np.ndarray) -> np.ndarray:
    """MATLAB ``graythresh`` of each image in a stack (..., H, W): Otsu on 256 bins of ``im2uint8(x)``.

    ``im2uint8`` clips to [0, 1] and rounds ``255 x`` half away from zero. Ties in the between-class
    variance take the mean of the tied bins; a histogram with no finite maximum gives 0.
    """
    flat = x.reshape(-1, x.shape[-2] * x.shape[-1])
    # one buffer, updated in place: the stacks here are ~100 sub-bands of 256x256 doubles
    levels = np.clip(flat, 0.0, 1.0)
    levels *= 255
    levels += 0.5
    np.floor(levels, out=levels)
    levels += 256 * np.arange(flat.shape[0])[:, None]    # one histogram per image, in one bincount
    counts = np.bincount(levels.astype(np.intp).ravel(), minlength=256 * flat.shape[0])
    counts = counts.reshape(-1, 256).astype(np.float64)
    p = counts / counts.sum(axis=1, keepdims=True)
    omega = np.cumsum(p, axis=1)
    mu = np.cumsum(p * np.arange(1, 257), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_b2 = (mu[:, -1:] * omega - mu) ** 2 / (omega * (1 - omega))
    finite = np.where(np.isnan(sigma_b2), -np.inf, sigma_b2)
    maxval = finite.max(axis=1, keepdims=True)
    out = np.zeros(flat.shape[0])
    ok = np.isfinite(maxval[:, 0])
    ties = (finite == maxval) & ok[:, None]
    idx = (ties * np.arange(1, 257)).sum(axis=1)[ok] / ties.sum(axis=1)[ok]
    out[ok] = (idx - 1) / 255
    return out.reshape(x.shape[:-2])


def papcnn_parameters(stimulus: np.ndarray) -> dict[str, np.ndarray]:
    """Adaptive PA-PCNN parameters per image of a stack of ``|coefficients|`` (paper Eqs. 6-11).

    ``alpha_f = log10(1/std)`` (sample std), ``lambda = (S_max/S' - 1)/6``,
    ``V_E = exp(-alpha_f) + S_max/S'``, ``alpha_e = ln(V_E / (S' m))`` with Otsu threshold ``S'``,
    ``m = (1 - e^{-3 alpha_f})/(1 - e^{-alpha_f}) + (S_max/S' - 1) e^{-alpha_f}``; exactly as in
    the authors' ``highpass_fuse.m`` (IEEE inf/nan propagate as in MATLAB when ``S' = 0``).
    """
    flat = stimulus.reshape(stimulus.shape[:-2] + (-1,))
    std = flat.std(axis=-1, ddof=1)
    s_max = flat.max(axis=-1)
    s_otsu = matlab_graythresh(stimulus)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        alpha_f = np.log10(1.0 / std)
        ratio = s_max / s_otsu
        lam = (ratio - 1.0) / 6
        v_e = np.exp(-alpha_f) + ratio
        m = (1 - np.exp(-3 * alpha_f)) / (1 - np.exp(-alpha_f)) + (ratio - 1) * np.exp(-alpha_f)
        alpha_e = np.log(v_e / (s_otsu * m))
    return {"alpha_f": alpha_f, "alpha_e": alpha_e, "lambda": lam, "v_e": v_e}


def papcnn_firing_times(stimulus: np.ndarray, iterations: int = 110, workers: int | None = None) -> np.ndarray:
    """Firing counts of the PA-PCNN (paper Eqs. 1-5; authors' ``PA_PCNN.m``) for a stack (N, H, W).

    ``K = conv2(Y, W, 'same')`` with ``W = [.5 1 .5; 1 0 1; .5 1 .5]`` (zero padding);
    ``U = e^{-alpha_f} U + F (1 + lambda K)``; ``Y = U > E``; ``E = e^{-alpha_e} E + V_E Y``;
    ``T = T + Y``. Each image has its own parameters; the state is updated in the authors' order
    of operations but in single precision (the authors' code runs in double): on the ten reference
    pairs this changes at most 7 of the 6.3 million firing counts of a pair, at most one fusion
    decision, and no pixel of the uint8 output, for a third less time.

    Returns the counts ``T`` (N, H, W) as int8 (int32 beyond 127 iterations).

    ``workers`` threads (default: ``OMP_NUM_THREADS``, else 1) each run a share of the chunks; numpy
    releases the GIL inside the element-wise loops, so wall time drops while CPU time stays.
    """
    fire_count = np.empty(stimulus.shape, dtype=np.int8 if iterations <= 127 else np.int32)

    def run_chunk(start):
        # the parameters are per image, so each chunk computes its own (in its thread, while in cache)
        chunk = slice(start, start + _PCNN_CHUNK)
        params = papcnn_parameters(stimulus[chunk])
        with np.errstate(over="ignore", invalid="ignore"):
            decay_f = np.exp(-params["alpha_f"])
            decay_e = np.exp(-params["alpha_e"])
        fire_count[chunk] = _papcnn_run(stimulus[chunk], decay_f, decay_e, params["lambda"], params["v_e"],
                                        iterations)

    starts = range(0, stimulus.shape[0], _PCNN_CHUNK)
    workers = worker_threads() if workers is None else max(1, int(workers))
    if workers == 1 or len(starts) == 1:
        for start in starts:
            run_chunk(start)
    else:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run_chunk, starts))
    return fire_count


# Four 256x256 images a chunk: fewer numpy calls than one or two, and the working set still in L2/L3.
_PCNN_CHUNK = 4


def _papcnn_run(feed, decay_f, decay_e, lam, v_e, iterations):
    """Firing counts (N, H, W) of the PA-PCNN for a chunk of images; see :func:`papcnn_firing_times`.

    Every array lives on the images padded by one zero pixel, flattened, so each step is one
    contiguous ufunc call and neighbours are flat offsets (+-1, +-row length). The border never
    fires: its feed is 0, so U stays 0 (NaN when lambda = inf) while E stays >= 0 (or NaN), and
    U > E is false; the link of a border pixel (which wraps into the next row) is never used.
    """
    n, h, w = feed.shape
    row = w + 2
    size = (h + 2) * row
    length = n * size
    decay_f, decay_e, lam, v_e = (np.asarray(v, dtype=np.float32)[:, None] for v in (decay_f, decay_e, lam, v_e))
    half_lam = np.float32(0.5) * lam
    feed = to_padded_grid(feed, np.float32).reshape(n, size)
    u = np.zeros_like(feed)
    e = np.ones_like(feed)
    drive = np.empty_like(feed)
    threshold_step = np.empty_like(feed)
    # at most one spike per iteration: int8 holds the count for up to 127 iterations (110 in the paper)
    count = np.zeros(length, dtype=np.int8 if iterations <= 127 else np.int32)
    fired = np.zeros(length, dtype=np.int8)
    spike = fired.view(bool).reshape(n, size)
    vertical = np.zeros(length, dtype=np.int8)       # scratch of neighbour_counts
    mid = slice(row + 1, length - row - 1)           # the cells neighbour_counts counts for
    n4 = np.zeros(mid.stop - mid.start, dtype=np.int8)
    nd = np.zeros_like(n4)
    link2 = np.zeros(length, dtype=np.int8)          # 2 K, exact small integers
    link2_images = link2.reshape(n, size)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(iterations):
            # W = [1 2 1; 2 0 2; 1 2 1] / 2: 2 K = 2 (4-neighbours) + diagonal neighbours
            neighbour_counts(fired, row, vertical, n4, nd)
            np.add(n4, n4, out=link2[mid])
            link2[mid] += nd
            # U = e^{-alpha_f} U + F (1 + lambda K), in the authors' order of operations. (A plain
            # cast and then a product is faster than numpy's mixed-type product; the cast is exact.)
            np.copyto(drive, link2_images)
            drive *= half_lam
            drive += 1.0
            drive *= feed
            u *= decay_f
            u += drive
            np.greater(u, e, out=spike)
            # E = e^{-alpha_e} E + V_E Y (the product, not a masked add: V_E = inf gives inf * 0 = NaN
            # where Y = 0, as in MATLAB)
            e *= decay_e
            np.copyto(threshold_step, spike)
            threshold_step *= v_e
            e += threshold_step
            count += fired
    return from_padded_grid(count, n, h, w)


def fuse_lowpass(low_a: np.ndarray, low_b: np.ndarray) -> np.ndarray:
    """Low-pass rule (authors' ``lowpass_fuse.m``): A where ``WLE_A*WSEML_A >= WLE_B*WSEML_B``."""
    act_a = weighted_sum_modified_laplacian(low_a) * weighted_local_energy(low_a)
    act_b = weighted_sum_modified_laplacian(low_b) * weighted_local_energy(low_b)
    return np.where(act_a >= act_b, low_a, low_b)


def fuse_highpass(bands_a: np.ndarray, bands_b: np.ndarray, iterations: int = 110) -> np.ndarray:
    """High-pass rule (authors' ``highpass_fuse.m``) on stacks (N, H, W): A where ``T_A >= T_B``."""
    n = bands_a.shape[0]
    stack = np.empty((n + bands_b.shape[0],) + bands_a.shape[1:])
    np.abs(bands_a, out=stack[:n])
    np.abs(bands_b, out=stack[n:])
    times = papcnn_firing_times(stack, iterations)
    return np.where(times[:n] >= times[n:], bands_a, bands_b)


@register_method("nsst_papcnn", citation="M. Yin, X. Liu, Y. Liu, X. Chen, IEEE Trans. Instrum. Meas. 68(1):49-64, 2019",
                 allowed={"dcomp": each(between(0, 6)), "dsize": each(between(2)), "pyramid": one_of(PYRAMID_FILTERS),
                          "pcnn_iterations": between(1)})
def nsst_papcnn_fusion(a: np.ndarray, b: np.ndarray, *, dcomp: tuple = (3, 3, 4, 4),
                       dsize: tuple = (8, 8, 16, 16), pyramid: str = "maxflat",
                       pcnn_iterations: int = 110) -> np.ndarray:
    """NSST-PAPCNN fusion (Yin et al. 2019): NSST, WLE*WSEML low-pass rule, PA-PCNN high-pass rule.

    Parameters
    ----------
    a, b : (H, W) float images in [0, 1] (the authors feed ``double(u8)/255``).
    dcomp, dsize : NSST directions (``2**dcomp``) and shearing-filter sizes per level, coarse to fine.
    pyramid : a trous pyramid filters ('maxflat').
    pcnn_iterations : PA-PCNN iterations (110 in the paper).

    Returns
    -------
    (H, W) float32, unclipped (the authors' ``imgf`` before ``uint8``).
    """
    if int(pcnn_iterations) != pcnn_iterations or pcnn_iterations < 1:
        raise UserError(f"nsst_papcnn: pcnn_iterations must be a positive integer, got {pcnn_iterations!r}")
    dcomp, dsize = tuple(dcomp), tuple(dsize)
    stack = np.stack([np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)])
    coeffs, filters = nsst_dec2(stack, dcomp, dsize, pyramid)
    fused = [fuse_lowpass(coeffs[0][0], coeffs[0][1])]
    sizes = [c.shape[1] for c in coeffs[1:]]
    bands_a = np.concatenate([c[0] for c in coeffs[1:]])
    bands_b = np.concatenate([c[1] for c in coeffs[1:]])
    fused_bands = fuse_highpass(bands_a, bands_b, int(pcnn_iterations))
    fused += np.split(fused_bands, np.cumsum(sizes)[:-1])
    return nsst_rec2(fused, filters, pyramid).astype(np.float32)
