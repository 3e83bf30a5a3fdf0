"""CSMCA: medical image fusion by convolutional-sparsity-based morphological component analysis.

Y. Liu, X. Chen, R. K. Ward, Z. J. Wang, "Medical image fusion via convolutional sparsity based
morphological component analysis", IEEE Signal Process. Lett. 26(3):485-489, 2019.

A port of the authors' ``CSMCA_Fusion`` (yuliu316316/CSMCA-Fusion @ 6f6c3e7), which calls SPORCO's
``lowpass`` and ``cbpdn`` (B. Wohlberg, "Efficient algorithms for convolutional sparse
representations", IEEE TIP 25(1):301-315, 2016):

1. base/detail split ``lowpass(s, 60, 16)``: Tikhonov low-pass ``(I + 60 (G_r^T G_r + G_c^T G_c))^{-1}``
   with first-difference operators, solved in the DFT domain on the image padded by 16 samples
   (symmetric, edge repeated); detail = image - base.
2. MCA of each detail layer into cartoon and texture (paper Eq. 3, solved as in Eqs. 4-5): six rounds,
   each a convolutional BPDN (paper Eq. 1) of the cartoon part with ``Dc`` and then of the texture
   part with ``Dt``, ``lambda = max(0.6 - 0.1 k, 0.005)`` in round ``k``; BPDN by ADMM, at most
   30 iterations, relative stopping tolerance 1e-3, over-relaxation 1.8, adaptive rho (SPORCO's
   defaults), rho_0 = ``50 lambda + 1`` (cartoon) or 1 (texture); the X-step is the
   Sherman-Morrison solve in the DFT domain.
3. fusion (paper Eq. 6-7): per pixel, the coefficient vector of the source whose l1 activity,
   averaged over a (2r+1)^2 window (zero padding), is larger (r = 5 cartoon, 2 texture; ties B);
   base layers averaged; image = base + Dc * Xc + Dt * Xt.

Computes in single precision like the MATLAB code (``single(u8)/255``). The two sources' BPDN
problems run side by side in ``OMP_NUM_THREADS`` threads; inside the ADMM the FFTs and the small
direct convolutions go through torch (MKL / oneDNN), the element-wise steps through numpy in
cache-sized blocks (see :func:`_cbpdn_admm`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.io
import scipy.ndimage
import scipy.fft

from common.errors import UserError
from common.io import read_npz
from methods.registry import above, between, register_method, single_threaded_torch, worker_threads

DICTIONARY_DIR = Path(__file__).resolve().parent / "dictionaries"
OWN_DICTIONARIES = (DICTIONARY_DIR / "csmca_cartoon.npz", DICTIONARY_DIR / "csmca_texture.npz")
AUTHORS_DICTIONARY_NAMES = ("Dc_8_8_32.mat", "Dt_8_8_32.mat")


# --- dictionaries ---------------------------------------------------------------------------------

def _load_filters(path: Path) -> np.ndarray:
    """One filter bank as (M, h, w) float64 from a MAT file (8x8xM, first variable) or an .npz."""
    if not path.is_file():
        raise UserError(f"csmca: dictionary file {path} not found")
    if path.suffix == ".npz":
        data = read_npz(path)
        if not data:
            raise UserError(f"csmca: {path} holds no array")
        arr = data["filters"] if "filters" in data else next(iter(data.values()))
        filters = np.asarray(arr, dtype=np.float64)
    else:
        try:
            data = scipy.io.loadmat(path)
        except Exception as exc:  # scipy raises several types for a non-MAT file
            raise UserError(f"csmca: {path} is not a readable MAT file ({exc})") from None
        names = [k for k in data if not k.startswith("__")]
        if not names:
            raise UserError(f"csmca: {path} holds no variable")
        filters = np.moveaxis(np.asarray(data[names[0]], dtype=np.float64), 2, 0)
    if filters.ndim != 3 or filters.shape[1] > 64 or filters.shape[2] > 64:
        raise UserError(f"csmca: {path} should hold an (h, w, M) filter bank, got shape {filters.shape}")
    return filters


def load_dictionaries(dictionaries: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cartoon and texture filter banks, each (M, h, w).

    ``None``: the project's own learned dictionaries (``methods/dictionaries/csmca_*.npz``).
    A folder: its ``Dc_8_8_32.mat`` and ``Dt_8_8_32.mat`` (the authors' names) or
    ``csmca_cartoon.npz`` and ``csmca_texture.npz``. Two paths joined by a comma: cartoon, texture.
    """
    if dictionaries is None:
        paths = OWN_DICTIONARIES
    elif "," in str(dictionaries):
        paths = tuple(Path(p.strip()) for p in str(dictionaries).split(",", 1))
    else:
        folder = Path(dictionaries)
        if not folder.is_dir():
            raise UserError(f"csmca: dictionaries={dictionaries!r} is neither a folder nor 'cartoon,texture' files")
        paths = tuple(folder / n for n in AUTHORS_DICTIONARY_NAMES)
        if not all(p.is_file() for p in paths):
            paths = tuple(folder / p.name for p in OWN_DICTIONARIES)
    return _load_filters(paths[0]), _load_filters(paths[1])


# --- SPORCO building blocks -------------------------------------------------------------------------

def tikhonov_lowpass(image: np.ndarray, lam: float = 60.0, pad: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """SPORCO ``lowpass(s, lambda, npad)``: base = argmin ||x - s||^2 + lambda ||grad x||^2 (periodic
    on the image padded symmetrically by ``pad``); returns ``(base, image - base)``.

    ``image`` may be a stack (..., H, W); dtype is kept.
    """
    h, w = image.shape[-2:]
    shape = (h + 2 * pad, w + 2 * pad)
    grad_r = np.fft.rfft2(np.array([[-1.0, 1.0]]), s=shape)
    grad_c = np.fft.rfft2(np.array([[-1.0], [1.0]]), s=shape)
    denom = 1 + lam * np.abs(grad_r) ** 2 + lam * np.abs(grad_c) ** 2
    padded = np.pad(image, ((0, 0),) * (image.ndim - 2) + ((pad, pad), (pad, pad)), mode="symmetric")
    base = np.fft.irfft2(np.fft.rfft2(padded) / denom, s=shape)[..., pad:pad + h, pad:pad + w]
    base = base.astype(image.dtype)
    return base, image - base


def _filters_dft(filters: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Half-spectrum DFT of the filters zero-padded at the origin to ``shape`` (SPORCO's ``fft2(D, H, W)``).

    Read-only; cached, since every MCA round solves with the same two filter banks at one size.
    """
    filters = np.ascontiguousarray(filters, dtype=np.float64)
    return _filters_dft_cached(filters.tobytes(), filters.shape, tuple(shape))


@lru_cache(maxsize=8)
def _filters_dft_cached(data: bytes, filter_shape: tuple, shape: tuple) -> np.ndarray:
    dft = scipy.fft.rfft2(np.frombuffer(data, dtype=np.float64).reshape(filter_shape), s=shape)
    dft.setflags(write=False)
    return dft


def _synthesise(filters_f: np.ndarray, coeffs: np.ndarray, shape) -> np.ndarray:
    """``sum_m d_m * x_m`` (circular), coeffs (..., M, H, W) -> (..., H, W) float32."""
    import torch  # imported on first use: `import methods` stays fast
    spec = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(coeffs, dtype=np.float32)))
    spec *= torch.from_numpy(filters_f.astype(np.complex64))
    return torch.fft.irfft2(spec.sum(dim=-3), s=tuple(shape)).numpy()


def cbpdn(filters: np.ndarray, signal: np.ndarray, lam: float, rho: float, *, max_iter: int = 30,
          rel_tol: float = 1e-3, relax: float = 1.8, rho_ratio: float = 1.2, rho_scaling: float = 100.0,
          stats: list | None = None, workers: int | None = None) -> np.ndarray:
    """Convolutional BPDN ``min_x 1/2 ||sum_m d_m * x_m - s||^2 + lam sum_m ||x_m||_1`` by ADMM.

    SPORCO's ``cbpdn`` with its default options (AutoRho every iteration with adaptive scaling,
    normalised residuals, relaxation 1.8, AbsStopTol 0) for a batch of signals (N, H, W), each with
    its own stopping test and rho. Returns the sparse variable Y, (N, M, H, W) float32. ``stats``, if
    given, receives the number of iterations each signal ran.

    The signals are independent problems; with ``workers`` > 1 (default :func:`worker_threads`) they
    run in that many threads, each on one torch thread (numpy, the FFTs and ``conv2d`` release the GIL).
    """
    import torch  # imported on first use: `import methods` stays fast
    n, h, w = signal.shape
    dft = _filters_dft(filters, (h, w))                                   # (M, H, W/2+1) complex128
    energy = (dft.real ** 2 + dft.imag ** 2).sum(axis=0).astype(np.float32)  # |d|^2 per frequency
    dft = torch.from_numpy(dft.astype(np.complex64))
    weights = torch.from_numpy(np.ascontiguousarray(filters, dtype=np.float32)[:, None])  # (M, 1, h, w)
    signal_f = torch.fft.rfft2(torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32)))
    y = np.zeros((n,) + dft.shape[:1] + (h, w), dtype=np.float32)
    iterations = np.zeros(n, dtype=int)
    params = dict(lam=lam, rho=rho, max_iter=max_iter, rel_tol=rel_tol, relax=relax,
                  rho_ratio=rho_ratio, rho_scaling=rho_scaling)

    def solve(i):
        iterations[i] = _cbpdn_admm(dft, energy, weights, signal_f[i], y[i], **params)

    workers = worker_threads() if workers is None else max(1, int(workers))
    with single_threaded_torch():
        if workers == 1 or n == 1:
            for i in range(n):
                solve(i)
        else:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(max_workers=min(workers, n)) as pool:
                list(pool.map(solve, range(n)))
    if stats is not None:
        stats.extend(iterations.tolist())
    return y


# Block sizes of the two blocked passes, chosen so that a block of every array involved stays in cache
# (256x256 single precision: 256 KiB a filter, 32 KiB a row of 32 filters).
_FILTERS_PER_BLOCK = 4
_ROWS_PER_BLOCK = 32


def _cbpdn_admm(dft, energy, weights, signal_f, y_out, *, lam, rho, max_iter, rel_tol, relax, rho_ratio,
                rho_scaling) -> int:
    """ADMM of :func:`cbpdn` for one signal; writes Y into ``y_out`` (M, H, W) and returns the iterations run.

    X-step: per frequency a rank-one system ``(a a^H + rho I) x = a s + rho z`` with ``a = conj(d)``,
    ``z = FFT(y - u)``, solved by Sherman-Morrison as ``x = z + a g`` with
    ``g = (s - d^T z) / (|d|^2 + rho)`` (Wohlberg 2016, Eq. 12). Only ``d^T z`` needs the M forward
    FFTs; ``a g`` is one inverse FFT of ``g`` and then the circular correlation of ``g`` with each
    small filter ``d_m`` (``conj`` in the DFT domain), computed directly by ``conv2d``, so
    ``x = y - u + d_m (star) g``. Y-step: the soft threshold of the over-relaxed ``X_r + U``; the
    scaled dual update ``U + X_r - Y`` equals the clipped ``clip(X_r + U, -lam/rho, lam/rho)``.

    Memory traffic, not arithmetic, bounds the element-wise steps, so each iteration makes two
    passes over Y and U: (A) in blocks of filters, ``y - u`` and its FFTs summed into ``d^T z``;
    (B) in blocks of rows, the correlation for those rows, the Y-step, the dual update and the
    residual norms, so that X never leaves the cache. A change of rho rescales U in the next pass A.
    """
    import torch  # imported on first use: `import methods` stays fast
    m, h, w = y_out.shape
    fh, fw = weights.shape[-2:]
    shape = (h, w)
    rsdl_target = 1 + 18.3 ** (np.log10(lam) + 1)
    y = y_out
    y[...] = 0
    u = np.zeros_like(y_out)
    filter_blocks = [slice(b, min(b + _FILTERS_PER_BLOCK, m)) for b in range(0, m, _FILTERS_PER_BLOCK)]
    row_blocks = [slice(b, min(b + _ROWS_PER_BLOCK, h)) for b in range(0, h, _ROWS_PER_BLOCK)]
    filter_tmp = np.empty((_FILTERS_PER_BLOCK, h, w), dtype=np.float32)
    row_tmp, relaxed, new_u = (np.empty((m, _ROWS_PER_BLOCK, w), dtype=np.float32) for _ in range(3))
    relax32, keep32 = np.float32(relax), np.float32(1 - relax)
    u_scale = 1.0                                    # pending division of U after a change of rho
    k = 0
    for k in range(1, max_iter + 1):
        # X-step, pass A: d^T FFT(y - u)
        dz = torch.zeros(signal_f.shape, dtype=torch.complex64)
        for blk in filter_blocks:
            t = filter_tmp[:blk.stop - blk.start]
            if u_scale != 1:
                np.divide(u[blk], np.float32(u_scale), out=u[blk])
            np.subtract(y[blk], u[blk], out=t)
            dz += torch.fft.rfft2(torch.from_numpy(t)).mul_(dft[blk]).sum(dim=0)
        u_scale = 1.0
        gain_f = (signal_f - dz) * torch.from_numpy(1 / (energy + np.float32(rho)))
        gain = torch.fft.irfft2(gain_f, s=shape).numpy()
        # circular correlation with d_m: wrap the first fh-1 rows / fw-1 columns round to the end
        gain = torch.from_numpy(np.pad(gain, ((0, fh - 1), (0, fw - 1)), mode="wrap"))[None, None]
        # pass B: x = y - u + correction, over-relaxed Y-step (soft threshold), dual update, norms
        thr = np.float32(lam / rho)
        sq = np.zeros(5)                             # |x|^2, |y|^2, |u|^2, |y_prev - y|^2, |x - y|^2
        for rows in row_blocks:
            size = rows.stop - rows.start
            x = torch.nn.functional.conv2d(gain[..., rows.start:rows.stop + fh - 1, :], weights)[0].numpy()
            t, v, un = row_tmp[:, :size], relaxed[:, :size], new_u[:, :size]
            yb, ub = y[:, rows], u[:, rows]
            np.subtract(yb, ub, out=t)
            x += t
            np.multiply(x, relax32, out=v)
            np.multiply(yb, keep32, out=t)
            v += t
            v += ub                                  # X_r + U
            np.clip(v, -thr, thr, out=un)            # new U = X_r + U - new Y
            v -= un                                  # new Y: soft threshold of X_r + U
            np.subtract(yb, v, out=t)
            sq[3] += _sq(t)
            np.subtract(x, v, out=t)
            sq[4] += _sq(t)
            sq[0] += _sq(x)
            sq[1] += _sq(v)
            sq[2] += _sq(un)
            yb[...] = v
            ub[...] = un
        nx, ny, nu, dual_change, primal_gap = np.sqrt(sq)
        # MATLAB semantics on purpose: an all-zero code (a flat detail layer) gives r = 0/0 = NaN, and
        # NaN compares false below, so rho stays put and the solver runs on to max_iter as SPORCO does.
        with np.errstate(divide="ignore", invalid="ignore"):
            r = primal_gap / max(nx, ny)
            s_ = dual_change / nu
            if k != 1:
                mult = np.sqrt(r / (s_ * rsdl_target))
                if mult < 1:
                    mult = 1 / mult
                if mult > rho_scaling:
                    mult = rho_scaling
                rsf = 1.0
                if r > rsdl_target * rho_ratio * s_:
                    rsf = mult
                if s_ > (rho_ratio / rsdl_target) * r:
                    rsf = 1 / mult
                if rsf != 1:
                    rho *= rsf
                    u_scale = rsf
        if r <= rel_tol and s_ <= rel_tol:
            break
    return k


def _sq(a: np.ndarray) -> float:
    """Squared l2 norm of a contiguous float32 block (BLAS dot, as ``norm(x(:))^2``)."""
    flat = a.ravel()
    return float(np.dot(flat, flat))


def mca_decompose(detail: np.ndarray, cartoon: np.ndarray, texture: np.ndarray, rounds: int = 6,
                  stats: list | None = None):
    """The authors' ``CSMCA(s, iters, Dc, Dt)`` for a batch of detail layers (N, H, W).

    Returns the last cartoon and texture coefficient maps, each (N, M, H, W) float32.
    """
    s = np.ascontiguousarray(detail, dtype=np.float32)
    shape = s.shape[-2:]
    dft_c, dft_t = _filters_dft(cartoon, shape), _filters_dft(texture, shape)
    part_c = np.zeros_like(s)
    part_t = np.zeros_like(s)
    coef_c = coef_t = None
    for k in range(1, rounds + 1):
        lam = max(0.6 - 0.1 * k, 0.005)
        part_c = part_c + (s - part_t - part_c)
        coef_c = cbpdn(cartoon, part_c, lam, 50 * lam + 1, stats=stats)
        part_c = _synthesise(dft_c, coef_c, shape)
        part_t = part_t + (s - part_t - part_c)
        coef_t = cbpdn(texture, part_t, lam, 1.0, stats=stats)
        part_t = _synthesise(dft_t, coef_t, shape)
    return coef_c, coef_t


def fuse_coefficients(coef_a: np.ndarray, coef_b: np.ndarray, radius: int) -> np.ndarray:
    """The authors' ``coef_fusion``: per pixel, A's coefficient vector where its window-mean l1
    activity (zero-padded ``imfilter``) is strictly larger, else B's."""
    size = 2 * radius + 1
    act_a = scipy.ndimage.uniform_filter(np.abs(coef_a).sum(axis=0), size, mode="constant")
    act_b = scipy.ndimage.uniform_filter(np.abs(coef_b).sum(axis=0), size, mode="constant")
    return np.where((act_a > act_b)[None], coef_a, coef_b)


@register_method("csmca", citation="Y. Liu, X. Chen, R. K. Ward, Z. J. Wang, IEEE Signal Process. Lett. 26(3):485-489, 2019",
                 allowed={"rounds": between(1), "lowpass_lambda": above(0), "lowpass_pad": between(0),
                          "cartoon_radius": between(0), "texture_radius": between(0)})
def csmca_fusion(a: np.ndarray, b: np.ndarray, *, dictionaries: str | None = None, rounds: int = 6,
                 lowpass_lambda: float = 60.0, lowpass_pad: int = 16, cartoon_radius: int = 5,
                 texture_radius: int = 2) -> np.ndarray:
    """CSMCA fusion (Liu et al. 2019): Tikhonov base averaged, cartoon/texture CSR coefficients by max activity.

    Parameters
    ----------
    a, b : (H, W) float images in [0, 1].
    dictionaries : None for the project's own learned 8x8x32 cartoon/texture filters; a folder holding
        the authors' ``Dc_8_8_32.mat`` / ``Dt_8_8_32.mat``; or ``"cartoon_file,texture_file"``.
    rounds : MCA rounds (6).
    lowpass_lambda, lowpass_pad : SPORCO ``lowpass`` parameters (60, 16).
    cartoon_radius, texture_radius : activity window radii of the fusion rule (5, 2).

    Returns
    -------
    (H, W) float32, unclipped (the authors return ``uint8(s*255)`` of it).
    """
    for name, value, low in (("rounds", rounds, 1), ("lowpass_pad", lowpass_pad, 0),
                             ("cartoon_radius", cartoon_radius, 0), ("texture_radius", texture_radius, 0)):
        if int(value) != value or value < low:
            raise UserError(f"csmca: {name} must be an integer >= {low}, got {value!r}")
    if not lowpass_lambda > 0:
        raise UserError(f"csmca: lowpass_lambda must be > 0, got {lowpass_lambda!r}")
    cartoon, texture = load_dictionaries(dictionaries)
    # single(u8)/255 as in the authors' code (the registry passes float32 u8/255 already)
    sources = np.stack([np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)])
    base, detail = tikhonov_lowpass(sources, lowpass_lambda, int(lowpass_pad))
    coef_c, coef_t = mca_decompose(detail, cartoon, texture, int(rounds))
    shape = sources.shape[-2:]
    fused_c = fuse_coefficients(coef_c[0], coef_c[1], int(cartoon_radius))
    fused_t = fuse_coefficients(coef_t[0], coef_t[1], int(texture_radius))
    detail_f = (_synthesise(_filters_dft(cartoon, shape), fused_c, shape)
                + _synthesise(_filters_dft(texture, shape), fused_t, shape))
    return ((base[0] + base[1]) / 2 + detail_f).astype(np.float32)


# --- convolutional dictionary learning (the project's own cartoon/texture filters) -----------------

def _project_filters(full: np.ndarray, size: int) -> np.ndarray:
    """Constraint set of SPORCO's ccmod: support ``size x size`` at the origin, unit l2 norm."""
    out = np.zeros_like(full)
    out[:, :size, :size] = full[:, :size, :size]
    norms = np.sqrt((out ** 2).sum(axis=(1, 2), keepdims=True))
    return out / np.maximum(norms, 1e-12)


def learn_convolutional_dictionary(images: np.ndarray, *, n_filters: int = 32, size: int = 8,
                                   lam: float = 0.1, iterations: int = 30, sigma: float = 1.0,
                                   seed: int = 0) -> np.ndarray:
    """Convolutional dictionary learning by alternating ADMM (as SPORCO's ``ConvBPDNDictLearn``).

    Alternates (a) sparse coding of all training images with :func:`cbpdn` (10 ADMM iterations,
    lambda ``lam``) and (b) the dictionary update of ``ccmod``: ADMM on
    ``min_d sum_k ||sum_m d_m * x_km - s_k||^2`` s.t. each ``d_m`` is supported on ``size x size``
    with unit norm, the linear step solved per frequency as an (M x M) system (Wohlberg 2016, Sec. V).

    Parameters
    ----------
    images : (N, H, W) zero-mean training signals (e.g. detail layers).
    Returns
    -------
    (n_filters, size, size) float32 filters.
    """
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    rng = np.random.default_rng(seed)
    full = np.zeros((n_filters, h, w))
    full[:, :size, :size] = rng.standard_normal((n_filters, size, size))
    dictionary = _project_filters(full, size)
    signal_f = np.fft.rfft2(images.astype(np.float64))                         # (N, H, W')
    dual = np.zeros_like(dictionary)
    split = dictionary.copy()
    for _ in range(iterations):
        coef = cbpdn(dictionary[:, :size, :size], images, lam, 50 * lam + 1, max_iter=10)
        coef_f = np.fft.rfft2(coef.astype(np.float64))                        # (N, M, H, W')
        xf = np.moveaxis(coef_f, (0, 1), (-2, -1))                            # (H, W', N, M)
        gram = np.conj(np.swapaxes(xf, -1, -2)) @ xf + sigma * np.eye(n_filters)
        rhs_data = np.einsum("hwnm,nhw->hwm", np.conj(xf), signal_f)
        for _ in range(5):
            target_f = np.moveaxis(np.fft.rfft2(split - dual), 0, -1)         # (H, W', M)
            d_f = np.linalg.solve(gram, (rhs_data + sigma * target_f)[..., None])[..., 0]
            dictionary_full = np.fft.irfft2(np.moveaxis(d_f, -1, 0), s=(h, w))
            split = _project_filters(dictionary_full + dual, size)
            dual += dictionary_full - split
        dictionary = split
    return dictionary[:, :size, :size].astype(np.float32)


def _training_layers(harvard: Path, n_images: int, crop: int, seed: int):
    """Cartoon and texture training signals from Harvard train images.

    Cartoon: the detail layer (SPORCO lowpass(., 60, 16) removed) of a 7x7 median-filtered image --
    piecewise-smooth structure without fine texture. Texture: the detail layer minus that cartoon.
    """
    from common.io import read_image

    files = sorted(harvard.glob("*/train/*/*.png"))
    if not files:
        raise UserError(f"csmca: no training images under {harvard}/*/train/*/")
    rng = np.random.default_rng(seed)
    picked = [files[i] for i in rng.choice(len(files), size=min(n_images, len(files)), replace=False)]
    cartoon, texture = [], []
    for path in picked:
        img = read_image(path)
        img = img.mean(axis=2) if img.ndim == 3 else img
        top = (img.shape[0] - crop) // 2
        left = (img.shape[1] - crop) // 2
        img = img[top:top + crop, left:left + crop].astype(np.float32)
        _, detail = tikhonov_lowpass(img)
        _, smooth_detail = tikhonov_lowpass(scipy.ndimage.median_filter(img, size=7))
        cartoon.append(smooth_detail)
        texture.append(detail - smooth_detail)
    return np.stack(cartoon), np.stack(texture)


def main(argv=None) -> None:
    """Learn and save the cartoon/texture dictionaries.

    ``python -c "from methods.csmca import main; main()" --harvard DIR [--out DIR]``
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--harvard", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=DICTIONARY_DIR)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cartoon_imgs, texture_imgs = _training_layers(args.harvard, args.images, args.crop, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, imgs, lam in (("cartoon", cartoon_imgs, 0.1), ("texture", texture_imgs, 0.05)):
        filters = learn_convolutional_dictionary(imgs, lam=lam, iterations=args.iterations, seed=args.seed)
        np.savez_compressed(args.out / f"csmca_{name}.npz", filters=filters)
        print(f"{name}: {filters.shape} -> {args.out / f'csmca_{name}.npz'}")

