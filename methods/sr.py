"""Sparse-representation fusion (Yang & Li 2010) with a vectorised Batch-OMP and dictionary learning.

``sparse_fusion`` follows the MST-SR toolbox function of the same name (Liu et al. 2015): the
dictionary's columns are normalised, 8x8 patches are taken with a step of ``8 - overlap`` pixels,
each patch's mean is removed, both patches are coded by error-constrained OMP (Batch-OMP, Rubinstein
et al. 2008, as ``omp2``), the code with the larger l1 norm wins (B only if strictly larger), the
winning patch's mean is added back, and overlapping patches are averaged. Pixels no patch covers
(only when ``(size - 8)`` is odd for a step of 2) take the mean of A and B.

Scale: the authors feed ``double(uint8)`` images (0..255) and stop OMP when the residual l2 norm is
<= ``epsilon = 0.1`` on that scale. The registered ``sr`` method takes [0, 1] images and multiplies
them by ``input_scale = 255`` before coding, so its result matches the authors' for any input.

References
----------
B. Yang, S. Li, "Multifocus image fusion and restoration with sparse representation", IEEE Trans.
Instrum. Meas. 59(4):884-892, 2010.
R. Rubinstein, M. Zibulevsky, M. Elad, "Efficient implementation of the K-SVD algorithm using batch
orthogonal matching pursuit", Technion CS-2008-08, 2008 (Batch-OMP, Sec. 2; the ``omp2`` box).
M. Aharon, M. Elad, A. Bruckstein, "K-SVD: an algorithm for designing overcomplete dictionaries for
sparse representation", IEEE Trans. Signal Process. 54(11):4311-4322, 2006.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.errors import UserError
from methods.registry import register_method

DICTIONARY_DIR = Path(__file__).resolve().parent / "dictionaries"
DEFAULT_DICTIONARY = DICTIONARY_DIR / "sr_D_64x256.npz"
INPUT_SCALE = 255.0  # the authors' images are double(uint8); OMP's epsilon is absolute on that scale
SR_CITATION = ("B. Yang, S. Li, \"Multifocus image fusion and restoration with sparse representation\", "
               "IEEE Trans. Instrum. Meas. 59(4):884-892, 2010")


def to_input_scale(x: np.ndarray, scale: float = INPUT_SCALE) -> np.ndarray:
    """``scale * x`` in float64, with values within 1e-4 of an integer snapped to it.

    An 8-bit image read as float32 ``k / 255`` comes back as ``k`` exactly -- the ``double(uint8)``
    the authors' code sees. Exactness matters: integer inputs give exact coefficient ties between A
    and B, and the selection rules break ties in a fixed direction. Other values move by < 1e-4.
    """
    y = np.asarray(x, dtype=np.float64) * scale
    nearest = np.round(y)
    return np.where(np.abs(y - nearest) < 1e-4, nearest, y)


# ----------------------------------------------------------------------------------------------
# dictionaries
# ----------------------------------------------------------------------------------------------

def load_dictionary(path: str | Path | None = None) -> np.ndarray:
    """Load a (patch_dim, n_atoms) dictionary: a MATLAB ``.mat`` (variable ``D``) or ``.npz`` (key ``D``).

    ``None`` loads the project's own dictionary, ``methods/dictionaries/sr_D_64x256.npz``.
    """
    path = Path(path) if path is not None else DEFAULT_DICTIONARY
    if not path.is_file():
        raise UserError(f"{path}: dictionary file not found (.mat with variable D, or .npz with key D)")
    if path.suffix.lower() == ".mat":
        from scipy.io import loadmat
        content = loadmat(path)
    elif path.suffix.lower() == ".npz":
        content = dict(np.load(path))
    else:
        raise UserError(f"{path}: dictionary must be a .mat or .npz file")
    if "D" not in content:
        raise UserError(f"{path}: no variable 'D' in the dictionary file (found: {', '.join(k for k in content if not k.startswith('__'))})")
    d = np.asarray(content["D"], dtype=np.float64)
    side = int(round(np.sqrt(d.shape[0]))) if d.ndim == 2 else 0
    if d.ndim != 2 or side * side != d.shape[0]:
        raise UserError(f"{path}: D must be (patch_side^2, n_atoms), got shape {d.shape}")
    return d


def normalise_columns(d: np.ndarray) -> np.ndarray:
    """Unit l2 norm per atom (``sparse_fusion``'s first step)."""
    return d / np.sqrt(np.sum(d * d, axis=0, keepdims=True))


# ----------------------------------------------------------------------------------------------
# Batch-OMP
# ----------------------------------------------------------------------------------------------

def batch_omp(d: np.ndarray, x: np.ndarray, epsilon: float, *, max_atoms: int | None = None,
              gram: np.ndarray | None = None, chunk: int = 2048) -> np.ndarray:
    """Error-constrained OMP for many signals at once: ``min |g|_0  s.t.  |x - D g|_2 <= epsilon``.

    Parameters
    ----------
    d : (n, m) array
        Dictionary with unit-norm columns.
    x : (n, L) array
        Signals as columns.
    epsilon : float
        Target residual l2 norm (absolute).
    max_atoms : int, optional
        Atom limit per signal; default ``n`` (as ``omp2`` with no ``maxatoms``).
    gram : (m, m) array, optional
        ``D' D``; computed if absent.
    chunk : int
        Signals coded together (memory ~ ``chunk * m * max_atoms * 8`` bytes).

    Returns
    -------
    (m, L) array of coefficients.

    Notes
    -----
    Follows ``ompcore.c`` of the ompbox (Batch-OMP, Rubinstein et al. 2008, Alg. 2): atom
    ``k = argmax |alpha|`` (first on ties); stop when the residual energy ``<= epsilon^2``, when
    ``max_atoms`` atoms are chosen, when an atom is chosen twice or ``alpha_k^2 < 1e-14``, or when the
    new Cholesky pivot ``1 - |w|^2 <= 1e-14`` (dependent atoms; the previous solution is kept).
    All signals advance one atom per step together. Instead of re-solving ``L L' c = D'x`` at each
    step, it keeps ``B = G_{:,I} L^{-T}`` and ``u = L^{-1} (D'x)_I``, both of which only grow by one
    column/entry per step: then ``w = B[k, :]`` (the new row of L), ``alpha = D'x - B u`` and the
    residual energy is ``|x|^2 - |u|^2`` (the Batch-OMP ``delta`` update); ``c = L^{-T} u`` at the end.
    """
    d = np.asarray(d, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n, m = d.shape
    t_max = n if (max_atoms is None or max_atoms < 0 or max_atoms > n) else int(max_atoms)
    g = d.T @ d if gram is None else gram
    out = np.zeros((m, x.shape[1]))
    eps2 = float(epsilon) ** 2
    for start in range(0, x.shape[1], chunk):
        xs = x[:, start:start + chunk]
        out[:, start:start + xs.shape[1]] = _batch_omp_chunk(g, (d.T @ xs).T, np.sum(xs * xs, axis=0), eps2, t_max)
    return out


def _batch_omp_chunk(g, dtx, xtx, eps2, t_max):
    n_sig, m = dtx.shape
    rows = np.arange(n_sig)
    basis = np.zeros((n_sig, m, t_max))          # B = G[:, I] L^{-T}
    chol = np.zeros((n_sig, t_max, t_max))       # L, lower triangular
    u = np.zeros((n_sig, t_max))                 # L^{-1} (D'x)_I
    chosen = np.zeros((n_sig, t_max), dtype=np.int64)
    selected = np.zeros((n_sig, m), dtype=bool)
    n_atoms = np.zeros(n_sig, dtype=np.int64)
    alpha = dtx.copy()
    resnorm = xtx.copy()
    active = resnorm > eps2
    for i in range(t_max):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        a = alpha[idx]
        pos = np.argmax(np.abs(a), axis=1)
        apos = a[np.arange(idx.size), pos]
        ok = ~selected[idx, pos] & (apos * apos >= 1e-14)
        if i > 0:
            w = basis[idx, pos, :i]                  # new row of L: L^{-1} G[I, k]
            pivot2 = 1.0 - np.sum(w * w, axis=1)
            ok &= pivot2 > 1e-14
        active[idx[~ok]] = False
        keep = ok
        idx, pos = idx[keep], pos[keep]
        if idx.size == 0:
            break
        selected[idx, pos] = True
        chosen[idx, i] = pos
        if i == 0:
            pivot = np.ones(idx.size)
            new_col = g[:, pos].T
        else:
            w = w[keep]
            pivot = np.sqrt(pivot2[keep])
            chol[idx, i, :i] = w
            new_col = (g[:, pos].T - np.einsum("smk,sk->sm", basis[idx, :, :i], w)) / pivot[:, None]
        chol[idx, i, i] = pivot
        basis[idx, :, i] = new_col
        u_prev = np.sum(chol[idx, i, :i] * u[idx, :i], axis=1) if i > 0 else 0.0
        u_new = (dtx[idx, pos] - u_prev) / pivot
        u[idx, i] = u_new
        alpha[idx] -= new_col * u_new[:, None]
        resnorm[idx] -= u_new * u_new
        n_atoms[idx] = i + 1
        active[idx] &= resnorm[idx] > eps2
    # c = L^{-T} u per signal; unused trailing rows get an identity pivot and u = 0
    k_used = n_atoms.max(initial=0)
    coef = np.zeros((m, n_sig))
    if k_used == 0:
        return coef
    lt = chol[:, :k_used, :k_used].copy()
    unused = np.arange(k_used)[None, :] >= n_atoms[:, None]
    diag = np.einsum("sii->si", lt)
    diag[unused] = 1.0
    c = np.linalg.solve(np.swapaxes(lt, 1, 2), u[:, :k_used, None])[..., 0]
    c[unused] = 0.0
    np.add.at(coef, (chosen[:, :k_used], np.broadcast_to(rows[:, None], (n_sig, k_used))), c)
    return coef


# ----------------------------------------------------------------------------------------------
# patches
# ----------------------------------------------------------------------------------------------

def _patch_grid(shape, side, step):
    ys = np.arange(0, shape[0] - side + 1, step)
    xs = np.arange(0, shape[1] - side + 1, step)
    return ys, xs


def extract_patches(img: np.ndarray, side: int, step: int) -> np.ndarray:
    """Column-major (MATLAB ``patch(:)``) patches on the grid ``1 : step : size - side + 1``: (side^2, N)."""
    ys, xs = _patch_grid(img.shape, side, step)
    win = np.lib.stride_tricks.sliding_window_view(img, (side, side))[ys][:, xs]  # (ny, nx, side, side)
    return np.ascontiguousarray(win.transpose(0, 1, 3, 2).reshape(len(ys) * len(xs), side * side).T)


def accumulate_patches(patches: np.ndarray, shape, side: int, step: int):
    """Sum of column-major patches placed back on the grid, and the per-pixel patch count."""
    ys, xs = _patch_grid(shape, side, step)
    blocks = patches.T.reshape(len(ys), len(xs), side, side).transpose(0, 1, 3, 2)
    total = np.zeros(shape)
    count = np.zeros(shape)
    y_end, x_end = ys[-1] + 1, xs[-1] + 1
    for dy in range(side):
        for dx in range(side):
            total[dy:dy + y_end:step, dx:dx + x_end:step] += blocks[:, :, dy, dx]
            count[dy:dy + y_end:step, dx:dx + x_end:step] += 1
    return total, count


# ----------------------------------------------------------------------------------------------
# fusion
# ----------------------------------------------------------------------------------------------

def sparse_fusion(a: np.ndarray, b: np.ndarray, d: np.ndarray, overlap: int = 6,
                  epsilon: float = 0.1) -> np.ndarray:
    """The MST-SR toolbox's ``sparse_fusion(A, B, D, overlap, epsilon)`` on images of any scale.

    Parameters
    ----------
    a, b : (H, W) float arrays on the scale ``epsilon`` refers to (0..255 for the authors' setting).
    d : (side^2, m) dictionary; its columns are normalised here.
    overlap : pixels shared by neighbouring patches (step = side - overlap).
    epsilon : OMP residual l2 target per mean-removed patch.

    Returns
    -------
    (H, W) float64 fused image. Max-l1 rule: B's code wins only if ``|w_B|_1 > |w_A|_1``.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = normalise_columns(np.asarray(d, dtype=np.float64))
    side = int(round(np.sqrt(d.shape[0])))
    step = side - overlap
    if min(a.shape) < side:
        raise UserError(f"sparse_fusion: image {a.shape[1]}x{a.shape[0]} is smaller than the {side}x{side} patch")
    pa, pb = extract_patches(a, side, step), extract_patches(b, side, step)
    mean_a, mean_b = pa.mean(axis=0), pb.mean(axis=0)
    n = pa.shape[1]
    codes = batch_omp(d, np.concatenate([pa - mean_a, pb - mean_b], axis=1), epsilon, gram=d.T @ d)
    wa, wb = codes[:, :n], codes[:, n:]
    take_b = np.sum(np.abs(wa), axis=0) < np.sum(np.abs(wb), axis=0)
    fused = d @ np.where(take_b, wb, wa) + np.where(take_b, mean_b, mean_a)
    total, count = accumulate_patches(fused, a.shape, side, step)
    uncovered = count < 1
    total[uncovered] = (a[uncovered] + b[uncovered]) / 2
    count[uncovered] = 1
    return total / count


@register_method("sr", citation=SR_CITATION)
def sr_fusion(a: np.ndarray, b: np.ndarray, *, dictionary: str | None = None, overlap: int = 6,
              epsilon: float = 0.1, input_scale: float = INPUT_SCALE) -> np.ndarray:
    """Sparse-representation fusion (Yang & Li 2010): OMP codes of 8x8 patches, max-l1 rule.

    ``dictionary``: path to a ``.mat`` (variable ``D``) or ``.npz``; default the project's own
    64x256 dictionary (``methods/dictionaries/sr_D_64x256.npz``). ``epsilon`` is on the
    ``input_scale`` (255) scale, as in the authors' code.
    """
    d = load_dictionary(dictionary)
    fused = sparse_fusion(to_input_scale(a, input_scale), to_input_scale(b, input_scale), d, overlap, epsilon)
    return (fused / input_scale).astype(np.float32)
