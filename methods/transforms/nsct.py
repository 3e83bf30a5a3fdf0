"""Nonsubsampled contourlet transform (NSCT), as ``nsctdec`` / ``nsctrec`` of the NSCT toolbox.

The NSCT is a nonsubsampled pyramid (two-channel a-trous filter bank, filters upsampled by 2^j)
followed, on every band-pass level, by a nonsubsampled directional filter bank (NSDFB): a tree of
two-channel fan / parallelogram filter banks whose filters are upsampled by quincunx and shearing
matrices. Nothing is decimated, so every sub-band has the image size.

The port follows the toolbox (Cunha, Zhou, Do) function by function:

* ``atrousfilters('pyrexc')`` pyramid filters; ``nsfbdec``/``nsfbrec`` with ``symext`` (symmetric
  extension, edge repeated) and ``atrousc`` (dilated 'valid' correlation);
* ``dfilters('vk')`` diamond filters (1-D Vetterli-Kovacevic prototypes through the McClellan
  transform ``ftrans2`` with the diamond kernel), scaled by 1/sqrt(2); fan filters by
  ``modulate2(., 'c')``; ``parafilters`` (modulation, transposition, ``resampz`` shearing);
* ``nssfbdec``/``nssfbrec``: periodic convolution, with the filter upsampled by a 2x2 integer matrix
  (``zconv2``) or not (``efilter2``); ``nsdfbdec``/``nsdfbrec`` tree with the sampling matrices
  ``q1 = [1 -1; 1 1]`` and ``M_k^(l)`` of the toolbox.

Levels are given coarse to fine as in ``nsctdec(x, [2, 3, 3, 4], ...)``: the finest pyramid level
gets the last entry (2^4 = 16 directions). Convolutions are sums of shifted whole-image arrays, one
per non-zero filter tap (no pixel loops).

References
----------
A. L. da Cunha, J. Zhou, M. N. Do, "The nonsubsampled contourlet transform: theory, design, and
applications", IEEE Trans. Image Process. 15(10):3089-3101, 2006.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# atrousfilters('pyr' / 'pyrexc'): one quadrant of each symmetric filter (toolbox values).
_PYR_H0 = np.array([[-0.003236043456039806, -0.012944173824159223, -0.019416260736238835],
                    [-0.012944173824159223, 0.0625, 0.15088834764831843],
                    [-0.019416260736238835, 0.15088834764831843, 0.3406092167691145]])
_PYR_G0 = np.array([[-0.00016755163599004882, -0.001005309815940293, -0.002513274539850732, -0.003351032719800976],
                    [-0.001005309815940293, -0.005246663087920392, -0.01193886400821893, -0.015395021472477663],
                    [-0.002513274539850732, -0.01193886400821893, 0.06769410071569153, 0.15423938036811946],
                    [-0.003351032719800976, -0.015395021472477663, 0.15423938036811946, 0.3325667382415921]])
_PYR_SMALL_HIGH = np.array([[-0.003236043456039806, -0.012944173824159223, -0.019416260736238835],
                            [-0.012944173824159223, -0.0625, -0.09911165235168155],
                            [-0.019416260736238835, -0.09911165235168155, 0.8406092167691145]])
_PYR_LARGE_HIGH = np.array([[0.00016755163599004882, 0.001005309815940293, 0.002513274539850732, 0.003351032719800976],
                            [0.001005309815940293, -0.0012254238241592198, -0.013949483640099517, -0.023437500000000007],
                            [0.002513274539850732, -0.013949483640099517, -0.06769410071569153, -0.10246268507148255],
                            [0.003351032719800976, -0.023437500000000007, -0.10246268507148255, 0.8486516952966369]])


def _mirror_quadrant(q: np.ndarray) -> np.ndarray:
    """``[q, fliplr(q(:, 1:end-1))]`` then the same on rows: the full symmetric filter."""
    q = np.hstack([q, q[:, -2::-1]])
    return np.vstack([q, q[-2::-1]])


def pyramid_filters(name: str = "pyrexc"):
    """``[h0, h1, g0, g1] = atrousfilters(name)``: analysis (h) and synthesis (g) pyramid filters.

    ``'pyrexc'`` is ``'pyr'`` with the two high-pass filters exchanged (5x5 analysis high-pass).
    """
    if name not in ("pyr", "pyrexc"):
        raise ValueError(f"pyramid filters {name!r} not implemented (use 'pyr' or 'pyrexc')")
    small, large = _mirror_quadrant(_PYR_SMALL_HIGH), _mirror_quadrant(_PYR_LARGE_HIGH)
    h1, g1 = (small, large) if name == "pyrexc" else (large, small)
    return _mirror_quadrant(_PYR_H0), h1, _mirror_quadrant(_PYR_G0), g1


def mcclellan(b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """McClellan transformation (``mctrans`` / ``ftrans2``) of a symmetric 1-D filter ``b`` by kernel ``t``.

    ``H(w1, w2) = sum_n a(n) T_n(T(w1, w2))`` with Chebyshev polynomials ``T_n`` (recursion
    ``P_n = 2 t * P_{n-1} - P_{n-2}``), ``a(0) = b(center)``, ``a(n) = 2 b(center + n)``.
    """
    from scipy.signal import convolve2d

    n = (len(b) - 1) // 2
    a = np.concatenate([[b[n]], 2 * b[n + 1:]])

    def add_centered(big, small):
        out = big.copy()
        r0 = (big.shape[0] - small.shape[0]) // 2
        c0 = (big.shape[1] - small.shape[1]) // 2
        out[r0:r0 + small.shape[0], c0:c0 + small.shape[1]] += small
        return out

    p0 = np.ones((1, 1))
    p1 = t.astype(np.float64)
    h = add_centered(a[1] * p1, a[0] * p0) if n >= 1 else a[0] * p0
    for i in range(2, n + 1):
        p2 = add_centered(2 * convolve2d(t, p1), -p0)
        h = add_centered(a[i] * p2, h)
        p0, p1 = p1, p2
    return h[::-1, ::-1]


def modulate2(x: np.ndarray, mode: str) -> np.ndarray:
    """``modulate2(x, mode)``: multiply rows ('r'), columns ('c') or both ('b') by (-1)^(n - center)."""
    n1 = np.arange(x.shape[0]) - x.shape[0] // 2
    n2 = np.arange(x.shape[1]) - x.shape[1] // 2
    y = x.astype(np.float64).copy()
    if mode in ("r", "b"):
        y *= ((-1.0) ** n1)[:, None]
    if mode in ("c", "b"):
        y *= ((-1.0) ** n2)[None, :]
    return y


def resampz(x: np.ndarray, kind: int, shift: int = 1) -> np.ndarray:
    """``resampz(x, kind, shift)``: shear columns (kinds 1, 2) or rows (3, 4), then trim zero borders."""
    if kind in (3, 4):
        return resampz(x.T, kind - 2, shift).T
    rows, cols = x.shape
    offsets = np.arange(cols) * (-shift if kind == 1 else shift)
    offsets -= min(offsets.min(), 0)
    y = np.zeros((rows + abs(shift * (cols - 1)), cols))
    for col, off in enumerate(offsets):               # one column per filter tap column
        y[off:off + rows, col] = x[:, col]
    nonzero = np.flatnonzero(np.linalg.norm(y, axis=1) > 0)
    return y[nonzero[0]:nonzero[-1] + 1] if nonzero.size else y[:0]


@dataclass(frozen=True)
class DirectionalFilters:
    """Fan filters ``k1, k2`` (first two levels) and parallelogram filters ``f1[i], f2[i]`` (i = 0..3)."""
    k1: np.ndarray
    k2: np.ndarray
    f1: tuple
    f2: tuple


@lru_cache(maxsize=8)
def directional_filters(name: str = "vk", kind: str = "d") -> DirectionalFilters:
    """The NSDFB filters ``nsctdec`` builds from ``dfilters(name, kind)`` (``kind`` 'd' or 'r')."""
    if name != "vk":
        raise ValueError(f"directional filters {name!r} not implemented (use 'vk')")
    if kind == "d":
        low, high = np.array([1.0, 2.0, 1.0]) / 4, np.array([-1.0, -2.0, 6.0, -2.0, -1.0]) / 4
    else:
        low, high = np.array([-1.0, 2.0, 6.0, 2.0, -1.0]) / 4, np.array([-1.0, 2.0, -1.0]) / 4
    diamond = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) / 4
    h1 = mcclellan(low, diamond) / np.sqrt(2)
    h2 = mcclellan(high, diamond) / np.sqrt(2)
    base1 = [modulate2(h1, "r"), modulate2(h1, "c")]
    base2 = [modulate2(h2, "r"), modulate2(h2, "c")]
    base1 += [base1[0].T, base1[1].T]
    base2 += [base2[0].T, base2[1].T]
    f1 = tuple(resampz(f, i + 1) for i, f in enumerate(base1))
    f2 = tuple(resampz(f, i + 1) for i, f in enumerate(base2))
    return DirectionalFilters(modulate2(h1, "c"), modulate2(h2, "c"), f1, f2)


# ----------------------------------------------------------------------------------------------
# convolutions
# ----------------------------------------------------------------------------------------------

def _taps(f: np.ndarray):
    rows, cols = np.nonzero(f)
    return zip(rows.tolist(), cols.tolist(), f[rows, cols].tolist())


def periodic_filter(x: np.ndarray, f: np.ndarray, mup: np.ndarray | None = None) -> np.ndarray:
    """Periodic convolution with ``f`` upsampled by the integer matrix ``mup`` (``zconv2``), or by
    nothing (``efilter2(x, f, 'per')``, ``mup = None``). Output has x's size.

    ``zconv2``: ``y[n] = sum_l f[l1, l2] x[(n + s - l M) mod size]`` with ``l M = (l1 M00 + l2 M10,
    l1 M01 + l2 M11)`` and ``s`` half the upsampled filter's extent (C integer division);
    ``efilter2``: ``y[n] = sum_l f[l] x[(n + ceil((size(f) - 1) / 2) - l) mod size]``.
    """
    out = np.zeros_like(x, dtype=np.float64)
    fr, fc = f.shape
    if mup is None:
        s1, s2 = fr - 1 - (fr - 1) // 2, fc - 1 - (fc - 1) // 2
        step = ((1, 0), (0, 1))
    else:
        (m0, m1), (m2, m3) = np.asarray(mup, dtype=int).tolist()
        extent1 = (m0 - 1) * (fr - 1) + m2 * (fc - 1) + fr - 1
        extent2 = (m3 - 1) * (fc - 1) + m1 * (fr - 1) + fc - 1
        s1, s2 = int(extent1 / 2), int(extent2 / 2)
        step = ((m0, m1), (m2, m3))
    for l1, l2, value in _taps(f):
        d1 = s1 - l1 * step[0][0] - l2 * step[1][0]
        d2 = s2 - l1 * step[0][1] - l2 * step[1][1]
        out += value * np.roll(x, (-d1, -d2), axis=(0, 1))
    return out


def symmetric_extend(x: np.ndarray, filter_shape: tuple[int, int], shift: tuple[int, int]) -> np.ndarray:
    """``symext(x, h, shift)``: symmetric extension (edge repeated) for a 'valid' filtering by h.

    Columns get ``floor(p/2) - s1 + 1`` on the left and ``p + s1`` on the right, rows likewise with
    ``q`` and ``s2`` (p, q = size(h), as the toolbox), then the result is cut to (m+p-1, n+q-1).
    """
    p, q = filter_shape
    m, n = x.shape
    left, right = p // 2 - shift[0] + 1, p + shift[0]
    top, bottom = q // 2 - shift[1] + 1, q + shift[1]
    cols = np.arange(-left, n + right)
    rows = np.arange(-top, m + bottom)
    fold = lambda idx, size: np.where(np.mod(idx, 2 * size) >= size, 2 * size - 1 - np.mod(idx, 2 * size), np.mod(idx, 2 * size))
    y = x[np.ix_(fold(rows, m), fold(cols, n))]
    return y[: m + p - 1, : n + q - 1]


def atrous_filter(x: np.ndarray, f: np.ndarray, level: int) -> np.ndarray:
    """One ``nsfbdec``/``nsfbrec`` branch: ``atrousc(symext(x, upsample2df(f, level), shift), f, 2^level)``
    (``conv2(symext(x, f, [1 1]), f, 'valid')`` at level 0): dilated 'valid' correlation."""
    dilation = 2 ** level
    shift = (1, 1) if level == 0 else (2 - 2 ** (level - 1),) * 2
    ext = symmetric_extend(x, (dilation * f.shape[0], dilation * f.shape[1]), shift)
    m, n = x.shape
    offset = dilation - 1 if level else 0
    out = np.zeros((m, n))
    for k1, k2, value in _taps(f):
        r0, c0 = offset + k1 * dilation, offset + k2 * dilation
        out += value * ext[r0:r0 + m, c0:c0 + n]
    return out


# ----------------------------------------------------------------------------------------------
# NSDFB
# ----------------------------------------------------------------------------------------------

def _shear_matrices(level: int):
    """(band index k, parallelogram filter index, sampling matrix M_k^(l)) for NSDFB level >= 3."""
    half = 2 ** (level - 2)
    for k in range(1, 2 * half + 1):
        if k <= half:
            s = 2 * ((k - 1) // 2) - 2 ** (level - 3) + 1
            mkl = 2 * np.array([[2 ** (level - 3), 0], [0, 1]]) @ np.array([[1, 0], [-s, 1]])
            yield k, (k - 1) % 2, mkl
        else:
            s = 2 * ((k - half - 1) // 2) - 2 ** (level - 3) + 1
            mkl = 2 * np.array([[1, 0], [0, 2 ** (level - 3)]]) @ np.array([[1, -s], [0, 1]])
            yield k, (k - 1) % 2 + 2, mkl


QUINCUNX = np.array([[1, -1], [1, 1]])


def nsdfb_decompose(x: np.ndarray, levels: int, filters: DirectionalFilters) -> list[np.ndarray]:
    """``nsdfbdec(x, filters, levels)``: 2^levels directional sub-bands."""
    if levels == 0:
        return [x]
    bands = [periodic_filter(x, filters.k1), periodic_filter(x, filters.k2)]
    if levels == 1:
        return bands
    bands = [periodic_filter(b, f, QUINCUNX) for b in bands for f in (filters.k1, filters.k2)]
    for level in range(3, levels + 1):
        new = []
        for k, i, mkl in _shear_matrices(level):
            new += [periodic_filter(bands[k - 1], filters.f1[i], mkl), periodic_filter(bands[k - 1], filters.f2[i], mkl)]
        bands = new
    return bands


def nsdfb_reconstruct(bands: list[np.ndarray], filters: DirectionalFilters) -> np.ndarray:
    """``nsdfbrec``: inverse of :func:`nsdfb_decompose` with the synthesis filters."""
    levels = int(np.log2(len(bands)))
    if levels == 0:
        return bands[0]
    if levels == 1:
        return periodic_filter(bands[0], filters.k1) + periodic_filter(bands[1], filters.k2)
    for level in range(levels, 2, -1):
        merged = []
        for k, i, mkl in _shear_matrices(level):
            merged.append(periodic_filter(bands[2 * k - 2], filters.f1[i], mkl)
                          + periodic_filter(bands[2 * k - 1], filters.f2[i], mkl))
        bands = merged
    x1 = periodic_filter(bands[0], filters.k1, QUINCUNX) + periodic_filter(bands[1], filters.k2, QUINCUNX)
    x2 = periodic_filter(bands[2], filters.k1, QUINCUNX) + periodic_filter(bands[3], filters.k2, QUINCUNX)
    return periodic_filter(x1, filters.k1) + periodic_filter(x2, filters.k2)


# ----------------------------------------------------------------------------------------------
# NSCT
# ----------------------------------------------------------------------------------------------

@dataclass
class NSCTCoefficients:
    """``low``: the coarsest low-pass; ``bands[j]``: directional sub-bands of pyramid level j, coarse
    to fine (as ``y{2..end}`` of ``nsctdec``)."""
    low: np.ndarray
    bands: list[list[np.ndarray]]


def nsct_decompose(x: np.ndarray, levels=(2, 3, 3, 4), dfilt: str = "vk", pfilt: str = "pyrexc") -> NSCTCoefficients:
    """``nsctdec(x, levels, dfilt, pfilt)``."""
    *bands, low = nsct_decompose_levels(x, levels, dfilt, pfilt)
    return NSCTCoefficients(low, bands[::-1])


def nsct_decompose_levels(x: np.ndarray, levels=(2, 3, 3, 4), dfilt: str = "vk", pfilt: str = "pyrexc"):
    """:func:`nsct_decompose` as it proceeds: yields the list of directional sub-bands of each pyramid
    level, FINEST first, then the low-pass array, so that a caller can start on a level's bands while
    the coarser ones are still being computed."""
    h0, h1, _, _ = pyramid_filters(pfilt)
    filters = directional_filters(dfilt, "d")
    cur = np.asarray(x, dtype=np.float64)
    for j, dir_levels in enumerate(reversed(levels)):
        low, high = atrous_filter(cur, h0, j), atrous_filter(cur, h1, j)
        yield nsdfb_decompose(high, dir_levels, filters)
        cur = low
    yield cur


def nsct_reconstruct(coeffs: NSCTCoefficients, dfilt: str = "vk", pfilt: str = "pyrexc") -> np.ndarray:
    """``nsctrec(y, dfilt, pfilt)``."""
    return nsct_reconstruct_levels([*coeffs.bands[::-1], coeffs.low], dfilt, pfilt)


def nsct_reconstruct_levels(levels, dfilt: str = "vk", pfilt: str = "pyrexc") -> np.ndarray:
    """:func:`nsct_reconstruct` from what :func:`nsct_decompose_levels` yields: each pyramid level's list
    of directional sub-bands, FINEST first, then the low-pass array. Each level's directional filter
    bank is inverted as soon as the level arrives (``levels`` may be a generator still being
    produced), and so is its band-pass synthesis filter; the low-pass chain of the pyramid runs at the
    end, coarse to fine, with the same sums as ``nsctrec``."""
    _, _, g0, g1 = pyramid_filters(pfilt)
    filters = directional_filters(dfilt, "r")
    highs, cur = [], None                   # highs[j]: level j's band-pass, synthesis-filtered
    for item in levels:
        if isinstance(item, np.ndarray):   # the low-pass comes last
            cur = item
        else:
            highs.append(atrous_filter(nsdfb_reconstruct(item, filters), g1, len(highs)))
    for level in range(len(highs) - 1, -1, -1):
        cur = atrous_filter(cur, g0, level) + highs[level]
    return cur
