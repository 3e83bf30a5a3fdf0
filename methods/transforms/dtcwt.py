"""Kingsbury's 2-D dual-tree complex wavelet transform, as ``dtwavexfm2`` / ``dtwaveifm2`` (DTCWT toolbox).

Level 1 uses a biorthogonal odd-length filter pair without decimation (``colfilter``); levels >= 2
use the even-length Q-shift pair of trees a/b with decimation by 2 (``coldfilt`` / ``colifilt``).
Each level's three real high-pass images are turned into six complex sub-bands (+-15, +-45, +-75
degrees) by ``q2c`` on 2x2 blocks. All boundaries use symmetric extension with the edge sample
repeated (the toolbox's ``reflect(., 0.5, r + 0.5)``). Filters are ``'legall'`` (LeGall 5/3) and
``'qshift_06'`` (10 taps, 6 non-zero), the ones the MST-SR toolbox's ``dtcwt_fuse`` uses; their
taps are the published DTCWT toolbox values (tree b = time reverse of tree a; synthesis = time
reverse of analysis for the orthogonal Q-shift pair).

References
----------
N. G. Kingsbury, "Complex wavelets for shift invariant analysis and filtering of signals", Appl.
Comput. Harmon. Anal. 10(3):234-253, 2001.
N. G. Kingsbury, "A dual-tree complex wavelet transform with improved orthogonality and symmetry
properties", Proc. ICIP 2000, pp. 375-378 (Q-shift filters).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# LeGall 5/3 (biort 'legall'): analysis h0o/h1o, synthesis g0o/g1o; h0*g0 + h1*g1 = delta.
LEGALL_H0 = np.array([-1.0, 2.0, 6.0, 2.0, -1.0]) / 8.0
LEGALL_H1 = np.array([-1.0, 2.0, -1.0]) / 4.0
LEGALL_G0 = np.array([1.0, 2.0, 1.0]) / 4.0
LEGALL_G1 = np.array([-1.0, -2.0, 6.0, -2.0, -1.0]) / 8.0

# qshift_06 tree-a low-pass h0a (Kingsbury 2000, 10 taps with 6 non-zero).
QSHIFT06_H0A = np.array([0.0351638365714947, 0.0, -0.0883294244510729, 0.233890320607236,
                         0.760272369066126, 0.587518297723561, 0.0, -0.114301837144249, 0.0, 0.0])
QSHIFT06_H0B = QSHIFT06_H0A[::-1].copy()
QSHIFT06_H1A = (-1.0) ** np.arange(10) * QSHIFT06_H0B       # h1a[k] = (-1)^k h0a[9-k]
QSHIFT06_H1B = QSHIFT06_H1A[::-1].copy()
QSHIFT06_G0A, QSHIFT06_G0B = QSHIFT06_H0B, QSHIFT06_H0A     # orthogonal: synthesis = reversed analysis
QSHIFT06_G1A, QSHIFT06_G1B = QSHIFT06_H1B, QSHIFT06_H1A


def _symmetric_index(start: int, stop: int, n: int) -> np.ndarray:
    """Indices ``start..stop-1`` (0-based) folded into ``0..n-1`` with the edge sample repeated."""
    idx = np.arange(start, stop)
    period = 2 * n
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - 1 - idx, idx)


def _conv_valid_rows(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``conv2(x, h(:), 'valid')`` along axis 0 (true convolution: the filter is reversed)."""
    m = len(h)
    n_out = x.shape[0] - m + 1
    return sum(h[m - 1 - j] * x[j:j + n_out] for j in range(m) if h[m - 1 - j] != 0.0)


def colfilter(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Filter the columns with odd-length ``h`` after symmetric extension; output has x's size."""
    m2 = len(h) // 2
    return _conv_valid_rows(x[_symmetric_index(-m2, x.shape[0] + m2, x.shape[0])], h)


def coldfilt(x: np.ndarray, ha: np.ndarray, hb: np.ndarray) -> np.ndarray:
    """Filter the columns with the Q-shift pair and decimate by 2 (rows must be a multiple of 4)."""
    r = x.shape[0]
    m = len(ha)
    xe = x[_symmetric_index(-m, r + m, r)]          # xe[0] is sample -m
    t = np.arange(5, r + 2 * m - 2, 4)              # MATLAB 6:4:(r+2m-2), 0-based
    hao, hae, hbo, hbe = ha[0::2], ha[1::2], hb[0::2], hb[1::2]
    y = np.zeros((r // 2,) + x.shape[1:])
    first_b = np.sum(ha * hb) > 0
    s1, s2 = (slice(0, None, 2), slice(1, None, 2)) if first_b else (slice(1, None, 2), slice(0, None, 2))
    y[s1] = _conv_valid_rows(xe[t - 1], hao) + _conv_valid_rows(xe[t - 3], hae)
    y[s2] = _conv_valid_rows(xe[t], hbo) + _conv_valid_rows(xe[t - 2], hbe)
    return y


def colifilt(x: np.ndarray, ha: np.ndarray, hb: np.ndarray) -> np.ndarray:
    """Interpolate the columns by 2 with the Q-shift pair (inverse of :func:`coldfilt`'s branches)."""
    r = x.shape[0]
    m = len(ha)
    m2 = m // 2
    xe = x[_symmetric_index(-m2, r + m2, r)]
    hao, hae, hbo, hbe = ha[0::2], ha[1::2], hb[0::2], hb[1::2]
    y = np.zeros((2 * r,) + x.shape[1:])
    if m2 % 2 == 0:
        t = np.arange(3, r + m, 2)
        ta, tb = (t, t - 1) if np.sum(ha * hb) > 0 else (t - 1, t)
        y[0::4] = _conv_valid_rows(xe[tb - 2], hae)
        y[1::4] = _conv_valid_rows(xe[ta - 2], hbe)
        y[2::4] = _conv_valid_rows(xe[tb], hao)
        y[3::4] = _conv_valid_rows(xe[ta], hbo)
    else:
        t = np.arange(2, r + m - 1, 2)
        ta, tb = (t, t - 1) if np.sum(ha * hb) > 0 else (t - 1, t)
        y[0::4] = _conv_valid_rows(xe[tb], hao)
        y[1::4] = _conv_valid_rows(xe[ta], hbo)
        y[2::4] = _conv_valid_rows(xe[tb], hae)
        y[3::4] = _conv_valid_rows(xe[ta], hbe)
    return y


def q2c(y: np.ndarray) -> np.ndarray:
    """2x2 blocks ``[a b; c d]`` -> two complex sub-bands ``(p - q, p + q)``, p = (a + jb)/sqrt2, q = (d - jc)/sqrt2."""
    a, b, c, d = y[0::2, 0::2], y[0::2, 1::2], y[1::2, 0::2], y[1::2, 1::2]
    p = (a + 1j * b) * np.sqrt(0.5)
    q = (d - 1j * c) * np.sqrt(0.5)
    return np.stack([p - q, p + q], axis=-1)


def c2q(w: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`q2c`."""
    p = (w[..., 0] + w[..., 1]) / 2
    q = (w[..., 1] - w[..., 0]) / 2
    a, b = np.real(p) * np.sqrt(2.0), np.imag(p) * np.sqrt(2.0)
    d, c = np.real(q) * np.sqrt(2.0), -np.imag(q) * np.sqrt(2.0)
    out = np.empty((2 * w.shape[0], 2 * w.shape[1]))
    out[0::2, 0::2], out[0::2, 1::2], out[1::2, 0::2], out[1::2, 1::2] = a, b, c, d
    return out


def _rows(f, x, *filters):
    """Apply a column operation ``f`` along the rows (the toolbox's ``f(x.').'``)."""
    return f(x.T, *filters).T


@dataclass
class DTCWTPyramid:
    """``Yh[level]``: (h, w, 6) complex sub-bands, order as ``dtwavexfm2`` (15, 45, 75, 105, 135, 165 deg
    as bands [1 6], [2 5], [3 4] pairs); ``low``: the real low-pass ``Yl``; ``shape``: input size."""
    highpasses: list[np.ndarray]
    low: np.ndarray
    shape: tuple[int, int]


def dtcwt_decompose(x: np.ndarray, levels: int) -> DTCWTPyramid:
    """``[Yl, Yh] = dtwavexfm2(x, levels, 'legall', 'qshift_06')``."""
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape
    if x.shape[0] % 2:
        x = np.vstack([x, x[-1:]])
    if x.shape[1] % 2:
        x = np.hstack([x, x[:, -1:]])
    highpasses = []
    lo = colfilter(x, LEGALL_H0)
    hi = colfilter(x, LEGALL_H1)
    lolo = _rows(colfilter, lo, LEGALL_H0)
    yh = np.empty((lolo.shape[0] // 2, lolo.shape[1] // 2, 6), dtype=complex)
    yh[..., [0, 5]] = q2c(_rows(colfilter, hi, LEGALL_H0))
    yh[..., [2, 3]] = q2c(_rows(colfilter, lo, LEGALL_H1))
    yh[..., [1, 4]] = q2c(_rows(colfilter, hi, LEGALL_H1))
    highpasses.append(yh)
    for _ in range(1, levels):
        if lolo.shape[0] % 4:
            lolo = np.vstack([lolo[:1], lolo, lolo[-1:]])
        if lolo.shape[1] % 4:
            lolo = np.hstack([lolo[:, :1], lolo, lolo[:, -1:]])
        lo = coldfilt(lolo, QSHIFT06_H0B, QSHIFT06_H0A)
        hi = coldfilt(lolo, QSHIFT06_H1B, QSHIFT06_H1A)
        lolo = _rows(coldfilt, lo, QSHIFT06_H0B, QSHIFT06_H0A)
        yh = np.empty((lolo.shape[0] // 2, lolo.shape[1] // 2, 6), dtype=complex)
        yh[..., [0, 5]] = q2c(_rows(coldfilt, hi, QSHIFT06_H0B, QSHIFT06_H0A))
        yh[..., [2, 3]] = q2c(_rows(coldfilt, lo, QSHIFT06_H1B, QSHIFT06_H1A))
        yh[..., [1, 4]] = q2c(_rows(coldfilt, hi, QSHIFT06_H1B, QSHIFT06_H1A))
        highpasses.append(yh)
    return DTCWTPyramid(highpasses, lolo, shape)


def dtcwt_reconstruct(pyr: DTCWTPyramid) -> np.ndarray:
    """``dtwaveifm2(Yl, Yh, 'legall', 'qshift_06')`` (unit gains), cropped to the input size."""
    z = pyr.low
    for level in range(len(pyr.highpasses) - 1, 0, -1):
        yh = pyr.highpasses[level]
        lh, hl, hh = c2q(yh[..., [0, 5]]), c2q(yh[..., [2, 3]]), c2q(yh[..., [1, 4]])
        y1 = colifilt(z, QSHIFT06_G0B, QSHIFT06_G0A) + colifilt(lh, QSHIFT06_G1B, QSHIFT06_G1A)
        y2 = colifilt(hl, QSHIFT06_G0B, QSHIFT06_G0A) + colifilt(hh, QSHIFT06_G1B, QSHIFT06_G1A)
        z = _rows(colifilt, y1, QSHIFT06_G0B, QSHIFT06_G0A) + _rows(colifilt, y2, QSHIFT06_G1B, QSHIFT06_G1A)
        target = 2 * np.array(pyr.highpasses[level - 1].shape[:2])
        if z.shape[0] != target[0]:
            z = z[1:-1]
        if z.shape[1] != target[1]:
            z = z[:, 1:-1]
    yh = pyr.highpasses[0]
    lh, hl, hh = c2q(yh[..., [0, 5]]), c2q(yh[..., [2, 3]]), c2q(yh[..., [1, 4]])
    y1 = colfilter(z, LEGALL_G0) + colfilter(lh, LEGALL_G1)
    y2 = colfilter(hl, LEGALL_G0) + colfilter(hh, LEGALL_G1)
    z = _rows(colfilter, y1, LEGALL_G0) + _rows(colfilter, y2, LEGALL_G1)
    return z[: pyr.shape[0], : pyr.shape[1]]
