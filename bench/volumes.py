"""Clinical volumes in and out: NIfTI files and DICOM series, MR/CT normalisation, slice-wise fusion.

    python -m bench fuse a.nii.gz b.nii.gz -o f.nii.gz --method densegan [--axis axial] [--resample]
    python -m bench fuse DICOM_DIR_A DICOM_DIR_B -o OUT_DIR --method dwt     # DICOM series out

Conventions
-----------
* **Canonical orientation.** Every volume is held as float32 ``(X, Y, Z)`` on the RAS+ axes closest to
  its own (``nibabel.as_closest_canonical``: only axis permutations and flips, no resampling), with its
  voxel-to-world affine in millimetres. An oblique acquisition stays oblique: its affine keeps the
  rotation, the voxel order is the nearest RAS one. Outputs go back to the first source's own voxel
  order and affine, so a viewer overlays them on that source voxel for voxel.
* **DICOM series**: one series per folder (or one multi-frame file); slices sorted along the normal of
  ImageOrientationPatient by ImagePositionPatient, ``RescaleSlope`` and ``RescaleIntercept`` applied
  (top level, or the functional groups of a multi-frame file). DICOM's patient axes are LPS; the affine is
  turned into RAS by negating x and y. The voxel order is ``(column, row, slice)``.
* **Same grid**: two sources must have the same shape and affines that put every corner voxel centre at
  the same world point within ``GRID_TOLERANCE`` (1 %) of the smallest voxel spacing; otherwise one line
  names the difference. ``resample_to`` (``--resample``) puts the second source on the first one's grid
  by trilinear interpolation (``scipy.ndimage.affine_transform``, world-to-voxel of the second affine
  composed with the first affine; outside the second volume the value is its minimum).
* **Intensity normalisation** to [0, 1] (MR has no absolute scale), recorded in every output:
  ``mr``: a per-volume percentile window: the head mask is the voxels above ``lo + 0.1 (p99 - lo)``
  (``lo`` the volume minimum, ``p99`` the 99th percentile of the voxels above ``lo``), and the window is
  the 0.5th to 99.5th percentile inside that mask (``MR_PERCENTILES``), clipped.
  ``ct-brain`` (level 40 HU, width 80), ``ct-subdural`` (75/215), ``ct-soft`` (40/400), ``ct-bone``
  (600/2800): fixed Hounsfield windows (``CT_WINDOWS``). ``auto``: a CT window for a DICOM series whose
  Modality is CT, else ``mr``.
* **Slices** are fused one at a time in radiological display orientation (the Harvard atlas's and most
  viewers'): axial slices with anterior up and the patient's right on the image's left; coronal with
  superior up, right on the left; sagittal with superior up, anterior on the left. A slice in which either
  normalised source is constant (outside the head) has nothing to fuse; its fused slice is the mean of
  the two sources (what ``average`` gives), and the count is recorded. Only one slice of each source is
  copied at a time; volumes are float32 throughout.
* **Outputs**: NIfTI float32 in [0, 1] with the first source's header, qform and sform, ``descrip`` naming
  the method and a JSON comment extension (method, parameters, axis, normalisation windows, sources).
  A DICOM series out (first source a DICOM series): a new SeriesInstanceUID and SOPInstanceUIDs, ImageType
  DERIVED\\SECONDARY, the source's patient, study and frame of reference and its slice geometry, pixels
  ``round(4095 f)`` in 12 bits, the same JSON in DerivationDescription. Either is written to a
  temporary name and renamed, so nothing half-written is left; an existing output is never replaced
  without ``--force`` (and a DICOM output folder never).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from common.errors import UserError

NIFTI_SUFFIXES = (".nii.gz", ".nii")
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
MR_PERCENTILES = (0.5, 99.5)
HEAD_MASK_FRACTION = 0.1
CT_WINDOWS = {"ct-brain": (40.0, 80.0), "ct-subdural": (75.0, 215.0), "ct-soft": (40.0, 400.0),
              "ct-bone": (600.0, 2800.0)}          # (level, width) in HU
NORMALISATIONS = ("auto", "mr", *CT_WINDOWS)
GRID_TOLERANCE = 0.01                              # fraction of the smallest voxel spacing
DICOM_LEVELS = 4095                                # fused [0, 1] stored as round(4095 f), 12 bits
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])             # DICOM patient (LPS) <-> NIfTI world (RAS)


@dataclass
class Volume:
    """A 3-D scan on canonical RAS+ axes, with what is needed to write a result in its own geometry."""
    data: np.ndarray                   # float32 (X, Y, Z), RAS+ closest canonical voxel order
    affine: np.ndarray                 # voxel -> RAS world (mm) of ``data``
    path: Path
    original_affine: np.ndarray        # voxel -> RAS world of the file's own voxel order
    modality: str | None = None        # DICOM Modality (None for NIfTI)
    nifti_header: object = field(default=None, repr=False)
    dicom_template: object = field(default=None, repr=False)   # first slice's header, no pixels

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.data.shape

    @property
    def spacing(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    def describe_grid(self) -> str:
        return f"{'x'.join(map(str, self.shape))} voxels of {_mm(self.spacing)} mm"


def _mm(values) -> str:
    return "x".join(f"{v:.4g}" for v in values)


def is_volume_path(path: str | os.PathLike) -> bool:
    """A NIfTI file, a DICOM file or a folder (a DICOM series): what ``read_volume`` reads."""
    path = Path(path)
    return path.is_dir() or path.name.lower().endswith(NIFTI_SUFFIXES + (".dcm",))


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI file, a folder holding one DICOM series, or one (multi-frame) DICOM file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return read_dicom_series(path)
    if path.name.lower().endswith(NIFTI_SUFFIXES):
        return read_nifti(path)
    return read_dicom_series(path)


# --- NIfTI ---------------------------------------------------------------------------------------------------

def read_nifti(path: str | os.PathLike) -> Volume:
    """A 3-D NIfTI-1/2 file (a 4-D one with a single volume is accepted) on canonical RAS+ axes."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(path)
        shape = img.shape
        if len(shape) == 4 and shape[3] == 1:
            img = img.slicer[..., 0]
            shape = img.shape
        if len(shape) != 3:
            raise UserError(f"{path}: a {len(shape)}-D volume of shape {_shape(shape)}; expected one 3-D volume "
                            f"(split time series or channels first)")
        data = img.get_fdata(dtype=np.float32)
    except UserError:
        raise
    except Exception as exc:  # nibabel raises many types for a damaged file (ImageFileError, OSError, EOF, zlib)
        raise UserError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {_first_line(exc)})") from None
    _check_finite(data, path)
    affine = np.asarray(img.affine, dtype=np.float64)
    _check_affine(affine, path)
    return _canonical(data, affine, path, nifti_header=img.header)


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


def _check_finite(data: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(data)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise UserError(f"{path}: {int(bad.sum())} voxel(s) are NaN or infinite (the first at voxel {where})")


def _check_affine(affine: np.ndarray, path: Path) -> None:
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise UserError(f"{path}: the voxel-to-world affine is singular or not finite; the header is damaged")


def _canonical(data, affine, path, **extra) -> Volume:
    import nibabel as nib

    img = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    return Volume(np.asarray(img.dataobj, dtype=np.float32), np.asarray(img.affine, dtype=np.float64),
                  Path(path), affine, **extra)


def to_original(data: np.ndarray, volume: Volume) -> np.ndarray:
    """``data`` on ``volume``'s canonical axes, put back into the file's own voxel order (a view)."""
    from nibabel.orientations import apply_orientation, io_orientation, ornt_transform

    back = ornt_transform(io_orientation(volume.affine), io_orientation(volume.original_affine))
    return apply_orientation(data, back)


def write_nifti(path: str | os.PathLike, data: np.ndarray, like: Volume, *, description: str = "",
                metadata: dict | None = None, overwrite: bool = False) -> Path:
    """Write ``data`` (on ``like``'s canonical axes) as float32 NIfTI in ``like``'s voxel order and affine.

    The header (units, qform and sform codes) comes from ``like`` when it is a NIfTI file; ``description``
    goes into ``descrip`` (79 characters) and ``metadata`` into a JSON comment extension. ``.nii.gz``
    is gzip-compressed. Written atomically.
    """
    import nibabel as nib

    from common.io import write_bytes

    path = Path(path)
    if not path.name.lower().endswith(NIFTI_SUFFIXES):
        raise UserError(f"{path}: a NIfTI output needs the suffix .nii or .nii.gz")
    header = nib.Nifti1Header.from_header(like.nifti_header) if like.nifti_header is not None else None
    img = nib.Nifti1Image(np.asarray(to_original(data, like), dtype=np.float32), like.original_affine, header=header)
    img.set_data_dtype(np.float32)
    img.header.set_slope_inter(1.0, 0.0)
    qcode = int(header["qform_code"]) if header is not None else 0
    scode = int(header["sform_code"]) if header is not None else 0
    img.set_qform(like.original_affine, code=qcode or 1)
    img.set_sform(like.original_affine, code=scode or 2)
    img.header["descrip"] = description.encode("ascii", "replace")[:79]
    img.header["cal_min"], img.header["cal_max"] = 0.0, 1.0
    if metadata is not None:
        img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(metadata).encode()))
    payload = img.to_bytes()
    if path.name.lower().endswith(".gz"):
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    return write_bytes(path, payload, overwrite=overwrite)


# --- DICOM ---------------------------------------------------------------------------------------------------

def read_dicom_series(path: str | os.PathLike) -> Volume:
    """One DICOM series: a folder of single-frame files, or one multi-frame file (alone or in a folder)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if path.is_dir() else [path]
    if not files:
        raise UserError(f"{path}: empty folder; expected the files of one DICOM series")
    slices = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except InvalidDicomError:
            raise UserError(f"{f}: not a DICOM file (a series folder must hold the series' files only)") from None
        except Exception as exc:
            raise UserError(f"{f}: unreadable DICOM file ({type(exc).__name__}: {_first_line(exc)})") from None
        if "PixelData" not in ds:
            kind = getattr(ds, "SOPClassUID", None)
            kind = kind.name if kind is not None else "object"
            raise UserError(f"{f}: a DICOM {kind} without image data; a series folder must hold images of "
                            f"one series only")
        slices.append((f, ds))
    series = {}
    for f, ds in slices:
        series.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append((f, ds))
    if len(series) > 1:
        named = "; ".join(f"{len(v)} file(s) of {getattr(v[0][1], 'SeriesDescription', '') or uid}"
                          for uid, v in series.items())
        raise UserError(f"{path}: holds {len(series)} DICOM series ({named}); give each series its own folder")
    multi = [(f, ds) for f, ds in slices
             if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 or "PerFrameFunctionalGroupsSequence" in ds]
    if multi and len(slices) > 1:
        raise UserError(f"{path}: mixes a multi-frame file ({multi[0][0].name}) with other files; "
                        f"give it its own folder")
    frames = _multiframe_frames(*multi[0]) if multi else [_single_frame(f, ds) for f, ds in slices]
    data, lps = _stack_frames(frames, path)
    _check_finite(data, path)
    template = slices[0][1]
    del template.PixelData
    return _canonical(data, _LPS @ lps, path, modality=str(getattr(template, "Modality", "")) or None,
                      dicom_template=template)


def _pixels(f: Path, ds) -> np.ndarray:
    if int(getattr(ds, "SamplesPerPixel", 1)) != 1:
        raise UserError(f"{f}: a colour DICOM image ({ds.PhotometricInterpretation}); expected grey scans")
    try:
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # compressed transfer syntax without a decoder, truncated pixel data, ...
        raise UserError(f"{f}: cannot decode the pixel data ({type(exc).__name__}: {_first_line(exc)})") from None


def _require(f: Path, ds, keyword: str, where: str = ""):
    value = getattr(ds, keyword, None)
    if value is None:
        raise UserError(f"{f}: no {keyword}{where}; cannot place the slice in space")
    return value


def _single_frame(f: Path, ds) -> dict:
    slope, intercept = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
    pixels = _pixels(f, ds).astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return {"file": f, "position": np.array(_require(f, ds, "ImagePositionPatient"), dtype=float),
            "orientation": np.array(_require(f, ds, "ImageOrientationPatient"), dtype=float),
            "spacing": np.array(_require(f, ds, "PixelSpacing"), dtype=float), "pixels": pixels,
            "thickness": float(getattr(ds, "SpacingBetweenSlices", 0) or getattr(ds, "SliceThickness", 0) or 0)}


def _group(ds, sequence: str, index: int | None = None):
    """An item of a functional group macro: per-frame first, else shared, else None."""
    for name, i in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        seq = getattr(ds, name, None)
        if seq is not None and i is not None and i < len(seq) and sequence in seq[i]:
            return getattr(seq[i], sequence)[0]
    return None


def _multiframe_frames(f: Path, ds) -> list[dict]:
    pixels = _pixels(f, ds)
    frames = []
    for i in range(pixels.shape[0]):
        position = _group(ds, "PlanePositionSequence", i)
        orientation = _group(ds, "PlaneOrientationSequence", i)
        measures = _group(ds, "PixelMeasuresSequence", i)
        transform = _group(ds, "PixelValueTransformationSequence", i) or ds
        for item, name in ((position, "PlanePositionSequence"), (orientation, "PlaneOrientationSequence"),
                           (measures, "PixelMeasuresSequence")):
            if item is None:
                raise UserError(f"{f}: frame {i + 1} has no {name}; cannot place it in space")
        slope = float(getattr(transform, "RescaleSlope", 1) or 1)
        intercept = float(getattr(transform, "RescaleIntercept", 0) or 0)
        frames.append({"file": f, "position": np.array(_require(f, position, "ImagePositionPatient"), dtype=float),
                       "orientation": np.array(_require(f, orientation, "ImageOrientationPatient"), dtype=float),
                       "spacing": np.array(_require(f, measures, "PixelSpacing"), dtype=float),
                       "pixels": pixels[i].astype(np.float32) * np.float32(slope) + np.float32(intercept),
                       "thickness": float(getattr(measures, "SpacingBetweenSlices", 0)
                                          or getattr(measures, "SliceThickness", 0) or 0)})
    return frames


def _stack_frames(frames: list[dict], path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sort frames along the slice normal and return ``(data (col, row, slice), LPS affine)``."""
    first = frames[0]
    for fr in frames[1:]:
        if not np.allclose(fr["orientation"], first["orientation"], atol=1e-4):
            raise UserError(f"{path}: slices have different orientations ({fr['file'].name} vs {first['file'].name})")
        if fr["pixels"].shape != first["pixels"].shape or not np.allclose(fr["spacing"], first["spacing"], rtol=1e-4):
            raise UserError(f"{path}: slices differ in size or pixel spacing ({fr['file'].name} vs "
                            f"{first['file'].name})")
    row_cos, col_cos = first["orientation"][:3], first["orientation"][3:]
    normal = np.cross(row_cos, col_cos)
    frames = sorted(frames, key=lambda fr: float(fr["position"] @ normal))
    depth = np.array([fr["position"] @ normal for fr in frames])
    if len(frames) > 1:
        steps = np.diff(depth)
        if steps.min() < 1e-3:
            i = int(np.argmin(steps))
            raise UserError(f"{path}: {frames[i]['file'].name} and {frames[i + 1]['file'].name} lie at the same "
                            f"position; one series holds several volumes (time points or echoes?)")
        if steps.max() - steps.min() > 0.01 * np.median(steps):
            raise UserError(f"{path}: slices are unevenly spaced ({steps.min():.4g} to {steps.max():.4g} mm apart);"
                            f" missing slices?")
        step = (frames[-1]["position"] - frames[0]["position"]) / (len(frames) - 1)
    else:
        step = normal * (first["thickness"] or 1.0)
    row_spacing, col_spacing = first["spacing"]
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_spacing      # voxel axis 0: along a row (column index)
    lps[:3, 1] = col_cos * row_spacing      # voxel axis 1: down a column (row index)
    lps[:3, 2] = step
    lps[:3, 3] = frames[0]["position"]
    data = np.empty(first["pixels"].shape[::-1] + (len(frames),), dtype=np.float32)
    for k, fr in enumerate(frames):
        data[:, :, k] = fr["pixels"].T
    return data, lps


_TEMPLATE_KEYWORDS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyInstanceUID", "StudyDate",
    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "StudyDescription", "FrameOfReferenceUID",
    "PositionReferenceIndicator", "Modality", "Manufacturer", "BodyPartExamined", "PatientPosition")
_CLASSIC_IMAGE_CLASSES = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.128",
                          "1.2.840.10008.5.1.4.1.1.20"}   # MR, CT, PET, NM single-frame image storage
_MODALITY_CLASSES = {"CT": "1.2.840.10008.5.1.4.1.1.2", "PT": "1.2.840.10008.5.1.4.1.1.128"}


def _ds(value: float) -> str:
    """A DICOM decimal string (at most 16 characters)."""
    for digits in range(10, 3, -1):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.3e}"


def write_dicom_series(folder: str | os.PathLike, data: np.ndarray, like: Volume, *, description: str = "",
                       metadata: dict | None = None) -> Path:
    """Write ``data`` (in [0, 1], on ``like``'s canonical axes) as a derived DICOM series in ``like``'s geometry.

    ``like`` must be a DICOM series: its patient, study and frame of reference are kept, the series and
    instances get new UIDs. One single-frame file per slice of ``like``'s own slice order; the folder must
    not exist (or be empty) and appears complete or not at all.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    if like.dicom_template is None:
        raise UserError(f"{folder}: a DICOM series out needs a DICOM series as the first source "
                        f"(its patient, study and geometry); write NIfTI (.nii.gz) instead")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{folder}: already exists; a DICOM series is written into a new folder")
    template = like.dicom_template
    sop_class = str(getattr(template, "SOPClassUID", ""))
    if sop_class not in _CLASSIC_IMAGE_CLASSES:   # e.g. an enhanced multi-frame source: write classic slices
        sop_class = _MODALITY_CLASSES.get(like.modality or "", "1.2.840.10008.5.1.4.1.1.4")
    pixels = to_original(data, like)               # (column, row, slice) of the source
    lps = _LPS @ like.original_affine
    col_spacing, row_spacing = np.sqrt((lps[:3, :2] ** 2).sum(axis=0))
    orientation = np.concatenate([lps[:3, 0] / col_spacing, lps[:3, 1] / row_spacing])
    thickness = float(np.sqrt((lps[:3, 2] ** 2).sum()))
    series_uid = generate_uid()
    derivation = json.dumps(metadata)[:1024] if metadata is not None else ""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for k in range(pixels.shape[2]):
            ds = Dataset()
            for keyword in _TEMPLATE_KEYWORDS:
                if keyword in template:
                    setattr(ds, keyword, getattr(template, keyword))
            uid = generate_uid()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.MediaStorageSOPClassUID = sop_class
            ds.file_meta.MediaStorageSOPInstanceUID = uid
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = sop_class, uid, series_uid
            ds.SeriesNumber = int(getattr(template, "SeriesNumber", 0) or 0) + 1000
            ds.InstanceNumber = k + 1
            ds.SeriesDescription = description[:64]
            ds.ImageType = ["DERIVED", "SECONDARY"]
            if derivation:
                ds.DerivationDescription = derivation
            ds.ImagePositionPatient = [_ds(v) for v in (lps @ [0.0, 0.0, k, 1.0])[:3]]
            ds.ImageOrientationPatient = [_ds(v) for v in orientation]
            ds.PixelSpacing = [_ds(row_spacing), _ds(col_spacing)]
            ds.SliceThickness = _ds(thickness)
            ds.SpacingBetweenSlices = _ds(thickness)
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            plane = np.floor(np.clip(pixels[:, :, k].T, 0.0, 1.0) * DICOM_LEVELS + 0.5).astype(np.uint16)
            ds.Rows, ds.Columns = plane.shape
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.RescaleIntercept, ds.RescaleSlope = "0", "1"
            ds.WindowCenter, ds.WindowWidth = "2048", "4096"
            ds.PixelData = np.ascontiguousarray(plane).tobytes()
            ds.save_as(tmp / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
        if folder.exists():
            folder.rmdir()                         # empty, checked above
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


# --- grids ---------------------------------------------------------------------------------------------------

def grid_difference(a: Volume, b: Volume, tolerance: float = GRID_TOLERANCE) -> str | None:
    """None when ``a`` and ``b`` share a voxel grid, else what differs (shape, voxel size or position)."""
    if a.shape != b.shape:
        return f"shape {_shape(a.shape)} vs {_shape(b.shape)} voxels"
    corners = np.array([[i, j, k, 1.0] for i in (0, a.shape[0] - 1) for j in (0, a.shape[1] - 1)
                        for k in (0, a.shape[2] - 1)]).T
    apart = float(np.sqrt((((a.affine - b.affine) @ corners)[:3] ** 2).sum(axis=0)).max())
    if apart <= tolerance * float(min(a.spacing.min(), b.spacing.min())):
        return None
    if not np.allclose(a.spacing, b.spacing, rtol=tolerance):
        return f"voxel size {_mm(a.spacing)} vs {_mm(b.spacing)} mm"
    return (f"same shape and voxel size but placed differently: corners up to {apart:.3g} mm apart "
            f"(origin {_mm(a.affine[:3, 3])} vs {_mm(b.affine[:3, 3])} mm)")


def check_same_grid(a: Volume, b: Volume, tolerance: float = GRID_TOLERANCE) -> None:
    difference = grid_difference(a, b, tolerance)
    if difference:
        raise UserError(f"{a.path} and {b.path} are not on the same grid: {difference} "
                        f"(--resample puts the second on the first one's grid)")


def resample_to(moving: Volume, target: Volume) -> Volume:
    """``moving`` on ``target``'s grid: trilinear, outside ``moving`` its minimum (float32, one new array)."""
    from scipy import ndimage

    matrix = np.linalg.inv(moving.affine) @ target.affine     # target voxel -> moving voxel
    data = ndimage.affine_transform(moving.data, matrix[:3, :3], offset=matrix[:3, 3], output_shape=target.shape,
                                    order=1, mode="grid-constant", cval=float(moving.data.min()), output=np.float32)
    return Volume(data, target.affine.copy(), moving.path, target.original_affine, moving.modality,
                  moving.nifti_header, moving.dicom_template)


# --- intensities ---------------------------------------------------------------------------------------------

def head_mask(data: np.ndarray) -> np.ndarray:
    """Voxels above ``lo + HEAD_MASK_FRACTION (p99 - lo)``; ``lo`` the minimum, p99 over voxels above it."""
    lo = float(data.min())
    above = data[data > lo]
    if above.size == 0:
        return np.zeros(data.shape, dtype=bool)
    return data > lo + HEAD_MASK_FRACTION * (float(np.percentile(above, 99)) - lo)


def normalise(volume: Volume, mode: str = "auto") -> tuple[np.ndarray, dict]:
    """``volume``'s intensities windowed into float32 [0, 1], and a record of the window (see the module)."""
    if mode not in NORMALISATIONS:
        raise UserError(f"unknown normalisation {mode!r} (known: {', '.join(NORMALISATIONS)})")
    if mode == "auto":
        mode = "ct-brain" if volume.modality == "CT" else "mr"
    data = volume.data
    if mode == "mr":
        mask = head_mask(data)
        if not mask.any():
            raise UserError(f"{volume.path}: the volume is constant ({float(data.flat[0]):.4g}); nothing to fuse")
        lo, hi = (float(v) for v in np.percentile(data[mask], MR_PERCENTILES))
        record = {"kind": "mr", "percentiles": list(MR_PERCENTILES), "head_mask_fraction": HEAD_MASK_FRACTION,
                  "mask_voxels": int(mask.sum())}
        del mask
    else:
        level, width = CT_WINDOWS[mode]
        lo, hi = level - width / 2, level + width / 2
        record = {"kind": mode, "level": level, "width": width}
    if hi <= lo:
        raise UserError(f"{volume.path}: the intensity window is empty ({lo:.4g} to {hi:.4g}); nothing to fuse")
    out = data - np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    record["window"] = [lo, hi]
    return out, record


# --- slice-wise fusion ---------------------------------------------------------------------------------------

def display_slice(volume: np.ndarray, axis: int, k: int) -> np.ndarray:
    """Slice ``k`` along ``axis`` of a canonical (RAS+) volume, in radiological display orientation."""
    plane = volume[(slice(None),) * axis + (k,)]       # a view (np.take would copy the whole volume each time)
    return np.ascontiguousarray(plane[::-1, ::-1].T)   # rows: A or S first; columns: R (or A) first


def put_display_slice(volume: np.ndarray, axis: int, k: int, image: np.ndarray) -> None:
    """Inverse of ``display_slice``: write ``image`` into slice ``k`` of ``volume``."""
    index = [slice(None)] * 3
    index[axis] = k
    volume[tuple(index)] = image.T[::-1, ::-1]


def fuse_volumes(a: np.ndarray, b: np.ndarray, method: str, *, axis: int = 2, params: dict | None = None,
                 progress: bool = False) -> tuple[np.ndarray, int]:
    """Fuse two normalised volumes slice by slice along ``axis``; returns (fused float32, empty slices).

    A slice where either source is constant has nothing to fuse and gets the mean of the two.
    """
    import methods

    params = params or {}
    fused = np.empty(a.shape, dtype=np.float32)
    empty = 0
    indices = range(a.shape[axis])
    if progress:
        import sys

        from tqdm import tqdm
        indices = tqdm(indices, desc=f"fusing with {method}", unit="slice", file=sys.stderr)
    for k in indices:
        sa, sb = display_slice(a, axis, k), display_slice(b, axis, k)
        if sa.min() == sa.max() or sb.min() == sb.max():
            empty += 1
            out = 0.5 * (sa + sb)
        else:
            out = methods.fuse(sa, sb, method, **params)
        put_display_slice(fused, axis, k, out)
    return fused, empty


def output_kind(path: str | os.PathLike) -> str:
    """'nifti' for a .nii / .nii.gz path, 'dicom' for anything else (a folder to create)."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if Path(name).suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".gz"):
        raise UserError(f"{path}: a fused volume is written as NIfTI (.nii, .nii.gz) or as a DICOM series into "
                        f"a new folder (a path without a suffix)")
    return "dicom"


def fuse_volume_files(path_a, path_b, output, method: str, *, params: dict | None = None, axis: str = "axial",
                      resample: bool = False, norm_a: str = "auto", norm_b: str = "auto", force: bool = False,
                      progress: bool = True) -> Path:
    """Read two volumes, check (or resample) the grid, normalise, fuse slice-wise, write NIfTI or DICOM."""
    import methods

    output = Path(output)
    kind = output_kind(output)
    if kind == "nifti" and output.exists() and not force:
        raise UserError(f"{output}: already exists (use --force to overwrite)")
    if kind == "dicom" and output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UserError(f"{output}: already exists; a DICOM series is written into a new folder")
    if axis not in AXES:
        raise UserError(f"--axis {axis!r}: expected one of {', '.join(AXES)}")
    method_info = methods.get_method(method)
    unknown = sorted(set(params or {}) - set(method_info.params))
    if unknown:
        raise UserError(f"method {method!r} has no parameter {unknown[0]!r}")
    a, b = read_volume(path_a), read_volume(path_b)
    if kind == "dicom" and a.dicom_template is None:
        raise UserError(f"{output}: a DICOM series out needs a DICOM series as the first source; "
                        f"name a .nii.gz output instead")
    if resample and grid_difference(a, b):
        b = resample_to(b, a)
    check_same_grid(a, b)
    norm_a_data, record_a = normalise(a, norm_a)
    a.data = None                                     # keep one float32 copy per source
    norm_b_data, record_b = normalise(b, norm_b)
    b.data = None
    fused, empty = fuse_volumes(norm_a_data, norm_b_data, method, axis=AXES[axis], params=params, progress=progress)
    metadata = {"software": "fusionbench", "method": method, "params": params or {}, "axis": axis,
                "sources": [str(path_a), str(path_b)], "resampled": bool(resample),
                "normalisation": {"a": record_a, "b": record_b}, "empty_slices": empty,
                "empty_slice_rule": "mean of the two sources"}
    description = f"fusionbench {method} {axis}"
    if kind == "nifti":
        return write_nifti(output, fused, a, description=description, metadata=metadata, overwrite=force)
    return write_dicom_series(output, fused, a, description=f"fused {method}", metadata=metadata)


# --- datasets of volumes (``kind: volumes`` in datasets.yaml) --------------------------------------------------

BRATS_NAMES = (("t1ce", "t1c"), ("t2", "t2w"))      # BraTS 2018-2021 and BraTS 2023 file names
DEFAULT_SLICES = {"axis": "axial", "step": 4, "min_area_fraction": 0.5}


def case_volumes(case_dir: Path, names=BRATS_NAMES, labels=("A", "B")) -> tuple[Path, Path]:
    """The two volumes of a BraTS-style case: ``<case>_<name>.nii.gz`` or ``<case>-<name>.nii.gz`` (or .nii)."""
    case = case_dir.name
    found = []
    for options, label in zip(names, labels):
        hits = [case_dir / f"{case}{sep}{option}{ext}" for option in options for sep in "_-" for ext in NIFTI_SUFFIXES]
        hits = [h for h in hits if h.is_file()]
        if not hits:
            raise UserError(f"{case_dir}: case {case} has no {label} volume (expected {case}_{options[0]}.nii.gz "
                            f"or {case}-{options[-1]}.nii.gz)")
        found.append(hits[0])
    return found[0], found[1]


def _stat_key(path: str) -> tuple[str, int, int]:
    stat = os.stat(path)
    return path, stat.st_mtime_ns, stat.st_size


@lru_cache(maxsize=1)       # slices of one case are fused one after the other: keep that case
def _load_case(key_a, key_b, norms) -> tuple[np.ndarray, np.ndarray]:
    """Both volumes of a case on one grid, normalised."""
    a, b = read_volume(key_a[0]), read_volume(key_b[0])
    check_same_grid(a, b)
    return normalise(a, norms[0])[0], normalise(b, norms[1])[0]


@lru_cache(maxsize=None)
def _case_slices(key_a, key_b, norms, axis: int, step: int, min_area_fraction: float) -> tuple[list[int], str]:
    """Selected slice indices of a case, and what determines its slices (file hashes, code, options).

    Only source A is read (listing a dataset reads every case once per process; B is read when fused).
    """
    import hashlib

    areas = head_mask(read_volume(key_a[0]).data).sum(axis=tuple(i for i in range(3) if i != axis))
    keep = np.flatnonzero(areas >= min_area_fraction * areas.max()) if areas.max() > 0 else np.array([], int)
    digest = hashlib.sha1(Path(__file__).read_bytes())
    for key in (key_a, key_b):
        digest.update(Path(key[0]).read_bytes())
    return [int(k) for k in keep[::step]], f"volumes {digest.hexdigest()[:16]} norms={norms} axis={axis}"


def volume_dataset(name: str, spec: dict, folder: Path, fields: dict):
    """A ``kind: volumes`` dataset: one pair per selected slice of every case folder under ``folder``.

    ``files``: the file-name endings of the two sources (default ``[[t1ce, t1c], [t2, t2w]]``).
    ``slices``: ``axis`` (axial), ``step`` (4) and ``min_area_fraction`` (0.5): along ``axis``, the slices
    whose head-mask area in source A is at least that fraction of the case's largest, then every
    ``step``-th of them from the first. ``normalisation``: one mode per source (``auto``).
    ``split``: ``{scheme: all}`` or ``{scheme: casewise, part, test_fraction, seed}`` over case folders.
    A pair is named ``<case>_<a|c|s><slice index>``; its ``case`` is the case folder's name.
    """
    from bench.datasets import Dataset, Pair, casewise_split

    names = tuple(tuple(n) for n in spec.get("files", BRATS_NAMES))
    slices = {**DEFAULT_SLICES, **(spec.get("slices") or {})}
    if slices["axis"] not in AXES:
        raise UserError(f"dataset {name!r}: slices.axis {slices['axis']!r} is not one of {', '.join(AXES)}")
    axis, step, fraction = AXES[slices["axis"]], int(slices["step"]), float(slices["min_area_fraction"])
    norms = tuple(spec.get("normalisation", ("auto", "auto")))
    split = spec.get("split") or {"scheme": "all"}
    if split.get("scheme", "all") not in ("all", "casewise"):
        raise UserError(f"dataset {name!r}: split scheme {split.get('scheme')!r} (volumes: all or casewise)")

    def list_pairs():
        case_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not case_dirs:
            raise UserError(f"{folder}: no case folders (expected <case>/<case>_{names[0][0]}.nii.gz and "
                            f"<case>_{names[1][0]}.nii.gz)")
        cases = {d.name: case_volumes(d, names, fields["modalities"]) for d in case_dirs}
        keep = set(cases)
        if split.get("scheme") == "casewise":
            keep = casewise_split(cases, split["part"], float(split.get("test_fraction", 0.2)),
                                  int(split.get("seed", 0)), float(split.get("val_fraction", 0.0)), case=str)
        pairs = []
        for case in sorted(keep):
            key_a, key_b = (_stat_key(str(p)) for p in cases[case])
            indices, identity = _case_slices(key_a, key_b, norms, axis, step, fraction)
            pairs += [Pair(name, f"{case}_{slices['axis'][0]}{k:03d}",
                           partial(_load_slice, key_a, key_b, norms, axis, k), identity=f"{identity} slice={k}",
                           case=case) for k in indices]
        return pairs
    return Dataset(**fields, list_pairs=list_pairs, location=str(folder))


def _load_slice(key_a, key_b, norms, axis: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    na, nb = _load_case(key_a, key_b, norms)
    return display_slice(na, axis, k), display_slice(nb, axis, k)


def representative_slices(pairs: list) -> list:
    """One pair per case for figure grids: the middle one of its selected slices."""
    by_case: dict[str, list] = {}
    for pair in pairs:
        by_case.setdefault(pair.case, []).append(pair)
    return [slices[len(slices) // 2] for slices in by_case.values()]


def case_scores(results, metric_names: list[str]):
    """Per-case scores: the mean over a case's slices, per dataset, case and configuration (and n slices).

    Metrics are computed on 2-D slices only; none of their 3-D forms (3-D SSIM, volumetric MI) is used.
    """
    grouped = results.groupby(["dataset", "case", "config"], sort=False)
    table = grouped[metric_names + ["seconds"]].mean()
    table.insert(0, "slices", grouped.size())
    return table.reset_index()


def phantom_volumes(modality_a: str = "MR-T1-Gad", modality_b: str = "MR-T2", *, slices: int = 8, size: int = 64,
                    seed: int = 0, distinct: int | None = None, empty: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two co-registered test volumes ``(size, size, slices)`` on RAS+ axes, from the embedded phantom.

    Axial slice ``k`` is ``phantom_pair(..., index=k % distinct)`` (each index is its own anatomy, so the
    stack is a test object, not a smooth head) shown in display orientation, scaled to 0..1000 like raw MR;
    ``empty`` all-zero slices are added at each end (outside the head).
    """
    from bench.phantom import phantom_pair

    distinct = distinct or slices
    pairs = [phantom_pair(modality_a, modality_b, i, seed=seed, size=size) for i in range(min(distinct, slices))]
    shape = (size, size, slices + 2 * empty)
    a, b = np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)
    for k in range(slices):
        sa, sb = pairs[k % distinct]
        put_display_slice(a, 2, k + empty, sa * np.float32(1000))
        put_display_slice(b, 2, k + empty, sb * np.float32(1000))
    return a, b
