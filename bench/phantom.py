"""Deterministic multi-modal brain phantom: the benchmark's embedded default data set.

One axial slice through a synthetic head is built as fractional tissue maps (partial-volume
fractions that sum to one in every pixel), then rendered in six modalities, each with its own
tissue contrast, point-spread function and noise. Only numpy and scipy are used; nothing is
downloaded, and the same ``(modality, index, seed, size)`` always gives the same array, bit for bit.

Anatomy (all lengths in millimetres, field of view 220 mm)
---------------------------------------------------------
* scalp: skin, subcutaneous fat, galea / temporalis muscle;
* skull: outer and inner cortical tables with fatty diploe (marrow) between them;
* CSF: subarachnoid space, sulci, interhemispheric fissure, lateral ventricles (frontal horns,
  bodies, atria, occipital horns: a butterfly at the level of the basal ganglia, two crescents
  higher up), third ventricle;
* grey matter: a cortical ribbon of constant thickness folded around gyri, whose white-matter
  cores are fingers between sulci of random depth; deep grey nuclei (caudate heads, lentiform
  nuclei, thalami) at low levels;
* lesion: a lobulated glioblastoma-like tumour (enhancing rim, necrotic core) with vasogenic
  oedema spreading through white matter (so it stays finger-like and spares the cortex) and
  a mild mass effect on the ventricles and the midline;
* vessels: superior sagittal sinus and small cortical veins; choroid plexus in the atria.

Every boundary is a signed distance (exact or first-order) turned into a pixel coverage
``clip(0.5 + sdf / pixel, 0, 1)``, i.e. a box-filtered edge, so tissue maps are anti-aliased at
any ``size`` and thin structures (sulci, cortex) become partial-volume fractions at low resolution.

``index`` picks the slice: its level through the head (from the basal ganglia to the centrum
semiovale and the high convexity, which changes head and brain size, ventricle shape and deep
nuclei), the head's size, shape and small rotation, the gyral pattern and the lesion's position,
size and level of cut. ``seed`` picks the noise and, together with ``index``, the anatomy.

Contrasts (relative signal; the exact numbers are in ``_INTENSITY``)
-------------------------------------------------------------------
* ``MR-T1-Gad``: fat 0.95 > marrow 0.70 > WM 0.62 > deep GM 0.50 > GM 0.42 > oedema 0.32 >
  necrosis 0.15 > CSF 0.09 > cortical bone 0.04; enhancing rim 1.0, vessels 0.9, choroid 0.8.
* ``MR-T2``: CSF 1.0 > necrosis 0.92 > oedema 0.82 > GM 0.62 > rim 0.58 > deep GM 0.46 >
  fat 0.42 > WM 0.36; bone and flowing blood are signal voids (0.03, 0.05).
* ``MR-PD``: fat 0.86 > CSF 0.80 = oedema > GM 0.68 > WM 0.57: low contrast.
* ``CT`` (HU): bone 1600, marrow 500, choroid calcification 150, blood 58, skin 45, GM 39,
  deep GM 36, rim 31, WM 26, oedema 16, necrosis 14, CSF 6, fat -90, air -1000; brain window.
* ``PET`` (FDG): rim 1.45 > GM 1.0 > deep GM 0.92 > WM 0.35 > oedema 0.22 > necrosis 0.08;
  scalp and bone nearly cold. Shown in the Harvard atlas PET colour map.
* ``SPECT`` (HMPAO perfusion): GM = deep GM 1.0 > rim 0.80 > WM 0.40 > oedema 0.32 > scalp
  0.24 > necrosis 0.08. Shown in the Harvard atlas SPECT colour map.

References
----------
Relative intensities follow typical 1.5 T spin-echo contrasts and CT attenuation values:

* Bushberg J.T. et al., *The Essential Physics of Medical Imaging*, 3rd ed., 2012, ch. 12-13
  (T1, T2, proton density of GM, WM, CSF, fat; CT numbers in HU).
* Wansapura J.P. et al., "NMR relaxation times in the human brain at 3.0 tesla",
  J. Magn. Reson. Imaging 9 (1999) 531-538 (T1/T2 ordering of WM < GM < CSF).
* Gudbjartsson H., Patz S., "The Rician distribution of noisy MRI data",
  Magn. Reson. Med. 34 (1995) 910-914 (magnitude noise model).
* Phelps M.E., *PET: Molecular Imaging and its Biological Applications*, 2004 (FDG grey/white
  uptake ratio about 3:1, hypermetabolic tumour rim, photopenic necrosis).
* Catafau A.M., "Brain SPECT in clinical practice. Part I: perfusion", J. Nucl. Med. 42 (2001)
  259-271 (HMPAO grey/white ratio about 2:1, low-resolution perfusion maps).
* Johnson K.A., Becker J.A., *The Whole Brain Atlas*, Harvard Medical School
  (https://www.med.harvard.edu/AANLIB/): the look the renderings are calibrated against,
  including the PET and SPECT colour maps (sampled from its images).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from common.errors import UserError

__all__ = [
    "MODALITIES",
    "COLOUR_MODALITIES",
    "TISSUES",
    "phantom_anatomy",
    "slice_level",
    "phantom_slice",
    "phantom_pair",
    "render",
    "apply_palette",
]

MODALITIES = ("MR-T1-Gad", "MR-T2", "MR-PD", "CT", "PET", "SPECT")
COLOUR_MODALITIES = ("PET", "SPECT")

#: Tissue classes of the fractional maps, in a fixed order (rows of the intensity tables).
TISSUES = (
    "air", "skin", "fat", "bone", "marrow", "csf", "gm", "wm", "deep_gm",
    "oedema", "tumour_rim", "necrosis", "vessel", "choroid",
)

FIELD_OF_VIEW_MM = 220.0

# Relative signal per tissue (same order as TISSUES). MR values are magnitudes on a common
# display scale (1 = brightest tissue); CT values are Hounsfield units; PET/SPECT values are
# relative tracer concentrations (grey matter = 1).
_INTENSITY = {
    #            air   skin  fat   bone  marrow csf   gm    wm    deep  oedema rim   necro vessel choroid
    # T1 + gadolinium: WM > GM > CSF; fat, marrow, enhancing rim, vessels and choroid plexus bright.
    "MR-T1-Gad": (0.0, 0.36, 0.95, 0.04, 0.70, 0.09, 0.42, 0.62, 0.50, 0.32, 1.00, 0.15, 0.90, 0.80),
    # T2: CSF > oedema/necrosis > GM > WM; cortical bone and flowing blood are signal voids.
    "MR-T2": (0.0, 0.18, 0.42, 0.03, 0.22, 1.00, 0.62, 0.36, 0.46, 0.82, 0.58, 0.92, 0.05, 0.55),
    # Proton density: low contrast, CSF > GM > WM (mobile proton density 1.0 > 0.8 > 0.7).
    "MR-PD": (0.0, 0.50, 0.86, 0.04, 0.62, 0.80, 0.68, 0.57, 0.64, 0.80, 0.70, 0.82, 0.12, 0.68),
    # CT in HU: fat -90, CSF 6, oedema 16, WM 26, GM 39, blood 58, calcified choroid 150, bone 1600.
    "CT": (-1000.0, 45.0, -90.0, 1600.0, 500.0, 6.0, 39.0, 26.0, 36.0, 16.0, 31.0, 14.0, 58.0, 150.0),
    # FDG PET: GM 1, WM 0.35, hypermetabolic rim 1.45, photopenic necrosis, little scalp uptake.
    "PET": (0.0, 0.04, 0.02, 0.02, 0.03, 0.04, 1.00, 0.35, 0.92, 0.22, 1.45, 0.08, 0.35, 0.30),
    # HMPAO SPECT perfusion: GM = deep GM 1, WM 0.40, some scalp perfusion, perfused tumour rim.
    "SPECT": (0.0, 0.24, 0.12, 0.10, 0.18, 0.05, 1.00, 0.40, 1.00, 0.32, 0.80, 0.08, 0.50, 0.40),
}

# Point-spread functions as Gaussian standard deviations in mm (FWHM = 2.355 sigma):
# MR and CT about 1 mm FWHM, PET about 6.5 mm, SPECT about 9 mm.
_PSF_SIGMA_MM = {"MR-T1-Gad": 0.45, "MR-T2": 0.45, "MR-PD": 0.45, "CT": 0.5, "PET": 2.8, "SPECT": 3.8}
# Rician noise sigma on the [0, 1] MR display scale.
_MR_NOISE = {"MR-T1-Gad": 0.010, "MR-T2": 0.011, "MR-PD": 0.009}
_MR_TEXTURE, _TEXTURE_GRAIN_MM = 0.04, 1.8
_CT_WINDOW_LEVEL_HU, _CT_WINDOW_WIDTH_HU, _CT_NOISE_HU = 45.0, 120.0, 3.0
# Expected counts per 256-grid pixel at the brightest activity (scaled with pixel area).
_COUNTS_AT_256 = {"PET": 60.0, "SPECT": 25.0}
_RECON_SIGMA_MM = {"PET": 1.2, "SPECT": 1.8}
# Where the 99.5th percentile of the noise-free activity lands on the colour scale.
_DISPLAY_PEAK = {"PET": 0.74, "SPECT": 0.80}

# Colour maps as (position, RGB) control points, sampled from the Harvard Whole Brain Atlas
# PET (black-blue-green-yellow-red-magenta) and SPECT (black-teal-violet-pink-orange-white) images.
PET_PALETTE = (
    (0 / 127, (0, 0, 0)), (15 / 127, (0, 0, 123)), (31 / 127, (0, 85, 255)),
    (63 / 127, (255, 255, 0)), (95 / 127, (255, 0, 0)), (1.0, (255, 0, 255)),
)
SPECT_PALETTE = (
    (0.0, (0, 0, 0)), (0.16, (41, 71, 73)), (0.33, (82, 0, 143)),
    (0.53, (190, 90, 121)), (0.73, (255, 114, 0)), (1.0, (255, 222, 255)),
)
_PALETTES = {"PET": PET_PALETTE, "SPECT": SPECT_PALETTE}

# Slice levels run from the basal ganglia (0.22) to the high convexity (0.88); 0.3 is the
# widest axial section of the head.
_LEVEL_LOW, _LEVEL_HIGH, _LEVEL_WIDEST = 0.22, 0.88, 0.30
_GOLDEN = 0.6180339887498949
# Angle table on which functions of the polar angle are evaluated once, then interpolated.
_ANGLES = np.linspace(-np.pi, np.pi, 8193)


# --------------------------------------------------------------------------------------------
# Small geometric building blocks (all vectorised, distances in mm, positive inside).
# --------------------------------------------------------------------------------------------
def _coverage(sdf_mm: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Fraction of a pixel inside a region, from a signed distance (box-filtered edge)."""
    return np.clip(0.5 + sdf_mm / pixel_mm, 0.0, 1.0)


def _bump(t: float, lo: float, hi: float) -> float:
    """Smooth window in the slice level: 0 outside (lo, hi), 1 in the middle."""
    if t <= lo or t >= hi:
        return 0.0
    return float(np.sin(np.pi * (t - lo) / (hi - lo)))


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (Quilez): rounds the corner where two distances meet."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _ellipse_radius(theta: np.ndarray, ax: float, ay: float) -> np.ndarray:
    """Radius of an axis-aligned ellipse along direction ``theta``."""
    return ax * ay / np.sqrt((ay * np.cos(theta)) ** 2 + (ax * np.sin(theta)) ** 2)


def _ellipse_sdf(x, y, cx, cy, ax, ay):
    """First-order signed distance to an ellipse (exact on the axes), positive inside."""
    if ax <= 0 or ay <= 0:
        return np.full(np.shape(x), -1e3)
    rho = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    return (1.0 - rho) * min(ax, ay)


def _tapered_capsule_sdf(x, y, a, b, ra, rb):
    """Signed distance (first order) to a segment a-b whose radius goes linearly ra -> rb."""
    abx, aby = b[0] - a[0], b[1] - a[1]
    h = np.clip(((x - a[0]) * abx + (y - a[1]) * aby) / (abx * abx + aby * aby), 0.0, 1.0)
    dist = np.hypot(x - a[0] - h * abx, y - a[1] - h * aby)
    return ra + h * (rb - ra) - dist


def _harmonics(theta: np.ndarray, amplitudes, phases, first: int = 1) -> np.ndarray:
    """Sum of ``amplitude_m cos(m theta + phase_m)`` for m = first, first + 1, ..."""
    out = np.zeros_like(theta)
    for m, (amp, phase) in enumerate(zip(amplitudes, phases), start=first):
        out += amp * np.cos(m * theta + phase)
    return out


def _compose(layers, shape) -> dict[str, np.ndarray]:
    """Stack coverage layers, topmost first, into partial-volume fractions summing to one.

    Each ``(tissue, coverage)`` takes its coverage of whatever the layers above left; the
    remainder is air.
    """
    fractions = {name: np.zeros(shape) for name in TISSUES}
    remaining = np.ones(shape)
    for tissue, cover in layers:
        fractions[tissue] += cover * remaining
        remaining *= 1.0 - cover
    fractions["air"] += remaining
    return fractions


# --------------------------------------------------------------------------------------------
# Anatomy
# --------------------------------------------------------------------------------------------
def _check_args(index, seed, size):
    for name, value in (("index", index), ("seed", seed), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise UserError(f"phantom: {name} must be an integer, got {value!r}")
    if index < 0 or seed < 0:
        raise UserError(f"phantom: index and seed must be >= 0, got index={index}, seed={seed}")
    if size < 16:
        raise UserError(f"phantom: size must be at least 16 pixels, got {size}")


def slice_level(index: int) -> float:
    """Level of slice ``index`` through the head, in [0.22, 0.88] (low-discrepancy sequence)."""
    return _LEVEL_LOW + (_LEVEL_HIGH - _LEVEL_LOW) * ((0.5 + _GOLDEN * index) % 1.0)


def _smooth_field(rng, size: int, cells: int, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """Smooth random field of about unit amplitude with a correlation length of ``size / cells``.

    A ``cells x cells`` grid of standard normals is interpolated with Gaussian radial basis
    weights, separably (much cheaper than spline zooming);
    ``rows`` and ``cols`` select the part of the ``size x size`` field that is returned.
    """
    coarse = rng.normal(0.0, 1.0, (cells, cells))
    centres = (np.arange(cells) + 0.5) / cells
    pixels = (np.arange(size) + 0.5) / size
    weights = np.exp(-0.5 * ((pixels[:, None] - centres[None, :]) * cells / 0.85) ** 2)
    weights /= np.sqrt((weights ** 2).sum(axis=1, keepdims=True))
    # Broadcast sums rather than matrix products: BLAS may round differently from machine to
    # machine, and the phantom must be bit-for-bit reproducible.
    along_rows = (weights[rows][:, :, None] * coarse[None, :, :]).sum(axis=1)
    return (along_rows[:, None, :] * weights[cols][None, :, :]).sum(axis=2)


class _Grid:
    """Pixel-centre coordinates (mm) of a tilted head, over the head's bounding box only.

    ``x`` points to the patient's left on the display's right, ``y`` posterior (down), so the
    display is the radiological axial view with the forehead at the top. Everything outside
    the box ``rows, cols`` of the full ``size x size`` image is air, so no work is spent there.
    """

    def __init__(self, size: int, tilt: float, half_x: float, half_y: float):
        self.size, self.pixel_mm = size, FIELD_OF_VIEW_MM / size
        self.cos, self.sin = np.cos(tilt), np.sin(tilt)
        self.rows, self.cols = self._span(0.0, 0.0, half_x, half_y, (0, 0))
        axis = (np.arange(size) + 0.5 - size / 2) * self.pixel_mm
        gy, gx = np.meshgrid(axis[self.rows], axis[self.cols], indexing="ij")
        self.x = self.cos * gx + self.sin * gy
        self.y = -self.sin * gx + self.cos * gy

    def _span(self, cx, cy, half_x, half_y, origin) -> tuple[slice, slice]:
        # Axis-aligned pixel box around the rotated head-frame rectangle, in pixels from origin.
        gx = self.cos * cx - self.sin * cy
        gy = self.sin * cx + self.cos * cy
        reach_x = (abs(self.cos) * half_x + abs(self.sin) * half_y) / self.pixel_mm + 2
        reach_y = (abs(self.sin) * half_x + abs(self.cos) * half_y) / self.pixel_mm + 2

        def span(centre, reach, start):
            mid = centre / self.pixel_mm + self.size / 2
            return slice(int(np.clip(np.floor(mid - reach), 0, self.size)) - start,
                         int(np.clip(np.ceil(mid + reach), 0, self.size)) - start)

        return span(gy, reach_y, origin[0]), span(gx, reach_x, origin[1])

    def window(self, cx: float, cy: float, half: float) -> tuple[slice, slice]:
        """Slices of the box arrays covering the head-frame square of half-side ``half`` at (cx, cy)."""
        rows, cols = self._span(cx, cy, half, half, (self.rows.start, self.cols.start))
        clip = lambda sl, n: slice(min(max(sl.start, 0), n), min(max(sl.stop, 0), n))  # noqa: E731
        return clip(rows, self.x.shape[0]), clip(cols, self.x.shape[1])

    def embed(self, fractions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Full-size maps: the box's fractions inside, pure air outside."""
        full = {}
        for tissue, box in fractions.items():
            full[tissue] = np.full((self.size, self.size), 1.0 if tissue == "air" else 0.0)
            full[tissue][self.rows, self.cols] = box
        return full


@dataclass(frozen=True, eq=False)
class _Head:
    """Head outline (an egg with a little random shape) and the thickness of its layers."""

    ax: float
    ay: float
    shape_amp: np.ndarray
    shape_phase: np.ndarray
    level: float
    fat_base: float
    skull_base: float
    sas_mm: float  # subarachnoid space, wider with atrophy
    skin_mm: float = 1.3

    def radii(self, angle: np.ndarray) -> dict[str, np.ndarray]:
        """Radii (mm) of the skin, fat, skull and pial surfaces along direction ``angle``."""
        sin_a, cos_a = np.sin(angle), np.cos(angle)
        # Occiput broader than the forehead; a little random shape.
        outline = _ellipse_radius(angle, self.ax * (1 + 0.05 * sin_a), self.ay)
        outline = outline * (1 + _harmonics(angle, self.shape_amp, self.shape_phase, first=2))
        temporalis = 5.0 * _bump(self.level, 0.0, 0.5) * np.exp(-((sin_a + 0.15) / 0.45) ** 2)
        fat_mm = self.fat_base * (1 + 0.3 * sin_a ** 2)
        # Skull thickest at the frontal and occipital poles, thin at the temporal squama.
        skull_mm = self.skull_base * (1 + 0.3 * sin_a ** 2) * (1 - 0.25 * cos_a ** 2 * _bump(self.level, 0.0, 0.6))
        fat_out = outline - self.skin_mm
        fat_in = fat_out - fat_mm
        skull_out = fat_in - 1.0 - temporalis  # galea, plus temporalis muscle at low levels
        skull_in = skull_out - skull_mm
        return {"outline": outline, "fat_out": fat_out, "fat_in": fat_in, "skull_out": skull_out,
                "skull_in": skull_in, "pial": skull_in - self.sas_mm,
                "diploe_out": skull_out - 0.3 * skull_mm, "diploe_in": skull_in + 0.25 * skull_mm}


@dataclass(frozen=True, eq=False)
class _Slice:
    """What every part of the anatomy of one slice needs: its level, grid and head.

    The arrays (``x, y, r, theta, depth`` and the head ``layers``) cover the grid's box around the head.
    """

    level: float
    section: float  # width of the head at this level relative to its widest
    grid: _Grid
    r: np.ndarray
    theta: np.ndarray
    angle_slot: np.ndarray  # nearest entry of _ANGLES for every pixel
    head: _Head
    layers: dict[str, np.ndarray]  # head.radii at every pixel
    depth: np.ndarray  # first-order distance below the brain surface
    brain_ax: float
    brain_ay: float
    atrophy: float

    @property
    def x(self) -> np.ndarray:
        return self.grid.x

    @property
    def y(self) -> np.ndarray:
        return self.grid.y

    @property
    def pixel_mm(self) -> float:
        return self.grid.pixel_mm

    def polar(self, table: np.ndarray) -> np.ndarray:
        """Evaluate a function of angle, tabulated on _ANGLES, at every pixel."""
        return table[self.angle_slot]

    def at(self, u: float, v: float) -> tuple[float, float]:
        """Head-frame position (mm) of brain-normalised coordinates ``u, v``."""
        return u * self.brain_ax, v * self.brain_ay


@dataclass(frozen=True, eq=False)
class _Lesion:
    """Where the lesion is cut, and the mass-effect warp of the structures around it."""

    r: float  # radius of the lesion in this slice
    x: float
    y: float
    side: float  # -1 or +1: the hemisphere
    lx: np.ndarray  # pixel positions relative to the lesion centre
    ly: np.ndarray
    dist: np.ndarray
    wx: np.ndarray  # warped coordinates at which interior structures are sampled
    wy: np.ndarray


@dataclass(frozen=True, eq=False)
class _Sulci:
    """Gyral folding: where the sulci are, how deep, and the cortical thickness."""

    offset: np.ndarray  # 0 on a sulcus, +-pi on a gyral crown
    arc_mm: np.ndarray  # distance from the sulcus line
    depth: np.ndarray  # depth of the nearest sulcus
    half: np.ndarray  # half-width of the sulcus
    sdf: np.ndarray
    cortex_mm: float


@dataclass(frozen=True, eq=False)
class _Fissure:
    """Interhemispheric fissure, following the midline shift."""

    half: float
    gap_mm: float  # half-length of the corpus callosum it stops at (0 above it)
    abs_mid: np.ndarray  # distance from the (warped) midline
    sdf: np.ndarray


def phantom_anatomy(index: int = 0, *, seed: int = 0, size: int = 256) -> dict[str, np.ndarray]:
    """Partial-volume tissue fractions of phantom slice ``index``.

    Parameters
    ----------
    index : int
        Slice / anatomy variation (>= 0): slice level, head shape, gyri, lesion.
    seed : int
        Subject seed (>= 0); with ``index`` it fixes the anatomy.
    size : int
        Output grid is ``size x size`` pixels over a 220 mm field of view.

    Returns
    -------
    dict of str to ndarray
        One float64 ``(size, size)`` map per name in :data:`TISSUES`; the maps are in [0, 1]
        and sum to one in every pixel.
    """
    _check_args(index, seed, size)
    # One generator for the whole slice: the parts below draw from it in this order.
    rng = np.random.default_rng([seed, index, 0x5EED])
    s = _slice_frame(rng, index, size)
    lesion = _place_lesion(rng, s)
    sulci = _sulci(rng, s)
    fissure = _interhemispheric_fissure(s, lesion)
    gm_sdf, wm_sdf = _grey_white_sdfs(rng, s, lesion, sulci, fissure)
    deep_sdf, ventricle_sdf, choroid_sdf = _deep_structures(s, lesion)
    lesion_sdf, core_sdf, oedema_cover = _lesion_tissues(rng, s, lesion, fissure.half)
    vessel_sdf = _vessel_sdf(rng, s)
    return _compose_slice(s, vessel=vessel_sdf, choroid=choroid_sdf, core=core_sdf, lesion=lesion_sdf,
                          ventricle=ventricle_sdf, deep=deep_sdf, wm=wm_sdf, gm=gm_sdf, oedema_cover=oedema_cover)


def _slice_frame(rng, index: int, size: int) -> _Slice:
    """Slice level, head size, shape and tilt, the pixel grid and the head's layers on it."""
    level = slice_level(index)
    tilt = np.deg2rad(rng.uniform(-6, 6))
    section = np.sqrt(max(1.0 - ((level - _LEVEL_WIDEST) / 0.78) ** 2, 0.05))
    head_scale = rng.uniform(0.93, 1.05)
    head_ax, head_ay = 80.0 * head_scale * section, 99.0 * head_scale * section ** 0.8
    shape_amp, shape_phase = rng.normal(0, 0.007, 4), rng.uniform(0, 2 * np.pi, 4)
    bulge = 1.0 + np.abs(shape_amp).sum()
    grid = _Grid(size, tilt, 1.05 * head_ax * bulge, max(1.05 * head_ax, head_ay) * bulge)
    r = np.hypot(grid.x, grid.y)
    theta = np.arctan2(grid.y, grid.x)
    # Nearest entry of the angle table (steps of 0.8 mrad, under 0.1 mm at the scalp).
    angle_slot = np.rint((theta + np.pi) * ((len(_ANGLES) - 1) / (2 * np.pi))).astype(np.intp)

    # ---- head outline and its layers (polar: radius as a function of angle) ---------------
    fat_base, skull_base = rng.uniform(2.0, 3.2), rng.uniform(4.5, 6.0)
    atrophy = rng.uniform(0.0, 1.0)
    head = _Head(head_ax, head_ay, shape_amp, shape_phase, level, fat_base, skull_base, sas_mm=1.0 + 1.2 * atrophy)
    layers = {name: table[angle_slot] for name, table in head.radii(_ANGLES).items()}
    return _Slice(level=level, section=section, grid=grid, r=r, theta=theta, angle_slot=angle_slot, head=head,
                  layers=layers, depth=layers["pial"] - r, brain_ax=head_ax - 13.0, brain_ay=head_ay - 14.0,
                  atrophy=atrophy)


def _place_lesion(rng, s: _Slice) -> _Lesion:
    """Lesion: a lobulated sphere cut at some level, with mass effect."""
    lesion_r3 = rng.uniform(10.0, 20.0) * s.section
    cut = rng.uniform(-0.65, 0.65) * lesion_r3
    lesion_r = np.sqrt(lesion_r3 ** 2 - cut ** 2)
    side = rng.choice((-1.0, 1.0))
    lesion_x = side * rng.uniform(0.28, 0.48) * s.brain_ax
    lesion_y = rng.uniform(-0.45, 0.45) * s.brain_ay
    lx, ly = s.x - lesion_x, s.y - lesion_y
    lesion_dist = np.hypot(lx, ly)
    # Mass effect: interior structures are sampled at positions pulled towards the lesion,
    # which pushes them away from it (ventricle compression, midline shift).
    spread = 1.6 * lesion_r + 8.0
    push = 0.35 * np.exp(-(lesion_dist / spread) ** 2)
    return _Lesion(r=lesion_r, x=lesion_x, y=lesion_y, side=side, lx=lx, ly=ly, dist=lesion_dist,
                   wx=s.x - push * lx, wy=s.y - push * ly)


def _sulci(rng, s: _Slice) -> _Sulci:
    """Cortex: gyri and sulci in polar coordinates around the head centre."""
    perimeter = 2 * np.pi * np.sqrt(0.5 * (s.brain_ax ** 2 + s.brain_ay ** 2))
    n_gyri = max(int(round(perimeter / rng.uniform(16.0, 19.0))), 8)
    n_harm = 16
    fold_table = _harmonics(_ANGLES, rng.normal(0, 1, n_harm) * 2.0 / np.arange(1, n_harm + 1) ** 0.7,
                            rng.uniform(0, 2 * np.pi, n_harm))
    twist = 0.15 * s.polar(_harmonics(_ANGLES, rng.normal(0, 1, 3), rng.uniform(0, 2 * np.pi, 3)))
    # A smooth 2-D phase field bends the sulci and makes their spacing irregular.
    psi = (n_gyri * s.theta + s.polar(fold_table) + 3.5 * _smooth_field(rng, s.grid.size, 11, s.grid.rows, s.grid.cols)
           + twist * np.clip(s.depth, 0, None))
    sulcus_index = np.round(psi / (2 * np.pi))
    offset = psi - 2 * np.pi * sulcus_index  # 0 on a sulcus, +-pi on a gyral crown
    arc_mm = np.abs(offset) / n_gyri * np.maximum(s.r, 1.0)  # distance from the sulcus line
    sulcal_depths = rng.uniform(0.35, 1.0, 97) * 14.0 * s.section ** 0.5
    sin_t = np.sin(s.theta)
    # Deep lateral (Sylvian) fissure at low levels, slightly anterior of the coronal plane.
    sylvian = _bump(s.level, 0.1, 0.5) * np.exp(-((sin_t + 0.2) / 0.22) ** 2)
    sulcal_depth = sulcal_depths[sulcus_index.astype(np.int64) % 97] * (1 + 1.0 * sylvian)
    cortex_mm = rng.uniform(4.2, 5.2)  # drawn here, after the sulcal depths
    sulcus_half = 0.4 + 0.5 * s.atrophy + 0.6 * np.exp(-np.clip(s.depth, 0, None) / 1.5)
    sulcus_sdf = np.minimum(sulcus_half - arc_mm, sulcal_depth - s.depth)
    return _Sulci(offset=offset, arc_mm=arc_mm, depth=sulcal_depth, half=sulcus_half, sdf=sulcus_sdf,
                  cortex_mm=cortex_mm)


def _interhemispheric_fissure(s: _Slice, lesion: _Lesion) -> _Fissure:
    """Interhemispheric fissure: deep in front of and behind the corpus callosum, complete above it."""
    fissure_half = 0.6 + 0.6 * s.atrophy
    gap_mm = 0.55 * (1 - np.clip((s.level - 0.5) / 0.12, 0, 1)) * s.brain_ay
    abs_mid = np.abs(lesion.wx)  # follows the midline shift
    fissure_sdf = np.minimum(fissure_half - abs_mid, np.abs(lesion.wy) - gap_mm)
    return _Fissure(half=fissure_half, gap_mm=gap_mm, abs_mid=abs_mid, sdf=fissure_sdf)


def _grey_white_sdfs(rng, s: _Slice, lesion: _Lesion, sulci: _Sulci, fissure: _Fissure):
    """Signed distances of the cortical grey matter and of the white matter below it."""
    depth = s.depth
    gm_sdf = np.minimum(depth, np.minimum(-sulci.sdf, -fissure.sdf))
    # White matter starts one cortical thickness below the crown of a gyrus and one below the
    # fundus of a sulcus; in between, its boundary follows (1 + cos offset) / 2, which gives
    # the tapering white-matter cores of real gyri. Above the fundus it also keeps a cortical
    # thickness away from the sulcus sideways.
    cortex_mm = sulci.cortex_mm
    fundus_share = 0.5 + 0.5 * np.cos(sulci.offset)
    beside_sulcus = np.maximum(sulci.arc_mm - (cortex_mm + sulci.half), depth - (sulci.depth + cortex_mm))
    wm_sdf = _smooth_min(depth - cortex_mm - sulci.depth * fundus_share, beside_sulcus, 1.5)
    # ... and away from the grey matter lining the interhemispheric fissure.
    # The medial cortex is folded too: its thickness undulates along the fissure, out of step
    # between the two hemispheres.
    wx, wy = lesion.wx, lesion.wy
    medial_phase = np.where(wx > 0, *rng.uniform(0, 2 * np.pi, 2))
    medial_mm = cortex_mm * (0.8 + 0.35 * np.sin(2 * np.pi * wy / rng.uniform(16.0, 22.0) + medial_phase)
                             + 0.25 * np.sin(2 * np.pi * wy / rng.uniform(7.0, 10.0) + 2.0 * medial_phase))
    wm_sdf = np.minimum(wm_sdf, np.maximum(fissure.abs_mid - (fissure.half + medial_mm),
                                           (fissure.gap_mm - cortex_mm) - np.abs(wy)))
    return gm_sdf, wm_sdf


def _deep_structures(s: _Slice, lesion: _Lesion):
    """Deep grey nuclei, ventricles and choroid plexus (brain-normalised placement, warped).

    They are computed in a window around the centre only; the signed distances are -1e3 outside it.
    """
    inner = s.grid.window(0.0, 0.0, max(0.7 * s.brain_ax, 0.72 * s.brain_ay) + 12.0)
    iwx, iwy = lesion.wx[inner], lesion.wy[inner]
    sdfs = []
    for local in (_deep_nuclei_sdf(s, iwx, iwy), _ventricles_sdf(s, iwx, iwy), _choroid_sdf(s, iwx, iwy)):
        full = np.full(s.x.shape, -1e3)
        full[inner] = local
        sdfs.append(full)
    return tuple(sdfs)


def _deep_nuclei_sdf(s: _Slice, iwx: np.ndarray, iwy: np.ndarray) -> np.ndarray:
    """Caudate heads, lentiform nuclei and thalami, both sides, growing and fading with the level."""
    deep_local = np.full(iwx.shape, -1e3)
    nuclei = (((0.17, -0.20), (5.5, 9.0), _bump(s.level, 0.18, 0.62)),   # caudate head
              ((0.40, -0.02), (6.5, 15.0), _bump(s.level, 0.10, 0.48)),  # lentiform nucleus
              ((0.12, 0.16), (8.0, 12.0), _bump(s.level, 0.10, 0.50)))   # thalamus
    for side in (-1.0, 1.0):
        for (u, v), (sx, sy), g in nuclei:
            if g > 0:
                cx, cy = s.at(side * u, v)
                deep_local = np.maximum(deep_local, _ellipse_sdf(iwx, iwy, cx, cy, sx * g ** 0.5 * s.section,
                                                                 sy * g ** 0.5 * s.section))
    return deep_local


def _ventricles_sdf(s: _Slice, iwx: np.ndarray, iwy: np.ndarray) -> np.ndarray:
    """Lateral ventricles (tapered capsules), septum pellucidum and third ventricle."""
    vent_scale = (0.75 + 0.6 * s.atrophy) * s.section
    ventricle_local = np.full(iwx.shape, -1e3)
    for side in (-1.0, 1.0):
        for (u0, v0, r0), (u1, v1, r1) in _ventricle_segments(s.level):
            # Ends thinner than 1.8 mm are dropped, so that vanishing segments leave nothing
            # rather than a hairline.
            ra, rb = (r * vent_scale if r * vent_scale >= 1.8 else r * vent_scale - 1.8 for r in (r0, r1))
            if max(ra, rb) <= 0:
                continue
            capsule = _tapered_capsule_sdf(iwx, iwy, s.at(side * u0, v0), s.at(side * u1, v1), ra, rb)
            ventricle_local = np.maximum(ventricle_local, capsule)
    # Septum pellucidum between the two lateral ventricles.
    ventricle_local = np.minimum(ventricle_local, np.abs(iwx) - 0.7)
    g_third = _bump(s.level, 0.12, 0.45)
    if g_third > 0:
        third = _ellipse_sdf(iwx, iwy, *s.at(0.0, 0.04), 1.5 * g_third * vent_scale, 12.0 * g_third * s.section)
        ventricle_local = np.maximum(ventricle_local, third)
    return ventricle_local


def _choroid_sdf(s: _Slice, iwx: np.ndarray, iwy: np.ndarray) -> np.ndarray:
    """Choroid plexus in the atria of the lateral ventricles."""
    choroid_local = np.full(iwx.shape, -1e3)
    g_atrium = _bump(s.level, 0.16, 0.62)
    if g_atrium > 0:
        for side in (-1.0, 1.0):
            cx, cy = s.at(side * 0.26, 0.32)
            choroid_local = np.maximum(choroid_local, _ellipse_sdf(iwx, iwy, cx, cy, 2.2 * g_atrium, 3.2 * g_atrium))
    return choroid_local


def _lesion_tissues(rng, s: _Slice, lesion: _Lesion, fissure_half: float):
    """Lesion tissues (in a window around it): enhancing rim, necrotic core and oedema.

    Returns the signed distances of the whole lesion and of its core, and the oedema's coverage.
    """
    oedema_reach = lesion.r * rng.uniform(1.5, 2.2)
    around = s.grid.window(lesion.x, lesion.y, 1.5 * oedema_reach + 4.0)
    angle_l = np.arctan2(lesion.ly[around], lesion.lx[around])
    dist_l = lesion.dist[around]
    lobes = _harmonics(angle_l, rng.normal(0, 0.07, 4), rng.uniform(0, 2 * np.pi, 4), first=2)
    rim_shape = _harmonics(angle_l, rng.normal(0, 0.25, 3), rng.uniform(0, 2 * np.pi, 3))
    oedema_shape = 1 + _harmonics(angle_l, rng.normal(0, 0.18, 5), rng.uniform(0, 2 * np.pi, 5))
    lesion_sdf = np.full(s.x.shape, -1e3)
    core_sdf = np.full(s.x.shape, -1e3)
    oedema_cover = np.zeros(s.x.shape)
    lesion_sdf[around] = lesion.r * (1 + lobes) - dist_l
    rim_mm = np.clip(lesion.r * rng.uniform(0.15, 0.28) * (1 + rim_shape), 1.2, None)
    core_sdf[around] = lesion_sdf[around] - rim_mm
    # Vasogenic oedema fades gradually (over about 6 mm) rather than at a sharp edge.
    # The falx stops it at the midline.
    oedema_cover[around] = (np.clip(0.5 + (oedema_reach * oedema_shape - dist_l) / 6.0, 0.0, 1.0)
                            * _coverage(lesion.side * lesion.wx[around] - fissure_half, s.pixel_mm))
    return lesion_sdf, core_sdf, oedema_cover


def _vessel_sdf(rng, s: _Slice) -> np.ndarray:
    """Vessels (signed distance).

    Superior sagittal sinus against the inner table at the posterior midline (and anteriorly
    at high levels); small cortical veins in the subarachnoid space.
    """
    vessel_sdf = np.full(s.x.shape, -1e3)
    vessels = []
    for pole, strength in ((np.pi / 2, 1.0), (-np.pi / 2, _bump(s.level, 0.45, 1.3))):
        if strength > 0:
            radius = float(s.head.radii(np.array([pole]))["skull_in"][0]) - 2.4 * strength
            vessels.append((0.0, radius * np.sin(pole), 2.4 * strength, 2.8 * strength))
    vein_angles = rng.uniform(-np.pi, np.pi, 8)
    for angle, radius in zip(vein_angles, s.head.radii(vein_angles)["pial"] + 0.3):
        vessels.append((radius * np.cos(angle), radius * np.sin(angle), 0.8, 0.8))
    for cx, cy, ax, ay in vessels:
        win = s.grid.window(cx, cy, max(ax, ay) + 2 * s.pixel_mm)
        vessel_sdf[win] = np.maximum(vessel_sdf[win], _ellipse_sdf(s.x[win], s.y[win], cx, cy, ax, ay))
    return vessel_sdf


def _compose_slice(s: _Slice, *, vessel, choroid, core, lesion, ventricle, deep, wm, gm,
                   oedema_cover) -> dict[str, np.ndarray]:
    """Stack the structures' coverages, topmost first, add the oedema and embed in the full image."""
    cover = lambda sdf: _coverage(sdf, s.pixel_mm)  # noqa: E731
    head, r = s.layers, s.r
    fractions = _compose((
        ("vessel", cover(vessel)),
        ("choroid", cover(choroid)),
        ("necrosis", cover(core)),
        ("tumour_rim", cover(lesion)),
        ("csf", cover(ventricle)),
        ("deep_gm", _coverage(deep, max(s.pixel_mm, 2.5))),  # nuclei have blurred edges
        ("wm", cover(wm)),
        ("gm", cover(gm)),
        ("csf", cover(head["skull_in"] - r)),
        ("marrow", cover(np.minimum(head["diploe_out"] - r, r - head["diploe_in"]))),
        ("bone", cover(head["skull_out"] - r)),
        ("skin", cover(head["fat_in"] - r)),
        ("fat", cover(head["fat_out"] - r)),
        ("skin", cover(head["outline"] - r)),
    ), s.x.shape)
    # Oedema replaces white matter (and a little grey matter) near the lesion.
    for tissue, share in (("wm", 1.0), ("deep_gm", 0.35), ("gm", 0.12)):
        moved = fractions[tissue] * oedema_cover * share
        fractions[tissue] -= moved
        fractions["oedema"] += moved
    return s.grid.embed(fractions)


def _ventricle_segments(level: float):
    """Lateral-ventricle capsules ``((u0, v0, r0), (u1, v1, r1))`` for the left side at ``level``.

    ``u, v`` are brain-normalised (``v < 0`` anterior), radii in mm. Three key levels are
    blended: the basal ganglia (frontal horns in a butterfly around the septum, separate atria
    and occipital horns), the ventricular bodies (two crescents, concave laterally) and the top
    of the bodies (two thin slits).
    """
    basal = (((0.21, -0.40, 2.0), (0.09, -0.25, 6.0)), ((0.09, -0.25, 6.0), (0.04, -0.10, 2.5)),
             ((0.04, -0.10, 0.0), (0.26, 0.30, 0.0)),
             ((0.30, 0.28, 6.5), (0.23, 0.52, 1.8)))
    body = (((0.15, -0.40, 2.5), (0.09, -0.22, 5.5)), ((0.09, -0.22, 5.5), (0.10, 0.04, 4.5)),
            ((0.10, 0.04, 4.5), (0.22, 0.30, 6.0)),
            ((0.22, 0.30, 6.0), (0.20, 0.50, 2.0)))
    top = (((0.11, -0.30, 0.5), (0.10, -0.15, 2.5)), ((0.10, -0.15, 2.5), (0.11, 0.04, 3.0)),
           ((0.11, 0.04, 3.0), (0.16, 0.22, 1.5)),
           ((0.16, 0.22, 1.5), (0.16, 0.30, 0.0)))
    if level <= 0.48:
        weight = float(np.clip((level - 0.32) / 0.16, 0, 1))
        lo, hi, fade = basal, body, _bump(level, 0.14, 0.9) ** 0.5
    else:
        weight = float(np.clip((level - 0.48) / 0.16, 0, 1))
        lo, hi, fade = body, top, float(np.clip((0.74 - level) / 0.08, 0, 1))
    mix = lambda a, b: tuple((1 - weight) * p + weight * q for p, q in zip(a, b))  # noqa: E731
    return [(mix(a0, b0)[:2] + (mix(a0, b0)[2] * fade,), mix(a1, b1)[:2] + (mix(a1, b1)[2] * fade,))
            for (a0, a1), (b0, b1) in zip(lo, hi)]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def _check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise UserError(f"phantom: unknown modality {modality!r}; known: {', '.join(MODALITIES)}")


def apply_palette(values: np.ndarray, palette) -> np.ndarray:
    """Map values in [0, 1] to float32 RGB in [0, 1] through piecewise-linear control points."""
    positions = np.array([p for p, _ in palette])
    colours = np.array([c for _, c in palette], dtype=np.float64) / 255.0
    v = np.clip(values, 0.0, 1.0)
    return np.stack([np.interp(v, positions, colours[:, ch]) for ch in range(3)], axis=-1).astype(np.float32)


def _tissue_image(modality: str, fractions: dict[str, np.ndarray]) -> np.ndarray:
    """Noise-free, unblurred signal: partial-volume weighted sum of tissue intensities."""
    values = _INTENSITY[modality]
    out = np.zeros_like(fractions["air"])
    for tissue, value in zip(TISSUES, values):
        if value != 0.0:
            out += value * fractions[tissue]
    return out


def render(modality: str, fractions: dict[str, np.ndarray], *, seed: int = 0, index: int = 0) -> np.ndarray:
    """Render tissue fractions in one modality with its PSF and noise.

    Parameters
    ----------
    modality : str
        One of :data:`MODALITIES`.
    fractions : dict of str to ndarray
        Output of :func:`phantom_anatomy` (square maps over a 220 mm field of view).
    seed, index : int
        Fix the noise realisation (with the modality), so renderings are reproducible.

    Returns
    -------
    ndarray
        float32 in [0, 1]: ``(H, W)`` for MR and CT, ``(H, W, 3)`` RGB for PET and SPECT.

    Notes
    -----
    * MR: signal times a smooth coil-sensitivity bias field (+-6 %), Gaussian PSF of 1 mm FWHM,
      then Rician magnitude noise ``|S + n1 + i n2|`` with ``n1, n2 ~ N(0, sigma^2)``
      (Gudbjartsson & Patz 1995).
    * CT: Hounsfield units, 1.2 mm FWHM PSF, spatially correlated Gaussian noise of 3 HU
      (filtered-back-projection noise is correlated over about a pixel), displayed in a
      brain window (level 45 HU, width 120 HU), so bone saturates and fat is black.
    * PET / SPECT: activity blurred by the system PSF (6.5 / 9 mm FWHM), Poisson counts,
      a reconstruction smoothing filter, display scaling that puts the 99.5th percentile of the
      noise-free activity at a fixed point of the colour scale, then the Harvard atlas colour map.
    """
    _check_modality(modality)
    size = fractions["air"].shape[0]
    pixel_mm = FIELD_OF_VIEW_MM / size
    rng = np.random.default_rng([seed, index, MODALITIES.index(modality), 0xA0153])
    signal = _tissue_image(modality, fractions)
    psf = _PSF_SIGMA_MM[modality] / pixel_mm

    if modality.startswith("MR-"):
        # Tissue texture (shared by all MR contrasts of a slice, hence its own generator) and
        # a smooth receive-coil bias field.
        texture = ndimage.gaussian_filter(np.random.default_rng([seed, index, 0x7E47]).normal(0.0, 1.0, (size, size)),
                                          _TEXTURE_GRAIN_MM / pixel_mm)
        texture /= texture.std()
        signal = signal * (1.0 + _MR_TEXTURE * texture)
        axis = np.linspace(-1.0, 1.0, size)
        gy, gx = np.meshgrid(axis, axis, indexing="ij")
        a, b, c = rng.uniform(-0.04, 0.04, 3)
        signal = signal * (1.0 + a * gx + b * gy + c * (gx * gx + gy * gy - 0.5))
        signal = ndimage.gaussian_filter(signal, psf, mode="constant")
        sigma = _MR_NOISE[modality]
        noisy = np.hypot(signal + rng.normal(0.0, sigma, signal.shape), rng.normal(0.0, sigma, signal.shape))
        return np.clip(noisy, 0.0, 1.0).astype(np.float32)

    if modality == "CT":
        hu = ndimage.gaussian_filter(signal, psf, mode="nearest")
        grain = ndimage.gaussian_filter(rng.normal(0.0, 1.0, hu.shape), 1.0)
        hu = hu + grain * (_CT_NOISE_HU / grain.std())
        low = _CT_WINDOW_LEVEL_HU - _CT_WINDOW_WIDTH_HU / 2
        return np.clip((hu - low) / _CT_WINDOW_WIDTH_HU, 0.0, 1.0).astype(np.float32)

    # Emission tomography: expected counts from the blurred activity, Poisson sampling.
    activity = ndimage.gaussian_filter(signal, psf, mode="constant")
    reference = float(np.percentile(activity, 99.5)) or 1.0
    peak_counts = _COUNTS_AT_256[modality] * (256.0 / size) ** 2
    counts = rng.poisson(np.clip(activity / reference, 0.0, None) * peak_counts).astype(np.float64)
    counts = ndimage.gaussian_filter(counts, _RECON_SIGMA_MM[modality] / pixel_mm, mode="constant")
    display = counts / peak_counts * _DISPLAY_PEAK[modality]
    return apply_palette(display, _PALETTES[modality])


def phantom_slice(modality: str, index: int = 0, *, seed: int = 0, size: int = 256) -> np.ndarray:
    """One phantom slice in one modality.

    Parameters
    ----------
    modality : str
        One of :data:`MODALITIES`.
    index : int
        Slice / anatomy variation (>= 0).
    seed : int
        Subject and noise seed (>= 0).
    size : int
        Image side in pixels (>= 16), over a 220 mm field of view.

    Returns
    -------
    ndarray
        float32 in [0, 1], ``(size, size)`` grey, or ``(size, size, 3)`` RGB for PET and SPECT.
        Identical inputs give bit-identical outputs.
    """
    _check_modality(modality)
    return render(modality, phantom_anatomy(index, seed=seed, size=size), seed=seed, index=index)


def phantom_pair(modality_a: str, modality_b: str, index: int = 0, *, seed: int = 0,
                 size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Two co-registered renderings of the same anatomy (same as two :func:`phantom_slice` calls)."""
    _check_modality(modality_a)
    _check_modality(modality_b)
    fractions = phantom_anatomy(index, seed=seed, size=size)
    return (render(modality_a, fractions, seed=seed, index=index),
            render(modality_b, fractions, seed=seed, index=index))


def _timing_table(repeats: int = 5, size: int = 256) -> str:
    """Median seconds per :func:`phantom_slice` call, one row per modality (plain-text table)."""
    import time

    rows = [f"{'modality':<10} {'size':>5} {'median s':>9} {'min s':>8}"]
    for modality in MODALITIES:
        times = []
        for index in range(repeats):
            start = time.perf_counter()
            phantom_slice(modality, index, size=size)
            times.append(time.perf_counter() - start)
        rows.append(f"{modality:<10} {size:>5} {np.median(times):>9.4f} {min(times):>8.4f}")
    return "\n".join(rows)


if __name__ == "__main__":
    print(_timing_table())
