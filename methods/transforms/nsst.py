"""Nonsubsampled shearlet transform (NSST), ported from the NSST toolbox of Easley, Labate and Lim.

The transform is the one the NSST-PAPCNN authors call: ``nsst_dec2`` / ``nsst_rec2`` with the
``'maxflat'`` nonsubsampled (a trous) pyramid of A. L. da Cunha, and shearing filters built from a
Meyer window on a pseudo-polar grid (``shearing_filters_Myer``).

Conventions copied from the MATLAB toolbox (they decide where coefficients sit, so a port that
fuses sub-bands must keep them):

* the a trous pyramid extends the image symmetrically *with* edge repetition (``symext``) and
  filters with the upsampled (dilated) filters, 'valid' part, so every band has the image size;
* band order: ``coeffs[0]`` is the low-pass, ``coeffs[1]`` the coarsest band-pass level,
  ``coeffs[-1]`` the finest; level ``i`` holds ``2**dcomp[i]`` directional sub-bands;
* directional filtering is a *circular* convolution in the DFT domain with the shearing filter
  zero-padded at the array origin (not centred), so sub-bands are circularly shifted by about
  ``dsize/2`` pixels; the filters are normalised so that ``sum_k |F_k|^2 = 1`` at every frequency,
  and the inverse applies ``conj(F_k)`` and sums (a tight frame per level).

References
----------
G. Easley, D. Labate, W.-Q Lim, "Sparse directional image representations using the discrete
shearlet transform", Appl. Comput. Harmon. Anal. 25(1):25-46, 2008.
A. L. da Cunha, J. Zhou, M. N. Do, "The nonsubsampled contourlet transform: theory, design, and
applications", IEEE TIP 15(10):3089-3101, 2006 ('maxflat' pyramid filters).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from common.errors import UserError

# --- 'maxflat' a trous pyramid filters (A. L. da Cunha, quasi-tight frame, bounds 0.97 and 1) -----
# Each filter is stored as its top-left quadrant; the full filter is that quadrant mirrored
# (without repeating the centre row/column), as the toolbox's atrousfilters('maxflat') builds it.
_MAXFLAT_H0_QUADRANT = np.array([
    [-7.900496718847182e-07, 0., 0.000014220894093924927, 0.000025281589500310983, -0.000049773129328737247, -0.00022753430550279883, -0.00033182086219158167],
    [0., 0., 0., 0., 0., 0., 0.],
    [0.000014220894093924927, 0., -0.0002559760936906487, -0.00045506861100559767, 0.0008959163279172705, 0.004095617499050379, 0.00597277551944847],
    [0.000025281589500310983, 0., -0.00045506861100559767, 0.0009765625, 0.0015927401385195919, -0.0087890625, -0.01795090623402861],
    [-0.000049773129328737247, 0., 0.0008959163279172705, 0.0015927401385195919, -0.0031357071477104465, -0.014334661246676327, -0.020904714318069645],
    [-0.00022753430550279883, 0., 0.004095617499050379, -0.0087890625, -0.014334661246676327, 0.0791015625, 0.16155815610625748],
    [-0.00033182086219158167, 0., 0.00597277551944847, -0.01795090623402861, -0.020904714318069645, 0.16155815610625748, 0.3177420190660832],
])
# g1 differs from h0 only in the entries that change sign or value near the centre.
_MAXFLAT_G1_QUADRANT = _MAXFLAT_H0_QUADRANT.copy()
_MAXFLAT_G1_QUADRANT[3, 3:] = [-0.0009765625, 0.0015927401385195919, 0.0087890625, 0.01329909376597139]
_MAXFLAT_G1_QUADRANT[3:, 3] = [-0.0009765625, 0.0015927401385195919, 0.0087890625, 0.01329909376597139]
_MAXFLAT_G1_QUADRANT[5, 5:] = [-0.0791015625, -0.1196918438937425]
_MAXFLAT_G1_QUADRANT[5:, 5] = [-0.0791015625, -0.1196918438937425]
_MAXFLAT_G1_QUADRANT[6, 6] = 0.8177420190660831

_MAXFLAT_G0_QUADRANT = np.array([
    [-6.391587676622346e-10, 0., 1.7257286726880333e-08, 3.067962084778726e-08, -1.3805829381504267e-07, -5.522331752601707e-07, -3.3747582932565985e-07, 1.9328161134105974e-06, 5.6949046198705095e-06, 7.649452131381623e-06],
    [0., 0., 0., 0., 0., 0., 0., 0., 0., 0.],
    [1.7257286726880333e-08, 0., -4.65946741625769e-07, -8.283497628902559e-07, 3.727573933006152e-06, 0.000014910295732024608, 9.111847391792816e-06, -0.000052186035062086126, -0.00015376242473650378, -0.00020653520754730382],
    [3.067962084778726e-08, 0., -8.283497628902559e-07, -1.2809236054493144e-06, 6.6267981031220475e-06, 0.00002305662489808766, 0.000010064497559808503, -0.0000806981871433068, -0.00021814634152337594, -0.00028666046030363884],
    [-1.3805829381504267e-07, 0., 3.727573933006152e-06, 6.6267981031220475e-06, -0.000029820591464049215, -0.00011928236585619686, -0.00007289477913434253, 0.000417488280496689, 0.0012300993978920302, 0.0016522816603784306],
    [-5.522331752601707e-07, 0., 0.000014910295732024608, 0.00002305662489808766, -0.00011928236585619686, -0.00041501924816557786, -0.00018116095607655303, 0.0014525673685795225, 0.0039266341474207675, 0.005159888285465499],
    [-3.3747582932565985e-07, 0., 9.111847391792816e-06, 0.000010064497559808503, -0.00007289477913434253, -0.00018116095607655303, 0.001468581806076247, 0.0006340633462679356, -0.01181401175635013, -0.021745034491193898],
    [1.9328161134105974e-06, 0., -0.000052186035062086126, -0.0000806981871433068, 0.000417488280496689, 0.0014525673685795225, 0.0006340633462679356, -0.005083985790028328, -0.013743219515972684, -0.018059608999129246],
    [5.6949046198705095e-06, 0., -0.00015376242473650378, -0.00021814634152337594, 0.0012300993978920302, 0.0039266341474207675, -0.01181401175635013, -0.013743219515972684, 0.0826466923977296, 0.1638988884584603],
    [7.649452131381623e-06, 0., -0.00020653520754730382, -0.00028666046030363884, 0.0016522816603784306, 0.005159888285465499, -0.021745034491193898, -0.018059608999129246, 0.1638988884584603, 0.31358726209239235],
])
_MAXFLAT_H1_QUADRANT = np.array([
    [6.391587676622346e-10, 0., -1.7257286726880333e-08, -3.067962084778726e-08, 1.3805829381504267e-07, 5.522331752601707e-07, 3.3747582932565985e-07, -1.9328161134105974e-06, -5.6949046198705095e-06, -7.649452131381623e-06],
    [0., 0., 0., 0., 0., 0., 0., 0., 0., 0.],
    [-1.7257286726880333e-08, 0., 4.65946741625769e-07, 8.283497628902559e-07, -3.727573933006152e-06, -0.000014910295732024608, -9.111847391792816e-06, 0.000052186035062086126, 0.00015376242473650378, 0.00020653520754730382],
    [-3.067962084778726e-08, 0., 8.283497628902559e-07, -2.9917573832012203e-07, -6.6267981031220475e-06, 5.3851632897621965e-06, 0.00004049868144081346, -0.00001884807151416769, -0.00023692226948222173, -0.0003769812640795245],
    [1.3805829381504267e-07, 0., -3.727573933006152e-06, -6.6267981031220475e-06, 0.000029820591464049215, 0.00011928236585619686, 0.00007289477913434253, -0.000417488280496689, -0.0012300993978920302, -0.0016522816603784306],
    [5.522331752601707e-07, 0., -0.000014910295732024608, 5.3851632897621965e-06, 0.00011928236585619686, -0.00009693293921571956, -0.0007289762659346422, 0.00033926528725501844, 0.004264600850679991, 0.006785662753431441],
    [3.3747582932565985e-07, 0., -9.111847391792816e-06, 0.00004049868144081346, 0.00007289477913434253, -0.0007289762659346422, -0.001468581806076247, 0.002551416930771248, 0.01181401175635013, 0.017093222023136675],
    [-1.9328161134105974e-06, 0., 0.000052186035062086126, -0.00001884807151416769, -0.000417488280496689, 0.00033926528725501844, 0.002551416930771248, -0.0011874285053925643, -0.01492610297737997, -0.023749819637010044],
    [-5.6949046198705095e-06, 0., 0.00015376242473650378, -0.00023692226948222173, -0.0012300993978920302, 0.004264600850679991, 0.01181401175635013, -0.01492610297737997, -0.0826466923977296, -0.12203257624594532],
    [-7.649452131381623e-06, 0., 0.00020653520754730382, -0.0003769812640795245, -0.0016522816603784306, 0.006785662753431441, 0.017093222023136675, -0.023749819637010044, -0.12203257624594532, 0.821896776039774],
])


def _mirror_quadrant(quadrant: np.ndarray) -> np.ndarray:
    """Full zero-phase filter from its top-left quadrant (centre row/column not repeated)."""
    full = np.concatenate([quadrant, quadrant[:, -2::-1]], axis=1)
    return np.concatenate([full, full[-2::-1, :]], axis=0)


PYRAMID_FILTERS = ("maxflat",)


def atrous_filters(name: str = "maxflat") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Analysis low/high-pass ``h0, h1`` and synthesis low/high-pass ``g0, g1`` of the a trous pyramid.

    Perfect reconstruction holds as ``conv2(h0, g0) + conv2(h1, g1) = delta`` (toolbox comment).
    """
    if name != "maxflat":
        raise UserError(f"NSST pyramid filter {name!r} is not available (known: {', '.join(PYRAMID_FILTERS)})")
    return (_mirror_quadrant(_MAXFLAT_H0_QUADRANT), _mirror_quadrant(_MAXFLAT_H1_QUADRANT),
            _mirror_quadrant(_MAXFLAT_G0_QUADRANT), _mirror_quadrant(_MAXFLAT_G1_QUADRANT))


# --- a trous pyramid (atrousdec / atrousrec) ------------------------------------------------------

def _symext_dilated_filter(x: np.ndarray, filt: np.ndarray, dilation: int, shift: int) -> np.ndarray:
    """``atrousc(symext(x, upsample2df(filt, log2 L), shift), filt, L*I)`` for a stack ``x`` (N, H, W).

    ``symext`` pads ``p2 - shift + 1`` samples before and ``p - 1 - (p2 - shift + 1)`` after, where
    ``p`` is the *upsampled* filter length ``L * len(filt)`` and ``p2 = p // 2``, mirroring with the
    edge sample repeated; ``atrousc`` then starts at offset ``L - 1`` and convolves with the filter
    dilated by ``L`` ('valid'). For ``L = 1`` and shift 1 this is the toolbox's first-level
    ``conv2(symext(x, h, [1 1]), h, 'valid')``. The convolution runs through the FFT (the filters
    are up to 152 x 152 once dilated), which agrees with the direct sum to round-off.
    """
    rows, cols = filt.shape
    pads = []
    for length in (rows, cols):
        p = dilation * length
        before = p // 2 - shift + 1
        pads.append((before, p - 1 - before))
    padded = np.pad(x, ((0, 0), pads[0], pads[1]), mode="symmetric")[:, dilation - 1:, dilation - 1:]
    dilated = np.zeros(((rows - 1) * dilation + 1, (cols - 1) * dilation + 1))
    dilated[::dilation, ::dilation] = filt
    import scipy.signal   # imported on first use (about 0.6 s): `import methods` stays fast

    out = scipy.signal.fftconvolve(padded, dilated[None], mode="valid", axes=(1, 2))
    return out[:, : x.shape[1], : x.shape[2]]


def atrous_dec(x: np.ndarray, levels: int, pyramid: str = "maxflat") -> list[np.ndarray]:
    """Nonsubsampled (a trous) pyramid: ``[lowpass, coarsest band, ..., finest band]``.

    ``x`` may be one image (H, W) or a stack (N, H, W); every output has the shape of ``x``.
    Port of the toolbox's ``atrousdec``.
    """
    h0, h1, _, _ = atrous_filters(pyramid)
    current = np.asarray(x, dtype=np.float64).reshape((-1,) + np.shape(x)[-2:])
    bands = [None] * (levels + 1)
    bands[levels] = _symext_dilated_filter(current, h1, 1, 1)
    current = _symext_dilated_filter(current, h0, 1, 1)
    for i in range(1, levels):
        shift, dilation = 2 - 2 ** (i - 1), 2 ** i
        bands[levels - i] = _symext_dilated_filter(current, h1, dilation, shift)
        current = _symext_dilated_filter(current, h0, dilation, shift)
    bands[0] = current
    return [b.reshape(np.shape(x)) for b in bands]


def atrous_rec(bands: list[np.ndarray], pyramid: str = "maxflat") -> np.ndarray:
    """Inverse of :func:`atrous_dec` (the toolbox's ``atrousrec``)."""
    _, _, g0, g1 = atrous_filters(pyramid)
    levels = len(bands) - 1
    shape = np.shape(bands[0])

    def as_batch(a):
        return np.asarray(a, dtype=np.float64).reshape((-1,) + shape[-2:])

    current = as_batch(bands[0])
    for i in range(levels - 1, 0, -1):
        shift, dilation = 2 - 2 ** (i - 1), 2 ** i
        current = (_symext_dilated_filter(current, g0, dilation, shift)
                   + _symext_dilated_filter(as_batch(bands[levels - i]), g1, dilation, shift))
    current = _symext_dilated_filter(current, g0, 1, 1) + _symext_dilated_filter(as_batch(bands[levels]), g1, 1, 1)
    return current.reshape(shape)


# --- shearing filters (shearing_filters_Myer) -----------------------------------------------------

def _matlab_round(x: np.ndarray) -> np.ndarray:
    """MATLAB ``round``: halves away from zero."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _pseudo_polar_coordinates(n: int):
    """``gen_x_y_cordinates(n)``: 1-based (row, col) indices of the radial slices and hit counts.

    Returns ``x1, y1, x2, y2`` (n x n, 1-based column/row indices of the two slice families) and
    ``D``, how many slice samples land on each Cartesian grid point.
    """
    m = n + 1
    x1 = np.zeros((m, m)); y1 = np.zeros((m, m)); x2 = np.zeros((m, m)); y2 = np.zeros((m, m))
    for i in range(1, m + 1):
        x0, y0, xn, yn = i, 1, m - i + 1, m
        # MATLAB linspace(x0, xn, m)
        xt = x0 + np.arange(m) * ((xn - x0) / (m - 1))
        xt[-1] = xn
        if xn == x0:
            x1[i - 1] = (m - 1) / 2 + 1
            y1[i - 1] = np.arange(1, m + 1)
            x2[i - 1] = np.arange(1, m + 1)
            y2[i - 1] = (m - 1) / 2 + 1
        else:
            slope = (yn - y0) / (xn - x0)
            y1[i - 1] = _matlab_round(slope * (xt - x0) + y0)
            x1[i - 1] = _matlab_round(xt)
            x2[i - 1] = y1[i - 1]
            y2[i - 1] = x1[i - 1]
    x1n, y1n = x1[:n, :n].copy(), y1[:n, :n].copy()
    x2n, y2n = x2[1:n + 1, :n].copy(), y2[1:n + 1, :n].copy()
    x1n = x1n[::-1]
    y2n[n - 1, 0] = n
    idx = [a.astype(np.int64) - 1 for a in (x1n, y1n, x2n, y2n)]
    counts = np.zeros((n, n))
    np.add.at(counts, (idx[1], idx[0]), 1)
    np.add.at(counts, (idx[3], idx[2]), 1)
    return idx[0], idx[1], idx[2], idx[3], counts


def _meyer_window(t: np.ndarray) -> np.ndarray:
    """``meyer_wind``: 1 on (1/6, 5/6), a smooth cos^2 roll-off to 0 at -1/6 and 7/6."""
    t = np.asarray(t, dtype=np.float64)
    w = 3 * np.abs(t - 0.5) - 1
    z = w ** 4 * (35 - 84 * w + 70 * w ** 2 - 20 * w ** 3)
    roll = np.cos(np.pi / 2 * z) ** 2
    inner = (t > -1 / 3 + 1 / 2) & (t < 1 / 3 + 1 / 2)
    edge = ((t >= 1 / 3 + 1 / 2) & (t <= 2 / 3 + 1 / 2)) | ((t >= -2 / 3 + 1 / 2) & (t <= 1 / 3 + 1 / 2))
    return np.where(inner, 1.0, np.where(edge, roll, 0.0))


def _meyer_band_windows(length: int, bands: int) -> np.ndarray:
    """``windowing(ones(length, 1), bands)``: (length, bands) overlapping Meyer windows."""
    width = length // bands
    offsets = np.arange(-width / 2, 1.5 * width)  # the 2*width samples each window covers
    taper = _meyer_window((offsets) / width)
    out = np.zeros((length, bands))
    for j in range(bands):
        rows = (np.floor(np.mod(offsets + j * width, length))).astype(np.int64)
        out[rows, j] = taper
    return out


@lru_cache(maxsize=None)
def shearing_filters_meyer(size: int, level: int) -> np.ndarray:
    """``shearing_filters_Myer(size, level)``: (size, size, 2**level) spatial directional filters.

    A Meyer window split into ``2**level`` bands along the slices of a pseudo-polar grid, put back
    on the Cartesian grid (averaging points hit twice) and taken to the spatial domain.
    """
    x1, y1, x2, y2, counts = _pseudo_polar_coordinates(size)
    windows = _meyer_band_windows(2 * size, 2 ** level)
    filters = np.zeros((size, size, 2 ** level))
    for k in range(2 ** level):
        slices = np.repeat(windows[:, k:k + 1], size, axis=1)  # (2*size, size), constant along a slice
        grid = np.zeros((size, size))
        np.add.at(grid, (y1, x1), slices[:size])
        np.add.at(grid, (y2, x2), slices[size:])
        grid = grid / counts
        filters[:, :, k] = np.real(np.fft.fftshift(np.fft.ifft2(np.fft.fftshift(grid)))) / np.sqrt(size)
    filters.setflags(write=False)
    return filters


@lru_cache(maxsize=16)
def _shearing_filters_dft(shape: tuple[int, int], size: int, level: int) -> np.ndarray:
    """DFT-domain shearing filters of ``nsst_dec2``: (2**level, H, W//2+1) half spectra, sum |F_k|^2 = 1."""
    spatial = shearing_filters_meyer(size, level)
    # Real filters: keep the half spectrum (rfft2); the full one is Hermitian, and so is the norm.
    freq = scipy.fft.rfft2(np.moveaxis(spatial, 2, 0), s=shape)
    # The toolbox divides by the image side first; that scale cancels in the normalisation.
    norm = np.sqrt(np.sum(freq.real ** 2 + freq.imag ** 2, axis=0))
    freq = freq / norm
    freq.setflags(write=False)
    return freq


def _check_shear_parameters(dcomp, dsize) -> None:
    if len(dcomp) != len(dsize) or len(dcomp) == 0:
        raise UserError(f"NSST: dcomp {list(dcomp)} and dsize {list(dsize)} must be non-empty and of equal length")
    for d, s in zip(dcomp, dsize):
        if int(d) != d or d < 0 or d > 6:
            raise UserError(f"NSST: dcomp entries must be integers 0..6 (2**dcomp directions), got {list(dcomp)}")
        if int(s) != s or s < 2 or (2 * s) % (2 ** d) or (2 * s // 2 ** d) % 2:
            raise UserError(f"NSST: dsize {s} must be an integer >= 2 with 2*dsize/2**dcomp even (got dcomp {d})")


def nsst_dec2(x: np.ndarray, dcomp=(3, 3, 4, 4), dsize=(8, 8, 16, 16), pyramid: str = "maxflat"):
    """Nonsubsampled shearlet decomposition (the toolbox's ``nsst_dec2``).

    Parameters
    ----------
    x : (H, W) or (N, H, W) float array.
    dcomp : level ``i`` (coarse to fine) has ``2**dcomp[i]`` directions.
    dsize : support of the level-``i`` shearing filter.
    pyramid : a trous pyramid filters ('maxflat').

    Returns
    -------
    coeffs : list; ``coeffs[0]`` the low-pass (shape of ``x``), ``coeffs[i]`` for ``i >= 1`` an array
        of shape ``x.shape[:-2] + (2**dcomp[i-1], H, W)``.
    shear_filters : list of DFT-domain filters, (2**dcomp[i], H, W//2+1) half spectra, for :func:`nsst_rec2`.
    """
    _check_shear_parameters(dcomp, dsize)
    x = np.asarray(x, dtype=np.float64)
    shape = x.shape[-2:]
    bands = atrous_dec(x, len(dcomp), pyramid)
    coeffs = [bands[0]]
    filters = []
    for i, (d, s) in enumerate(zip(dcomp, dsize)):
        freq = _shearing_filters_dft(shape, int(s), int(d))
        band_f = scipy.fft.rfft2(bands[i + 1], workers=-1)[..., None, :, :]
        # real(ifft2(F .* fft2(y))) of the toolbox's conv2p; F is Hermitian so irfft2 is exact.
        coeffs.append(scipy.fft.irfft2(freq * band_f, s=shape, workers=-1))
        filters.append(freq)
    return coeffs, filters


def nsst_rec2(coeffs, shear_filters, pyramid: str = "maxflat") -> np.ndarray:
    """Inverse of :func:`nsst_dec2` (the toolbox's ``nsst_rec2``)."""
    bands = [np.asarray(coeffs[0], dtype=np.float64)]
    for c, freq in zip(coeffs[1:], shear_filters):
        shape = np.shape(c)[-2:]
        spectrum = np.sum(np.conj(freq) * scipy.fft.rfft2(c, workers=-1), axis=-3)
        bands.append(scipy.fft.irfft2(spectrum, s=shape, workers=-1))
    return atrous_rec(bands, pyramid)
