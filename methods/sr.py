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

from common.errors import UserError
from common.io import read_npz
from methods.registry import above, between, register_method, single_threaded_torch

DICTIONARY_DIR = Path(__file__).resolve().parent / "dictionaries"
DEFAULT_DICTIONARY = DICTIONARY_DIR / "sr_D_64x256.npz"
INPUT_SCALE = 255.0  # the authors' images are double(uint8); OMP's epsilon is absolute on that scale
# 8x8 patches: overlap 7 steps one pixel, 8 would not step at all; OMP's error bound must be positive
SR_ALLOWED = {"overlap": between(0, 7), "epsilon": above(0)}
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
        content = read_npz(path)
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
              chunk: int = 256) -> np.ndarray:
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
    chunk : int
        Signals coded together; small enough that the per-chunk state (``chunk * n * n`` doubles)
        stays in cache.

    Returns
    -------
    (m, L) array of coefficients.

    Notes
    -----
    Same selections and stopping rules as ``ompcore.c`` of the ompbox (Batch-OMP, Rubinstein et al.
    2008, Alg. 2, used by ``omp2``): atom ``k = argmax |alpha|`` (first on ties) with
    ``alpha = D' r``; stop when the residual energy ``|x|^2 - delta <= epsilon^2``, when ``max_atoms``
    atoms are chosen, when an atom is chosen twice or ``alpha_k^2 < 1e-14``, or when the new Cholesky
    pivot ``1 - |w|^2 <= 1e-14`` (dependent atoms; the previous solution is kept). ``w`` is the new row
    of the Cholesky factor ``L`` of ``G_II``. All signals of a chunk advance one atom per step. The
    projection is kept in the signal domain as ``Q = D_I L^{-T}`` (orthonormal columns; one new
    column per step, ``q = (d_k - Q w) / pivot`` with ``w = Q' d_k``), so ``alpha = D' r`` is one GEMM
    per step for the whole chunk and the projection coefficient is ``u_k = alpha_k / pivot``; the
    residual energy update ``|x|^2 - |u|^2`` equals Batch-OMP's ``delta`` update, and at the end
    ``c = L^{-T} u``. This is the same arithmetic up to rounding; a rounding difference can flip the
    choice between two atoms of (near-)equal correlation, which is rare.
    """
    d = np.asarray(d, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n, m = d.shape
    t_max = n if (max_atoms is None or max_atoms < 0 or max_atoms > n) else int(max_atoms)
    out = np.zeros((m, x.shape[1]))
    eps2 = float(epsilon) ** 2
    xtx = np.sum(x * x, axis=0)
    todo = np.flatnonzero(xtx > eps2)                 # the rest are coded by zero atoms
    with single_threaded_torch():
        for start in range(0, todo.size, chunk):
            cols = todo[start:start + chunk]
            out[:, cols] = _batch_omp_chunk(d, np.ascontiguousarray(x[:, cols].T), xtx[cols], eps2, t_max)
    return out


def _batch_omp_chunk(d, signals, xtx, eps2, t_max):
    """OMP on the rows of ``signals`` (each with energy > eps2); returns coefficients (atoms x signals)."""
    import torch  # imported on first use: `import methods` stays fast
    n_sig, n = signals.shape
    m = d.shape[1]
    atoms_by_row = np.ascontiguousarray(d.T)         # (m, n)
    d_torch = torch.from_numpy(np.ascontiguousarray(d))
    q = np.zeros((n_sig, t_max, n))                  # orthonormal basis of the chosen atoms
    chol = np.zeros((n_sig, t_max, t_max))
    u = np.zeros((n_sig, t_max))
    chosen = np.zeros((n_sig, t_max), dtype=np.int64)
    selected = np.zeros((n_sig, m), dtype=bool)
    n_atoms = np.zeros(n_sig, dtype=np.int64)
    residual = signals.copy()
    resnorm = xtx.copy()
    live = np.ones(n_sig, dtype=bool)
    rows = np.arange(n_sig)
    # einsum, not stacked matmul or torch.bmm, for the per-signal products: numpy sends each stacked
    # matmul slice to BLAS (a multi-threaded BLAS on thousands of tiny products costs ~7x more CPU),
    # and torch.bmm on these sizes was measured 1.6x slower than einsum.
    for i in range(t_max):
        alpha = torch.mm(torch.from_numpy(residual), d_torch).numpy()   # D' r for every signal
        pos = np.argmax(np.abs(alpha), axis=1)
        apos = alpha[rows, pos]
        ok = live & ~selected[rows, pos] & (apos * apos >= 1e-14)
        atom = atoms_by_row[pos]
        if i > 0:
            w = np.einsum("sin,sn->si", q[:, :i], atom)      # Q' d_k = L^{-1} G[I, k]
            pivot2 = 1.0 - np.sum(w * w, axis=1)
            ok &= pivot2 > 1e-14
            pivot = np.sqrt(np.where(ok, pivot2, 1.0))
            w[~ok] = 0.0
        else:
            pivot = np.ones(n_sig)
        live &= ok
        if not ok.any():
            break
        selected[rows[ok], pos[ok]] = True
        chosen[ok, i] = pos[ok]
        new_q = atom if i == 0 else atom - np.einsum("si,sin->sn", w, q[:, :i])
        new_q /= pivot[:, None]
        u_new = np.where(ok, apos / pivot, 0.0)
        if i > 0:
            chol[:, i, :i] = w
        chol[:, i, i] = pivot
        q[:, i] = new_q
        u[:, i] = u_new
        residual -= new_q * u_new[:, None]
        resnorm -= u_new * u_new
        n_atoms[ok] = i + 1
        live &= resnorm > eps2
        if not live.any():
            break

    # c = L^{-T} u per signal; rows beyond a signal's atom count get an identity pivot and u = 0
    coef = np.zeros((m, n_sig))
    k_used = int(n_atoms.max(initial=0))
    if k_used == 0:
        return coef
    lt = chol[:, :k_used, :k_used]
    unused = np.arange(k_used)[None, :] >= n_atoms[:, None]
    np.einsum("sii->si", lt)[unused] = 1.0
    u = u[:, :k_used]
    u[unused] = 0.0
    c = np.linalg.solve(np.swapaxes(lt, 1, 2), u[..., None])[..., 0]
    c[unused] = 0.0
    signal = np.broadcast_to(rows[:, None], (n_sig, k_used))
    np.add.at(coef, (chosen[:, :k_used], signal), c)
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
# dictionary learning (K-SVD)
# ----------------------------------------------------------------------------------------------

def overcomplete_dct(side: int = 8, n_atoms: int = 256) -> np.ndarray:
    """Separable overcomplete DCT dictionary (side^2 x n_atoms), the usual K-SVD initialisation."""
    per_axis = int(np.ceil(np.sqrt(n_atoms)))
    basis = np.cos(np.outer(np.arange(side), np.arange(per_axis)) * np.pi / per_axis)
    basis[:, 1:] -= basis[:, 1:].mean(axis=0)
    basis /= np.linalg.norm(basis, axis=0)
    return normalise_columns(np.kron(basis, basis)[:, :n_atoms])


def training_patches(images, side: int = 8, n_patches: int = 20000, min_std: float = 2.0,
                     seed: int = 0) -> np.ndarray:
    """Random mean-removed ``side x side`` patches (columns) from images on the 0..255 scale.

    Each image gives the same number of candidate positions (drawn uniformly, with replacement), so
    memory stays ``O(n_patches)`` however many images there are. Near-flat candidates (std <
    ``min_std`` grey levels: background) are dropped, since ``sparse_fusion`` codes those with no
    atom at all; ``n_patches`` are then drawn from the rest.
    """
    rng = np.random.default_rng(seed)
    images = [np.asarray(img, dtype=np.float64) for img in images]
    per_image = max(1, -(-4 * n_patches // max(len(images), 1)))   # 4x oversampling for the flat ones
    pool = []
    for img in images:
        if min(img.shape) < side:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(img, (side, side))
        ys = rng.integers(0, windows.shape[0], per_image)
        xs = rng.integers(0, windows.shape[1], per_image)
        p = windows[ys, xs].transpose(0, 2, 1).reshape(per_image, side * side).T   # column-major patch(:)
        p = p - p.mean(axis=0)
        pool.append(p[:, p.std(axis=0) >= min_std])
    pool = np.concatenate(pool, axis=1) if pool else np.zeros((side * side, 0))
    if pool.shape[1] == 0:
        raise UserError("no textured patches in the training images")
    pick = rng.choice(pool.shape[1], size=min(n_patches, pool.shape[1]), replace=False)
    return pool[:, pick]


def learn_dictionary(images, *, n_atoms: int = 256, side: int = 8, n_patches: int = 20000,
                     sparsity: int = 8, iterations: int = 15, seed: int = 0) -> np.ndarray:
    """K-SVD dictionary (Aharon, Elad, Bruckstein 2006) from mean-removed patches of ``images``.

    Parameters
    ----------
    images : iterable of (H, W) arrays on the 0..255 scale.
    n_atoms, side : dictionary size (side^2 x n_atoms).
    n_patches : training patches drawn at random (:func:`training_patches`).
    sparsity : atoms per patch in the sparse-coding step (OMP, ``max_atoms = sparsity``).
    iterations : K-SVD iterations (sparse coding + one SVD update per atom, Alg. K-SVD step 2-3).
    seed : random seed for the patch sample and for replacing unused atoms.

    Returns
    -------
    (side^2, n_atoms) float64 dictionary with unit-norm columns.
    """
    import torch  # imported on first use: `import methods` stays fast
    rng = np.random.default_rng(seed)
    x = training_patches(images, side, n_patches, seed=seed)
    d = overcomplete_dct(side, n_atoms)
    for _ in range(iterations):
        codes = batch_omp(d, x, 0.0, max_atoms=sparsity)
        residual = x - d @ codes
        for k in range(n_atoms):
            users = np.flatnonzero(codes[k])
            if users.size == 0:                  # unused atom: restart on the worst-coded patch
                worst = np.argmax(np.sum(residual * residual, axis=0))
                d[:, k] = x[:, worst] / np.linalg.norm(x[:, worst])
                continue
            err = residual[:, users] + np.outer(d[:, k], codes[k, users])
            with single_threaded_torch():              # small SVDs: threads only add overhead
                u, s, vt = (t.numpy() for t in torch.linalg.svd(torch.from_numpy(err), full_matrices=False))
            d[:, k] = u[:, 0]
            codes[k, users] = s[0] * vt[0]
            residual[:, users] = err - np.outer(d[:, k], codes[k, users])
    return normalise_columns(d)


def _harvard_train_images(root: Path):
    from common.io import read_image
    from common.colour import luma
    files = sorted(p for p in root.glob("*/train/*/*.png"))
    if not files:
        raise UserError(f"{root}: no Harvard training images (expected <task>/train/<modality>/*.png)")
    return [np.round(luma(read_image(f)) * 255.0) for f in files]


def main(argv=None) -> None:
    """``python -m methods.sr learn --harvard DIR --out FILE.npz``: learn and save a dictionary."""
    parser = argparse.ArgumentParser(prog="python -m methods.sr", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    learn = sub.add_parser("learn", help="learn a K-SVD dictionary from the Harvard train split")
    learn.add_argument("--harvard", type=Path, required=True, help="folder holding <task>/train/<modality>/*.png")
    learn.add_argument("--out", type=Path, default=DEFAULT_DICTIONARY)
    learn.add_argument("--atoms", type=int, default=256)
    learn.add_argument("--patches", type=int, default=20000)
    learn.add_argument("--sparsity", type=int, default=8)
    learn.add_argument("--iterations", type=int, default=15)
    learn.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    d = learn_dictionary(_harvard_train_images(args.harvard), n_atoms=args.atoms, n_patches=args.patches,
                         sparsity=args.sparsity, iterations=args.iterations, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, D=d.astype(np.float32),
                        recipe=np.array(f"K-SVD, Harvard train split, {args.patches} patches, sparsity "
                                        f"{args.sparsity}, {args.iterations} iterations, seed {args.seed}"))
    print(f"wrote {args.out}: D {d.shape[0]}x{d.shape[1]} float32")


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
        raise UserError(f"sparse_fusion: image/low-pass band {a.shape[1]}x{a.shape[0]} is smaller than the "
                        f"{side}x{side} patch (for the *_sr methods on small images, lower 'level')")
    pa, pb = extract_patches(a, side, step), extract_patches(b, side, step)
    mean_a, mean_b = pa.mean(axis=0), pb.mean(axis=0)
    n = pa.shape[1]
    codes = batch_omp(d, np.concatenate([pa - mean_a, pb - mean_b], axis=1), epsilon)
    wa, wb = codes[:, :n], codes[:, n:]
    take_b = np.sum(np.abs(wa), axis=0) < np.sum(np.abs(wb), axis=0)
    fused = d @ np.where(take_b, wb, wa) + np.where(take_b, mean_b, mean_a)
    total, count = accumulate_patches(fused, a.shape, side, step)
    uncovered = count < 1
    total[uncovered] = (a[uncovered] + b[uncovered]) / 2
    count[uncovered] = 1
    return total / count


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



# ``python -m methods.sr`` runs this file a second time as ``__main__`` after ``methods/__init__`` has
# imported (and registered) it as ``methods.sr``: register only in the package module, run the
# command line from it.
if __name__ == "__main__":
    from methods.sr import main as _package_main
    _package_main()
else:
    register_method("sr", citation=SR_CITATION, allowed=SR_ALLOWED)(sr_fusion)
