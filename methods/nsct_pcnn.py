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

import numpy as np
from scipy.ndimage import uniform_filter

from methods.mst import INPUT_SCALE, NSCT_LEVELS, parse_levels, fuse_on_input_scale
from methods.registry import register_method
from methods.transforms.nsct import NSCTCoefficients, nsct_decompose, nsct_reconstruct

# 3x3 linking weights: inverse distance to the centre (the usual PCNN synaptic weights)
LINK_WEIGHTS = np.array([[0.7071, 1.0, 0.7071], [1.0, 0.0, 1.0], [0.7071, 1.0, 0.7071]])


def modified_spatial_frequency(c: np.ndarray, window: int = 3) -> np.ndarray:
    """MSF = sqrt(RF^2 + CF^2 + DF^2) over a ``window``^2 neighbourhood.

    RF, CF: mean squared horizontal / vertical first differences; DF: mean squared differences
    along both diagonals, weighted by 1/sqrt(2)^2 (the diagonal step is sqrt(2) long).
    """
    pad = np.pad(c, 1, mode="edge")
    core = pad[1:-1, 1:-1]
    rf = (core - pad[1:-1, :-2]) ** 2
    cf = (core - pad[:-2, 1:-1]) ** 2
    df = 0.5 * ((core - pad[:-2, :-2]) ** 2 + (core - pad[:-2, 2:]) ** 2)
    # the box means of non-negative terms can round a hair below zero: clip before the square root
    return np.sqrt(np.maximum(sum(uniform_filter(v, window, mode="nearest") for v in (rf, cf, df)), 0.0))


def fuzzy_linking_strength(c: np.ndarray, window: int = 3) -> np.ndarray:
    """beta = Gaussian membership of the coefficient in its neighbourhood: exp(-(c - m)^2 / (2 s^2)).

    m, s: local mean and standard deviation (``window``^2). A coefficient typical of its
    neighbourhood links strongly (beta -> 1); an outlier (an edge or a feature) links weakly.
    """
    m = uniform_filter(c, window, mode="nearest")
    var = np.maximum(uniform_filter(c * c, window, mode="nearest") - m * m, 0.0)
    return np.exp(-((c - m) ** 2) / (2 * var + 1e-12))


def rpcnn_fire_counts(stimulus: np.ndarray, beta: np.ndarray, *, iterations: int = 200,
                      alpha_theta: float = 0.2, v_theta: float = 20.0) -> np.ndarray:
    """Firing counts of a reduced PCNN (feeding = stimulus, no feeding/linking decay).

    ``L[n] = W * Y[n-1]``, ``U[n] = S (1 + beta L[n])``, ``Y[n] = U[n] > theta[n-1]``,
    ``theta[n] = exp(-alpha_theta) theta[n-1] + v_theta Y[n]``, ``T = sum_n Y[n]``; the stimulus is
    normalised to [0, 1] by the caller so that one ``v_theta`` suits every sub-band. ``stimulus`` and
    ``beta`` are (H, W) or a stack (K, H, W) of independent networks (linking stays within a slice,
    zero outside the image). Computed in float32 (firing is a threshold test; counts are integers).
    """
    stimulus = np.asarray(stimulus, dtype=np.float32)
    beta = np.asarray(beta, dtype=np.float32)
    h, w = stimulus.shape[-2:]
    padded = np.zeros(stimulus.shape[:-2] + (h + 2, w + 2), dtype=np.float32)   # zero outside the image
    fired = padded[..., 1:-1, 1:-1]                  # view: writing it updates the padded array
    theta = np.ones_like(stimulus)
    counts = np.zeros_like(stimulus)
    decay = np.float32(np.exp(-alpha_theta))
    diagonal = np.float32(LINK_WEIGHTS[0, 0])
    for _ in range(iterations):                      # network time steps, all networks at once
        # L = W * Y as shifted sums of the padded firing map (4-neighbours weight 1, diagonals 1/sqrt 2)
        link = padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1]
        link += padded[..., 1:-1, :-2]
        link += padded[..., 1:-1, 2:]
        corners = padded[..., :-2, :-2] + padded[..., :-2, 2:]
        corners += padded[..., 2:, :-2]
        corners += padded[..., 2:, 2:]
        link += diagonal * corners
        link *= beta
        link += 1.0
        link *= stimulus
        np.greater(link, theta, out=fired, casting="unsafe")
        theta *= decay
        theta += np.float32(v_theta) * fired
        counts += fired
    return counts.astype(np.float64)


def pcnn_select_many(pairs, iterations: int = 200) -> list[np.ndarray]:
    """:func:`pcnn_select` for many coefficient pairs (each pair's two networks run as one stack)."""
    stimuli, betas = [], []
    for c1, c2 in pairs:
        s1, s2 = modified_spatial_frequency(c1), modified_spatial_frequency(c2)
        scale = max(s1.max(), s2.max(), 1e-12)       # one scale per pair: the comparison stays fair
        stimuli += [s1 / scale, s2 / scale]
        betas += [fuzzy_linking_strength(c1), fuzzy_linking_strength(c2)]
    # one pair's networks at a time: the per-step arrays then stay in cache (~4x faster than one stack)
    counts = [rpcnn_fire_counts(np.stack(stimuli[k:k + 2]), np.stack(betas[k:k + 2]), iterations=iterations)
              for k in range(0, len(stimuli), 2)]
    counts = np.concatenate(counts)
    return [np.where(counts[2 * k] >= counts[2 * k + 1], c1, c2) for k, (c1, c2) in enumerate(pairs)]


def pcnn_select(c1: np.ndarray, c2: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Keep the coefficient whose RPCNN neuron fired more (A on ties); both stimuli share one scale."""
    return pcnn_select_many([(c1, c2)], iterations)[0]


def nsct_pcnn_fuse(a, b, levels=NSCT_LEVELS, iterations: int = 200) -> np.ndarray:
    ca, cb = nsct_decompose(a, levels), nsct_decompose(b, levels)
    pairs = [(ca.low, cb.low)] + [(x, y) for la, lb in zip(ca.bands, cb.bands) for x, y in zip(la, lb)]
    fused = pcnn_select_many(pairs, iterations)
    bands, k = [], 1
    for level in ca.bands:
        bands.append(fused[k:k + len(level)])
        k += len(level)
    return nsct_reconstruct(NSCTCoefficients(fused[0], bands))


@register_method("nsct_pcnn", citation="S. Das, M. K. Kundu, \"A neuro-fuzzy approach for medical image fusion\", "
                                       "IEEE Trans. Biomed. Eng. 60(12):3347-3353, 2013")
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
