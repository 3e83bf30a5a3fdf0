"""Shared building blocks of the metric suite: scaling, histograms, entropies, windows, filters, SSIM maps.

Everything here works on float64 arrays. Filtering follows MATLAB's naming because most reference
codes are MATLAB: ``filter2(h, x, 'same')`` is a correlation with zero padding, ``'valid'`` keeps only
the positions where the window fits. Separable windows are applied as two 1-D passes (exact up to
rounding and much faster than 2-D convolution).
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from scipy import ndimage

from common.errors import MetricWarning  # noqa: F401  (defined at the base so the CLI can show it)
from metrics._compiled import compiled_kernels
from metrics._shared import freeze, shared

SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])  # d/dx (columns), MATLAB flt1
SOBEL_Y = SOBEL_X.T.copy()                                                    # d/dy (rows), MATLAB flt2


class ImageTooSmall(ValueError):
    """The images are smaller than a metric's window or scale pyramid needs; ``compute`` turns it into
    NaN with a warning, so that one such metric does not stop a whole suite."""


def warn(message: str) -> None:
    warnings.warn(message, MetricWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------- scaling
def to255(x: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> the 0..255 scale every reference works on (once per input within ``compute``).

    An image read from an 8-bit file arrives as float32(k/255), and float32(k/255) * 255 is k only to
    about 1e-5. When every pixel is that close to an integer the image is snapped to the exact grey
    levels k, so the metric sees what the references saw (a 16-bit or real-valued image is left alone).
    """
    return shared("to255", _to255, x)


def _to255(x: np.ndarray) -> np.ndarray:
    y = np.asarray(x, dtype=np.float64) * 255.0
    k = np.rint(y)
    residue = np.subtract(y, k)  # in-place abs/max: this runs for every metric on every image
    np.abs(residue, out=residue)
    if residue.max(initial=0.0) < 1e-3:
        return k
    return y


def grey_levels(x: np.ndarray) -> np.ndarray:
    """Integer grey levels 0..255 of a [0, 1] image (MATLAB uint8 rounding, floor(255x + 0.5)).

    For 8-bit sources ``float32(k/255) * 255`` is within 1e-5 of k, so this recovers k exactly; a 16-bit
    source is quantised to 256 levels, which is what every 256-bin histogram reference assumes.
    """
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) * 255.0 + 0.5), 0, 255).astype(np.int64)


def stretch_levels(x: np.ndarray) -> np.ndarray:
    """Zheng Liu's ``normalize1``: min-max stretch to 0..255, rounded (all-zero input is kept); once per
    input array within ``compute`` (NMI and NCIE stretch the same images, and so do Qcb and Qcv)."""
    return shared("stretch_levels", _stretch_levels, x)


def _stretch_levels(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    lo, hi = x.min(), x.max()
    if lo == 0 and hi == 0:
        return x.copy()
    if hi == lo:  # MATLAB gives 0/0 = NaN here; a constant image carries one grey level
        return np.zeros_like(x)
    return matlab_round((x - lo) / (hi - lo) * 255.0)


def matlab_round(y: np.ndarray) -> np.ndarray:
    """MATLAB ``round`` (half away from zero) for y >= 0, exact: floor(y + 0.5) is not, because
    y + 0.5 can round up in floating point when y is just below a half."""
    r = np.floor(y)
    return r + (y - r >= 0.5)


# -------------------------------------------------------------------------------------- histograms
def histogram(levels: np.ndarray, bins: int = 256) -> np.ndarray:
    return np.bincount(levels.ravel(), minlength=bins).astype(np.float64)


def joint_histogram(x_levels: np.ndarray, y_levels: np.ndarray, bins: int = 256) -> np.ndarray:
    """Joint histogram, rows indexed by ``x``, columns by ``y``."""
    flat = x_levels.ravel() * bins + y_levels.ravel()
    return np.bincount(flat, minlength=bins * bins).reshape(bins, bins).astype(np.float64)


def entropy(counts: np.ndarray, base: float = 2.0) -> float:
    """Shannon entropy of a histogram (any shape), empty bins skipped."""
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum() / np.log(base))


def mutual_information(x_levels, y_levels, base: float = 2.0, bins: int = 256):
    """(I(X;Y), H(X), H(Y), H(X,Y)) from integer grey levels."""
    joint = joint_histogram(x_levels, y_levels, bins)
    hx, hy, hxy = entropy(joint.sum(1), base), entropy(joint.sum(0), base), entropy(joint, base)
    return hx + hy - hxy, hx, hy, hxy


# -------------------------------------------------------------------------------- windows, filters
def gaussian_window(size: int, sigma: float, dtype=np.float64) -> np.ndarray:
    """1-D normalised Gaussian; the outer product is MATLAB ``fspecial('gaussian', size, sigma)``."""
    coords = np.arange(size, dtype=dtype) - dtype((size - 1) / 2)
    g = np.exp(-(coords ** 2) / dtype(2 * sigma * sigma))
    return (g / g.sum()).astype(np.float64)


def filter_separable(x: np.ndarray, g: np.ndarray, shape: str = "valid", mode: str = "constant") -> np.ndarray:
    """Correlate ``x`` with the separable window ``outer(g, g)``.

    ``shape='valid'``: only positions where the window fits (output shrinks by len(g)-1);
    ``'same'``: output of the input's size with border ``mode`` (scipy.ndimage names; 'constant' = zero).
    """
    n = len(g)
    if n % 2 == 0:
        raise ValueError("only odd window lengths are supported")
    if shape == "valid" and min(x.shape) < n:
        raise ImageTooSmall(f"image {x.shape} smaller than the {n}x{n} window")
    kernels = compiled_kernels("metrics._filter_numba", _warm_up_filters, "window filtering")
    if kernels is not None and x.ndim == 2 and x.dtype == np.float64 and np.array_equal(g, g[::-1]):
        return _filter_separable_compiled(kernels, x, np.ascontiguousarray(g, dtype=np.float64), shape, mode)
    if shape == "valid":
        # the border mode never reaches the kept centre region, so cropping gives MATLAB's 'valid'
        h = n // 2
        y = ndimage.correlate1d(x, g, axis=0, mode="nearest")[h:x.shape[0] - h]
        return ndimage.correlate1d(y, g, axis=1, mode="nearest")[:, h:x.shape[1] - h]
    return ndimage.correlate1d(ndimage.correlate1d(x, g, axis=0, mode=mode), g, axis=1, mode=mode)


_NUMPY_PAD = {"constant": "constant", "reflect": "symmetric", "nearest": "edge", "mirror": "reflect",
              "wrap": "wrap"}   # scipy.ndimage border mode -> np.pad mode that extends the same way


def pad_borders(x: np.ndarray, rows: int, cols: int, mode: str) -> np.ndarray:
    """``np.pad(x, ((rows, rows), (cols, cols)), mode=_NUMPY_PAD[mode])`` for a 2-D array (the same
    values, rows padded first and then every row's columns, as np.pad does), by slicing into one
    new array: np.pad's general machinery costs ~0.1 ms a call, and the filters pad a few hundred
    times per ``compute``. Falls back to np.pad where a border is wider than one reflection."""
    n, m = x.shape
    wide = {"constant": False, "nearest": False, "wrap": rows > n or cols > m,
            "reflect": rows > n or cols > m, "mirror": rows >= n or cols >= m}.get(mode, True)
    if wide or x.ndim != 2:
        return np.pad(x, ((rows, rows), (cols, cols)), mode=_NUMPY_PAD[mode])
    out = np.empty((n + 2 * rows, m + 2 * cols), dtype=x.dtype)
    out[rows:rows + n, cols:cols + m] = x
    for axis, width in ((0, rows), (1, cols)):
        if width == 0:
            continue
        if axis == 0:
            inner = out[rows:rows + n, cols:cols + m]            # the rows: centre columns only
            top, bottom = out[:rows, cols:cols + m], out[rows + n:, cols:cols + m]
        else:
            inner = out[:, cols:cols + m].T                      # then the columns of every row
            top, bottom = out[:, :cols].T, out[:, cols + m:].T
        if mode == "constant":
            top[...], bottom[...] = 0.0, 0.0
        elif mode == "nearest":
            top[...], bottom[...] = inner[0], inner[-1]
        elif mode == "reflect":                                  # np.pad 'symmetric': edge repeated
            top[...], bottom[...] = inner[:width][::-1], inner[::-1][:width]
        elif mode == "mirror":                                   # np.pad 'reflect': edge not repeated
            top[...], bottom[...] = inner[1:width + 1][::-1], inner[::-1][1:width + 1]
        else:                                                    # wrap
            top[...], bottom[...] = inner[-width:], inner[:width]
    return out


def _filter_separable_compiled(kernels, x, g, shape, mode):
    """``filter_separable`` in numba loops (``metrics._filter_numba``): ndimage's additions in ndimage's
    order, so the same bits; the borders come from index maps (``_extension``), not padded copies."""
    h = len(g) // 2
    row_map, col_map = (_extension(n, h, shape, mode) for n in x.shape)
    out = np.empty((len(row_map) - 2 * h, len(col_map) - 2 * h))
    kernels.correlate_separable(np.ascontiguousarray(x), g, row_map, col_map, h if shape == "same" else 0, out)
    return out


@lru_cache(maxsize=64)
def _extension(n: int, h: int, shape: str, mode: str) -> np.ndarray:
    """Where each position of an axis of length ``n`` extended for a window of half-length ``h`` reads:
    the index ``np.pad(x, h, mode=_NUMPY_PAD[mode])`` copies from (-1 for 'constant', a zero), i.e.
    ``np.pad`` of the indices themselves; for 'valid', no extension (the identity)."""
    if shape == "valid":
        index = np.arange(n)
    elif mode == "constant":
        index = np.pad(np.arange(n), h, mode="constant", constant_values=-1)
    else:
        index = np.pad(np.arange(n), h, mode=_NUMPY_PAD[mode])
    return freeze(index.astype(np.intp))


def _warm_up_filters(kernels) -> None:
    x, g, taps = np.ones((3, 3)), np.ones(3), np.zeros(1, np.intp)
    kernels.correlate_separable(x, g, np.arange(3), np.arange(3), 0, np.empty((1, 1)))
    kernels.correlate_taps(x, taps, taps, g[:1], np.empty((1, 1)))


def correlate(x: np.ndarray, kernel: np.ndarray, mode: str = "constant") -> np.ndarray:
    """``scipy.ndimage.correlate(x, kernel, mode=mode, cval=0)`` for a small odd 2-D kernel (Sobel,
    Prewitt): in a numba loop over the kernel's non-zero taps when numba is there, with ndimage's sum
    order, so the same bits (signed zeros included); ~10x faster than ndimage's general N-D loop."""
    kernels = compiled_kernels("metrics._filter_numba", _warm_up_filters, "window filtering")
    weights = kernel[kernel != 0]
    if (kernels is None or x.ndim != 2 or x.dtype != np.float64 or kernel.ndim != 2
            or not all(n % 2 for n in kernel.shape) or (np.abs(weights) <= np.finfo(float).eps).any()):
        return ndimage.correlate(x, kernel, mode=mode, cval=0.0)
    kh, kw = kernel.shape
    padded = pad_borders(x, kh // 2, kw // 2, mode)
    taps = np.argwhere(kernel != 0)
    out = np.empty_like(x)
    kernels.correlate_taps(padded, taps[:, 0].copy(), taps[:, 1].copy(), weights.astype(np.float64), out)
    return out


def filter2(kernel: np.ndarray, x: np.ndarray, shape: str = "same") -> np.ndarray:
    """MATLAB ``filter2`` (correlation; 'same' pads with zeros, 'valid' crops) for small 2-D kernels."""
    if shape == "same":
        # ndimage centres an even kernel one sample later than MATLAB; only odd kernels are used here
        return correlate(x, kernel, mode="constant")
    kh, kw = kernel.shape
    full = correlate(x, kernel, mode="constant")
    return full[(kh - 1) // 2: x.shape[0] - kh // 2, (kw - 1) // 2: x.shape[1] - kw // 2]


def sobel(x: np.ndarray, mode: str = "constant") -> tuple[np.ndarray, np.ndarray]:
    """(gx, gy): correlation with MATLAB's flt1 / flt2 Sobel kernels, border ``mode`` (ndimage name)."""
    return correlate(x, SOBEL_X, mode), correlate(x, SOBEL_Y, mode)


class LocalStatistics:
    """Window-weighted local means, variances and covariances (population, weights ``outer(g, g)``) of
    several named images, each filtered once however many SSIM maps share it.

    Values are those of filtering each pair separately: var = filt(x * x) - mean_x^2 and
    cov = filt(x * y) - mean_x mean_y, with the operands in the order the pair is named.
    """

    def __init__(self, images: dict, g: np.ndarray, shape: str = "valid"):
        self.images, self.g, self.shape = images, g, shape
        self._mean, self._var, self._cov, self._ssim = {}, {}, {}, {}

    @classmethod
    def of(cls, images: dict, g: np.ndarray, shape: str = "valid") -> "LocalStatistics":
        """The statistics of these images under this window, one instance per ``compute`` call, so
        that metrics using the same window (SSIM, Qw, Qe; Qy, Qc) share every filtered map."""
        names = tuple(images)
        return shared("local_statistics", lambda *x: cls(dict(zip(names, x)), g, shape), *images.values(),
                      options=(names, g.tobytes(), shape))

    def _filtered(self, x):
        return freeze(filter_separable(x, self.g, self.shape))

    def mean(self, k):
        if k not in self._mean:
            self._mean[k] = self._filtered(self.images[k])
        return self._mean[k]

    def var(self, k):
        if k not in self._var:
            x, m = self.images[k], self.mean(k)
            self._var[k] = freeze(self._filtered(x * x) - m * m)
        return self._var[k]

    def cov(self, j, k):
        if (j, k) not in self._cov:
            self._cov[j, k] = freeze(self._filtered(self.images[j] * self.images[k]) - self.mean(j) * self.mean(k))
        return self._cov[j, k]

    def ssim(self, j, k, c1, c2):
        """(SSIM map, contrast-structure map) of images j, k: Wang et al. 2004, eq. (13)."""
        if (j, k, c1, c2) not in self._ssim:
            mx, my, vx, vy = self.mean(j), self.mean(k), self.var(j), self.var(k)
            cs = (2 * self.cov(j, k) + c2) / (vx + vy + c2)
            self._ssim[j, k, c1, c2] = freeze(((2 * mx * my + c1) / (mx * mx + my * my + c1) * cs, cs))
        return self._ssim[j, k, c1, c2]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN (0/0) when either image is constant."""
    dx, dy = x - x.mean(), y - y.mean()
    den = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return float((dx * dy).sum() / den)


def freqspace_grid(shape) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``[u, v] = freqspace([rows, cols], 'meshgrid')`` (normalised frequencies in [-1, 1))."""
    rows, cols = shape

    def axis(n):
        return (np.arange(n) - np.floor(n / 2)) * (2.0 / n)
    return np.meshgrid(axis(cols), axis(rows))


def block_reduce(x: np.ndarray, block: int, fn) -> np.ndarray:
    """MATLAB ``blkproc(x, [b b], fn)`` with zero padding of partial blocks; ``fn`` reduces axes (1, 3)."""
    rows, cols = x.shape
    pr, pc = -rows % block, -cols % block
    if pr or pc:
        x = np.pad(x, ((0, pr), (0, pc)))
    r, c = x.shape
    return fn(x.reshape(r // block, block, c // block, block))
