"""Latent low-rank representation fusion: LatLRR (Li & Wu 2018) and MDLatLRR (Li, Wu, Kittler 2020).

Latent LRR (Liu & Yan 2011) splits a data matrix X (d x n) into a principal part XZ, a salient part LX
and sparse noise E:

    min_{Z, L, E}  ||Z||_* + ||L||_* + lambda ||E||_1    s.t.  X = XZ + LX + E.

``latent_lrr`` solves it by the inexact augmented Lagrange multiplier method (ALM) of the authors'
``latent_lrr.m`` -- auxiliary J = Z, S = L; multipliers Y1, Y2, Y3; mu0 = 1e-6, rho = 1.1,
mu_max = 1e6; stop when the largest absolute entry of X - XZ - LX - E, Z - J and L - S is below
``tol`` = 1e-6 -- with the same iterates, computed in the singular bases of X = U diag(s) V':

* every Z-iterate lies in the column space of V (it starts at 0 and each update maps that space to
  itself), so Z = V Zr with Zr d x n, and (X'X + I)^-1 acts on it as diag(1 / (s^2 + 1));
* L = U Lt U' with (XX' + I)^-1 = U diag(1 / (s^2 + 1)) U';
* singular-value thresholding (SVT) of V Zr (or U Lt U') thresholds Zr (or Lt): the nuclear norm is
  invariant under the orthogonal factors.

The Z- and L-steps become diagonal scalings; an iteration costs two SVTs (of d x n and d x d
matrices, through the eigen-decomposition of the d x d Gram matrix) and four d x d x n products,
instead of the reference code's two full SVDs, two inverses' worth of products and the n x n Z
(2000 x 2000 when the projection matrix is learned). The stopping test is the reference's max-abs
test, evaluated only when the rotation-invariant Frobenius norms allow it to pass
(max|a_ij| >= ||A||_F / sqrt(#entries)).

References
----------
G. Liu, S. Yan, "Latent low-rank representation for subspace segmentation and feature extraction",
ICCV 2011, 1615-1622.
H. Li, X.-J. Wu, "Infrared and visible image fusion using latent low-rank representation",
arXiv:1804.08992, 2018 (code: github.com/hli1221/imagefusion_Infrared_visible_latlrr).
H. Li, X.-J. Wu, J. Kittler, "MDLatLRR: a novel decomposition method for infrared and visible image
fusion", IEEE Trans. Image Process. 29:4733-4746, 2020 (code: github.com/hli1221/imagefusion_mdlatlrr).
"""
from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from methods.registry import above, between, one_of, register_method, single_threaded_torch, worker_threads
from methods.sr import DICTIONARY_DIR, _harvard_train_images, accumulate_patches, extract_patches

DEFAULT_PROJECTION = DICTIONARY_DIR / "mdlatlrr_L_16.npz"
LATLRR_CITATION = ("H. Li, X.-J. Wu, \"Infrared and visible image fusion using latent low-rank "
                   "representation\", arXiv:1804.08992, 2018")
MDLATLRR_CITATION = ("H. Li, X.-J. Wu, J. Kittler, \"MDLatLRR: a novel decomposition method for infrared and "
                     "visible image fusion\", IEEE Trans. Image Process. 29:4733-4746, 2020")


# ----------------------------------------------------------------------------------------------
# the solver
# ----------------------------------------------------------------------------------------------

@dataclass
class LatentLRR:
    """A solution of latent LRR: ``x ~ x @ z + l @ x + e``, with the ALM's iteration count."""
    z: np.ndarray              # (n, n) low-rank coefficients
    l: np.ndarray              # (d, d) low-rank projection (the "salient feature extractor")
    e: np.ndarray              # (d, n) sparse noise
    principal: np.ndarray      # x @ z
    salient: np.ndarray        # l @ x
    iterations: int
    converged: bool


def singular_value_threshold(m: torch.Tensor, tau: float) -> torch.Tensor:
    """SVT: ``U max(S - tau, 0) V'`` of ``m``, the prox of ``tau ||.||_*``.

    Singular values come from the eigen-decomposition of the smaller Gram matrix (``m m'`` for a wide
    ``m``, float64): its eigenvectors are U, and ``U diag(1 - tau / s) U' m`` over the values above
    ``tau`` is the thresholded matrix, so V is never formed. When ``||m||_F <= tau`` no singular
    value exceeds ``tau`` and the result is 0 without a decomposition (the ALM's first ~120
    iterations at mu0 = 1e-6).
    """
    import torch  # imported on first use: `import methods` stays fast

    if m.shape[0] > m.shape[1]:
        return singular_value_threshold(m.mT, tau).mT
    if float(torch.linalg.matrix_norm(m)) <= tau:
        return torch.zeros_like(m)
    lam, w = torch.linalg.eigh(m @ m.mT)
    s = lam.clamp_min(0.0).sqrt()
    keep = s > tau
    wk = w[:, keep]
    return (wk * (1.0 - tau / s[keep])) @ (wk.mT @ m)


def latent_lrr(x: np.ndarray, lam: float, *, tol: float = 1e-6, rho: float = 1.1, mu: float = 1e-6,
               max_mu: float = 1e6, max_iter: int = 2000) -> LatentLRR:
    """Latent LRR by inexact ALM: ``min ||Z||_* + ||L||_* + lam ||E||_1  s.t.  X = XZ + LX + E``.

    Parameters
    ----------
    x : (d, n) data matrix (an image, or patch vectors as columns).
    lam : weight of the sparse term (0.8 for LatLRR fusion, 0.4 for MDLatLRR's projection).
    tol, rho, mu, max_mu : the reference code's ALM settings (stop when every constraint's largest
        absolute violation is below ``tol``; mu grows by ``rho`` up to ``max_mu``).
    max_iter : iteration cap (the reference has 1e6; it converges in about 280 at these settings).

    Returns
    -------
    :class:`LatentLRR` in float64.

    Notes
    -----
    Liu & Yan 2011 (inexact ALM) as in the reference ``latent_lrr.m``: with J = Z, S = L and multipliers
    Y1 (X = XZ + LX + E), Y2 (Z = J), Y3 (L = S), each iteration is

        J = SVT_{1/mu}(Z + Y2/mu),   S = SVT_{1/mu}(L + Y3/mu),
        Z = (X'X + I)^-1 (X'(X - LX - E) + J + (X'Y1 - Y2)/mu),
        L = ((X - XZ - E)X' + S + (Y1 X' - Y3)/mu)(XX' + I)^-1,
        E = shrink_{lam/mu}(X - XZ - LX + Y1/mu),
        Y1 += mu (X - XZ - LX - E),  Y2 += mu (Z - J),  Y3 += mu (L - S),  mu = min(rho mu, max_mu),

    here in the singular bases of X (module docstring), so the iterates are the reference's up to
    rounding. With X = U_r diag(s_r) V_r' of numerical rank r (MATLAB's ``rank`` tolerance; images
    with black borders have r < d), Z = V_r Zr (r x n) and L = U Lt U_r' (d x r) hold exactly.
    """
    import torch  # imported on first use: `import methods` stays fast

    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"latent_lrr: x must be a matrix, got shape {x.shape}")
    d, n = x.shape
    f64 = dict(dtype=torch.float64)
    u, s, vh = torch.linalg.svd(torch.from_numpy(x), full_matrices=d > n)       # u square (d, d)
    r = int((s > s[0] * max(d, n) * np.finfo(np.float64).eps).sum()) if float(s[0]) > 0 else 0
    s, vr, ur = s[:r], vh[:r].mT, u[:, :r]                      # X = ur diag(s) vr'
    svr = s[:, None] * vr.mT                                    # diag(s) vr' (r, n)
    b = torch.zeros(d, n, **f64)
    b[:r] = svr                                                  # U'X
    g = 1.0 / (s * s + 1.0)
    zr, jr, y2 = (torch.zeros(r, n, **f64) for _ in range(3))   # Z = vr zr, J = vr jr, Y2 = vr y2
    lt, st, y3 = (torch.zeros(d, r, **f64) for _ in range(3))   # L = u lt ur', S, Y3 likewise
    eh, y1, lb, xz = (torch.zeros(d, n, **f64) for _ in range(4))   # U'E, U'Y1, U'LX, U'XZ
    e = torch.zeros(d, n, **f64)
    sizes = (d * n, n * n, d * d)
    converged, iteration = r == 0, 0
    while not converged and iteration < max_iter:
        iteration += 1
        inv_mu = 1.0 / mu
        y1_mu = y1 * inv_mu
        jr = singular_value_threshold(zr + y2 * inv_mu, inv_mu)
        st = singular_value_threshold(lt + y3 * inv_mu, inv_mu)
        p = (svr - lb[:r]).sub_(eh[:r]).add_(y1_mu[:r])          # U_r'(X - LX - E + Y1/mu)
        zr = p.mul_(s[:, None]).add_(jr).sub_(y2, alpha=inv_mu).mul_(g[:, None])
        xz[:r] = s[:, None] * zr
        q = (y1_mu - xz).sub_(eh) @ vr                           # U'(X - XZ - E + Y1/mu) V_r, less U'X V_r
        q[:r] += torch.diag(s)
        lt = q.mul_(s[None, :]).add_(st).sub_(y3, alpha=inv_mu).mul_(g[None, :])
        lb = lt @ svr
        resid = (b - xz).sub_(lb)                                # U'(X - XZ - LX)
        t = u @ (resid + y1_mu)
        e = t - t.clamp(-lam * inv_mu, lam * inv_mu)             # soft threshold at lam / mu
        eh = u.mT @ e
        gaps = (resid.sub_(eh), zr - jr, lt - st)
        if all(float(torch.linalg.matrix_norm(a)) < tol * np.sqrt(size) for a, size in zip(gaps, sizes)):
            # the Frobenius norms allow max|.| < tol: test it on the matrices themselves
            worst = max(float((u @ gaps[0]).abs().max()), float((vr @ gaps[1]).abs().max()),
                        float((u @ gaps[2] @ ur.mT).abs().max()))
            converged = worst < tol
            if converged:
                break
        y1.add_(gaps[0], alpha=mu)
        y2.add_(gaps[1], alpha=mu)
        y3.add_(gaps[2], alpha=mu)
        mu = min(max_mu, mu * rho)
    return LatentLRR((vr @ zr).numpy(), (u @ lt @ ur.mT).numpy(), e.numpy(), (u @ xz).numpy(),
                     (u @ lb).numpy(), iteration, converged)


def latent_lrr_many(matrices, lam: float, **options) -> list[LatentLRR]:
    """:func:`latent_lrr` of independent matrices, in :func:`worker_threads` threads of one torch thread each."""
    matrices = list(matrices)
    workers = min(worker_threads(), len(matrices))
    with single_threaded_torch():
        if workers <= 1:
            return [latent_lrr(m, lam, **options) for m in matrices]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda m: latent_lrr(m, lam, **options), matrices))


# ----------------------------------------------------------------------------------------------
# LatLRR fusion (Li & Wu 2018)
# ----------------------------------------------------------------------------------------------

def latlrr_fusion(a: np.ndarray, b: np.ndarray, *, lam: float = 0.8) -> np.ndarray:
    """LatLRR fusion (Li & Wu 2018): average of the low-rank parts plus sum of the salient parts.

    Notes
    -----
    Li & Wu 2018 (equation numbers not quoted here; the steps are written out): each source image
    I_k, as a matrix, is decomposed by latent LRR, ``I_k = I_k Z_k + L_k I_k + E_k`` (``lam`` = 0.8 as
    in the authors' code); the low-rank parts ``I_lrr,k = I_k Z_k`` are fused by the weighted average
    ``F_lrr = w_1 I_lrr,1 + w_2 I_lrr,2`` with w_1 = w_2 = 0.5 (the code's weights), the salient parts
    ``I_s,k = L_k I_k`` by their sum ``F_s = I_s,1 + I_s,2``, and ``F = F_lrr + F_s``. As in the authors'
    ``fusion_latlrr.m`` each part is clipped to [0, 1] before fusing; E is discarded.
    """
    parts = latent_lrr_many([a, b], lam)
    low_rank = [np.clip(p.principal, 0.0, 1.0) for p in parts]
    salient = [np.clip(p.salient, 0.0, 1.0) for p in parts]
    return ((low_rank[0] + low_rank[1]) / 2 + salient[0] + salient[1]).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# MDLatLRR (Li, Wu, Kittler 2020): the projection matrix L, learned once from patches
# ----------------------------------------------------------------------------------------------

def projection_training_patches(images, *, side: int = 16, n_detail: int = 1000, n_smooth: int = 1000,
                                min_norm: float = 0.5, seed: int = 0) -> np.ndarray:
    """The authors' training matrix: ``n_detail`` + ``n_smooth`` random distinct ``side x side`` patches.

    As in ``train_choose_detail.m`` / ``train_latent_matrix.m``: every image ([0, 1] scale) is cut into
    distinct (non-overlapping) patches, column-major vectors; a patch is "detail" when the l2 norm of
    its deviation from its mean exceeds ``min_norm`` (0.5; the authors call it SD), else "smooth";
    all-zero patches (black background) are dropped; ``n_detail`` and ``n_smooth`` columns are drawn
    without replacement and shuffled together. Returns (side^2, n_detail + n_smooth) float64.
    """
    rng = np.random.default_rng(seed)
    columns = []
    for img in images:
        img = np.asarray(img, dtype=np.float64)
        h, w = (img.shape[0] // side) * side, (img.shape[1] // side) * side
        if h and w:
            columns.append(extract_patches(img[:h, :w], side, side))
    if not columns:
        raise UserError(f"no image is at least {side}x{side}: no training patches")
    patches = np.concatenate(columns, axis=1)
    patches = patches[:, np.any(patches != 0, axis=0)]
    deviation = np.linalg.norm(patches - patches.mean(axis=0), axis=0)
    detail, smooth = patches[:, deviation > min_norm], patches[:, deviation <= min_norm]
    if detail.shape[1] < n_detail or smooth.shape[1] < n_smooth:
        raise UserError(f"too few training patches: {detail.shape[1]} detail (need {n_detail}), "
                        f"{smooth.shape[1]} smooth (need {n_smooth})")
    chosen = np.concatenate([detail[:, rng.choice(detail.shape[1], n_detail, replace=False)],
                             smooth[:, rng.choice(smooth.shape[1], n_smooth, replace=False)]], axis=1)
    return chosen[:, rng.permutation(chosen.shape[1])]


def learn_projection(patches: np.ndarray, *, lam: float = 0.4) -> tuple[np.ndarray, LatentLRR]:
    """MDLatLRR's projection matrix: the L of latent LRR on training patch vectors (lam = 0.4)."""
    with single_threaded_torch():
        solution = latent_lrr(patches, lam)
    return solution.l, solution


def load_projection(path: str | Path | None = None) -> np.ndarray:
    """A (side^2, side^2) projection matrix: ``.npz`` (key ``L``) or MATLAB ``.mat`` (first square matrix,
    e.g. the authors' ``L_16``). ``None`` loads the project's own, ``methods/dictionaries/mdlatlrr_L_16.npz``."""
    path = Path(path) if path is not None else DEFAULT_PROJECTION
    if not path.is_file():
        raise UserError(f"{path}: projection matrix file not found (.npz with key L, or the authors' .mat)")
    if path.suffix.lower() == ".npz":
        content = dict(np.load(path))
        matrix = content.get("L")
    elif path.suffix.lower() == ".mat":
        from scipy.io import loadmat
        content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        matrix = next((v for v in content.values() if getattr(v, "ndim", 0) == 2 and v.shape[0] == v.shape[1]), None)
    else:
        raise UserError(f"{path}: projection matrix must be a .npz or .mat file")
    if matrix is None:
        raise UserError(f"{path}: no projection matrix in the file (found: {', '.join(content) or 'nothing'})")
    matrix = np.asarray(matrix, dtype=np.float64)
    side = int(round(np.sqrt(matrix.shape[0])))
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or side * side != matrix.shape[0]:
        raise UserError(f"{path}: the projection matrix must be (side^2, side^2), got shape {matrix.shape}")
    return matrix


def main(argv=None) -> None:
    """``python -m methods.latlrr learn --harvard DIR [--out FILE.npz]``: learn MDLatLRR's projection matrix."""
    import time

    parser = argparse.ArgumentParser(prog="python -m methods.latlrr", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    learn = sub.add_parser("learn", help="learn the projection matrix L from the Harvard train split")
    learn.add_argument("--harvard", type=Path, required=True, help="folder holding <task>/train/<modality>/*.png")
    learn.add_argument("--out", type=Path, default=DEFAULT_PROJECTION)
    learn.add_argument("--side", type=int, default=16)
    learn.add_argument("--detail", type=int, default=1000, help="detail patches (authors: 1000)")
    learn.add_argument("--smooth", type=int, default=1000, help="smooth patches (authors: 1000)")
    learn.add_argument("--lam", type=float, default=0.4)
    learn.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    images = [img / 255.0 for img in _harvard_train_images(args.harvard)]
    patches = projection_training_patches(images, side=args.side, n_detail=args.detail, n_smooth=args.smooth,
                                          seed=args.seed)
    start = time.perf_counter()
    matrix, solution = learn_projection(patches, lam=args.lam)
    recipe = (f"latent LRR (lam {args.lam}) on {args.detail} detail + {args.smooth} smooth distinct "
              f"{args.side}x{args.side} patches of the Harvard train split ({len(images)} images), seed {args.seed}; "
              f"{solution.iterations} ALM iterations, converged {solution.converged}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, L=matrix.astype(np.float32), recipe=np.array(recipe))
    print(f"wrote {args.out}: L {matrix.shape[0]}x{matrix.shape[1]} float32 "
          f"({time.perf_counter() - start:.1f} s, {recipe})")


# ----------------------------------------------------------------------------------------------
# MDLatLRR decomposition and fusion
# ----------------------------------------------------------------------------------------------

def mdlatlrr_decompose(img: np.ndarray, projection: np.ndarray, *, level: int, stride: int):
    """Multi-level decomposition: the base part and each level's detail patch vectors.

    Li, Wu, Kittler 2020, the MDLatLRR decomposition (written out; equation numbers not quoted): with
    P(.) the overlapping ``side x side``
    patches at ``stride`` as column vectors and R(.) their inverse (each pixel the mean of the patches
    covering it), level i takes the previous base part (I_b^0 = I):

        V_d^i = L P(I_b^{i-1}),   I_d^i = R(V_d^i),   I_b^i = I_b^{i-1} - I_d^i.

    ``img`` must fit the patch grid (``(size - side) % stride == 0``; :func:`mdlatlrr_fusion` pads).
    Returns ``(I_b^level, [V_d^1, ..., V_d^level])``.
    """
    side = int(round(np.sqrt(projection.shape[0])))
    base = np.asarray(img, dtype=np.float64)
    details = []
    for _ in range(level):
        detail = projection @ extract_patches(base, side, stride)
        total, count = accumulate_patches(detail, base.shape, side, stride)
        base = base - total / count
        details.append(detail)
    return base, details


def nuclear_norms(vectors: np.ndarray, side: int) -> np.ndarray:
    """``||reshape(v, side, side)||_*`` of every column: the sum of the square roots of the Gram matrix's
    eigenvalues, batched (in :func:`worker_threads` chunks)."""
    import torch  # imported on first use: `import methods` stays fast

    blocks = torch.from_numpy(np.ascontiguousarray(vectors.T)).reshape(-1, side, side)

    def norms(chunk):
        return torch.linalg.eigvalsh(chunk.mT @ chunk).clamp_min(0.0).sqrt().sum(dim=1)

    workers = min(worker_threads(), max(1, blocks.shape[0] // 1024))
    with single_threaded_torch():
        if workers <= 1:
            return norms(blocks).numpy()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return torch.cat(list(pool.map(norms, blocks.tensor_split(workers)))).numpy()


def mdlatlrr_fusion(a: np.ndarray, b: np.ndarray, *, level: int = 2, stride: int = 2,
                    projection: str | None = None, detail_sum: str = "paper") -> np.ndarray:
    """MDLatLRR fusion (Li, Wu, Kittler 2020): multi-level LatLRR projection, nuclear-norm detail weights.

    Notes
    -----
    Both sources are decomposed by :func:`mdlatlrr_decompose` with the learned projection matrix L
    (``projection``: default the project's own 256 x 256 matrix for 16 x 16 patches, learned by
    ``python -m methods.latlrr learn`` from the Harvard train split with the authors' recipe; the
    authors' ``L_16.mat`` is accepted). Per level i and patch j the detail vectors are weighted by the
    nuclear norms of the patches they reshape to,

        w_k^{i,j} = ||re(V_dk^{i,j})||_* / (||re(V_d1^{i,j})||_* + ||re(V_d2^{i,j})||_*),
        V_f^{i,j} = w_1^{i,j} V_d1^{i,j} + w_2^{i,j} V_d2^{i,j},   F_d^i = R(V_f^i),

    (equal weights where both patches are 0: black background, where the authors' code divides 0 by 0),
    the base parts are averaged, ``F_b = (I_b1^r + I_b2^r) / 2``, and ``F = F_b + sum_i F_d^i``.
    ``detail_sum="code"`` reproduces the released MATLAB code instead, whose accumulator is not reset
    between levels, so level i's fused detail enters ``r - i + 1`` times. ``stride``: the paper uses 1;
    2 is the default here (4x fewer patches, under the suite's 2 s per pair; ``--param stride=1`` for
    the paper's setting). Images whose ``size - 16`` is not a multiple of ``stride`` are padded
    symmetrically at the bottom/right for the decomposition and cropped back.
    """
    matrix = load_projection(projection)
    side = int(round(np.sqrt(matrix.shape[0])))
    h, w = a.shape
    if min(h, w) < side:
        raise UserError(f"mdlatlrr: image {w}x{h} is smaller than the {side}x{side} patch")
    pad = [(0, (-(n - side)) % stride) for n in (h, w)]
    sources = [np.pad(np.asarray(img, dtype=np.float64), pad, mode="symmetric") for img in (a, b)]
    (base_a, details_a), (base_b, details_b) = (mdlatlrr_decompose(img, matrix, level=level, stride=stride)
                                                for img in sources)
    fused = (base_a + base_b) / 2
    accumulated = np.zeros_like(fused)
    for da, db in zip(details_a, details_b):
        na, nb = nuclear_norms(da, side), nuclear_norms(db, side)
        total = na + nb
        wa = np.divide(na, total, out=np.full_like(total, 0.5), where=total > 0)
        part, count = accumulate_patches(wa * da + (1.0 - wa) * db, fused.shape, side, stride)
        accumulated = accumulated + part / count if detail_sum == "code" else part / count
        fused += accumulated
    return fused[:h, :w].astype(np.float32)


# ``python -m methods.latlrr`` runs this file a second time as ``__main__`` after ``methods/__init__`` has
# imported (and registered) it as ``methods.latlrr``: register only in the package module, run the
# command line from it.
if __name__ == "__main__":
    from methods.latlrr import main as _package_main
    _package_main()
else:
    register_method("latlrr", citation=LATLRR_CITATION, allowed={"lam": above(0)})(latlrr_fusion)
    register_method("mdlatlrr", citation=MDLATLRR_CITATION,
                    allowed={"level": between(1), "stride": between(1),
                             "detail_sum": one_of(("paper", "code"))})(mdlatlrr_fusion)
