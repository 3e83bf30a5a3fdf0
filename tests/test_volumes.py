"""Clinical volumes: NIfTI and DICOM series in and out, grids, normalisation, slice-wise fusion, bad input.

Every volume is made here from the embedded phantom (``bench.volumes.phantom_volumes``) inside tmp_path.
"""
import json

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from bench.cli import main
from common.errors import UserError
from bench.volumes import (DICOM_LEVELS, MR_PERCENTILES, display_slice, fuse_volume_files, grid_difference,
                           head_mask, normalise, phantom_volumes, read_volume)

SIZE, SLICES = 40, 5


@pytest.fixture(scope="module")
def phantom():
    """Canonical (RAS+) phantom volumes as integers 0..1000 (exact in int16 and in a DICOM rescale)."""
    a, b = phantom_volumes(slices=SLICES, size=SIZE, empty=1)
    return np.round(a), np.round(b)


def ras_affine(spacing=(0.9, 0.9, 2.0), origin=(-20.0, -25.0, 10.0)):
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    return affine


def save_nifti(path, data, affine, dtype=np.int16):
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=dtype), affine), path)
    return path


def rotation_z(degrees):
    t = np.deg2rad(degrees)
    r = np.eye(4)
    r[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    return r


def fuse_cli(*args):
    return main(["fuse", *map(str, args)])


# --- NIfTI ---------------------------------------------------------------------------------------------------

def test_flipped_nifti_reads_to_the_same_canonical_volume(tmp_path, phantom):
    a, _ = phantom
    ras = ras_affine()
    # the same voxels stored left-to-right and posterior-to-anterior reversed (an LPS-ordered file)
    flip = ras @ np.array([[-1, 0, 0, SIZE - 1], [0, -1, 0, SIZE - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    plain = read_volume(save_nifti(tmp_path / "ras.nii.gz", a, ras))
    flipped = read_volume(save_nifti(tmp_path / "lps.nii.gz", a[::-1, ::-1], flip))
    assert flipped.affine[0, 0] > 0 and flipped.affine[1, 1] > 0
    np.testing.assert_allclose(flipped.affine, plain.affine, atol=1e-6)
    np.testing.assert_array_equal(flipped.data, plain.data)
    np.testing.assert_array_equal(plain.data, a)
    np.testing.assert_allclose(plain.spacing, [0.9, 0.9, 2.0], rtol=1e-6)


def test_display_slice_is_radiological():
    vol = np.zeros((4, 5, 3), dtype=np.float32)
    vol[3, 4, 1] = 1.0           # most right (x), most anterior (y)
    img = display_slice(vol, 2, 1)
    assert img.shape == (5, 4) and img[0, 0] == 1.0   # anterior up, patient's right on the image's left
    vol[:] = 0
    vol[2, 4, 2] = 1.0           # most anterior, most superior
    img = display_slice(vol, 0, 2)
    assert img.shape == (3, 5) and img[0, 0] == 1.0   # sagittal: superior up, anterior on the left


@pytest.mark.parametrize("axis", [0, 1])
def test_sagittal_and_coronal_slices_fuse_the_same_voxels(phantom, axis):
    from bench.volumes import fuse_volumes

    a, b = (v / 1000.0 for v in phantom)
    fused, empty = fuse_volumes(a, b, "max", axis=axis)
    full = [k for k in range(a.shape[axis]) if np.ptp(np.take(a, k, axis)) > 0 and np.ptp(np.take(b, k, axis)) > 0]
    assert empty == a.shape[axis] - len(full)
    np.testing.assert_allclose(np.take(fused, full, axis), np.take(np.maximum(a, b), full, axis), atol=1e-6)


@pytest.mark.parametrize("layout", ["flipped", "oblique"])
def test_nifti_fuse_keeps_the_source_geometry_and_fuses_every_slice(tmp_path, phantom, layout):
    a, b = phantom
    if layout == "flipped":
        affine = ras_affine() @ np.array([[-1, 0, 0, SIZE - 1], [0, 1, 0, 0], [0, 0, -1, a.shape[2] - 1],
                                          [0, 0, 0, 1.0]])
        a, b = a[::-1, :, ::-1], b[::-1, :, ::-1]
    else:
        affine = rotation_z(20) @ ras_affine()
    pa, pb = save_nifti(tmp_path / "a.nii.gz", a, affine), save_nifti(tmp_path / "b.nii", b, affine)
    out = tmp_path / "f.nii.gz"
    assert fuse_cli(pa, pb, "-o", out, "--method", "max") == 0
    source, fused = nib.load(pa), nib.load(out)
    assert fused.shape == source.shape
    np.testing.assert_allclose(fused.affine, source.affine, atol=1e-5)
    np.testing.assert_allclose(fused.header.get_zooms(), source.header.get_zooms(), rtol=1e-6)
    assert fused.get_data_dtype() == np.float32
    assert fused.header["descrip"].tobytes().startswith(b"fusionbench max axial")
    meta = json.loads(fused.header.extensions[0].get_content())
    assert meta["method"] == "max" and meta["normalisation"]["a"]["percentiles"] == list(MR_PERCENTILES)
    assert meta["empty_slices"] == 2
    # voxel for voxel: max of the two windowed sources in every slice that has a head, mean in empty ones
    va, vb = read_volume(pa), read_volume(pb)
    na, nb = normalise(va, "mr")[0], normalise(vb, "mr")[0]
    expected = np.maximum(na, nb)
    expected[:, :, [0, -1]] = 0.5 * (na[:, :, [0, -1]] + nb[:, :, [0, -1]])
    np.testing.assert_allclose(read_volume(out).data, expected, atol=1e-6)


def test_mr_window_is_the_documented_percentiles_inside_the_head(phantom, tmp_path):
    a, _ = phantom
    vol = read_volume(save_nifti(tmp_path / "a.nii.gz", a, ras_affine()))
    out, record = normalise(vol, "mr")
    mask = head_mask(vol.data)
    assert 0.1 < mask.mean() < 0.9            # the head, not the air around it
    lo, hi = np.percentile(vol.data[mask], MR_PERCENTILES)
    assert record["window"] == pytest.approx([lo, hi])
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    inside = (vol.data > lo) & (vol.data < hi)
    np.testing.assert_allclose(out[inside], (vol.data[inside] - lo) / (hi - lo), rtol=1e-5)


def test_ct_window_preset(tmp_path):
    vol = read_volume(save_nifti(tmp_path / "ct.nii.gz", np.linspace(-1000, 1000, 8 * 8 * 4).reshape(8, 8, 4),
                                 ras_affine()))
    out, record = normalise(vol, "ct-brain")
    assert record["window"] == [0.0, 80.0]
    np.testing.assert_allclose(out, np.clip(vol.data / 80.0, 0, 1), atol=1e-6)


def test_resample_puts_b_on_a_grid(tmp_path, phantom):
    a, b = phantom
    shifted = ras_affine(origin=(-20.0 + 3 * 0.9, -25.0, 10.0))   # b starts 3 voxels further right
    pa = save_nifti(tmp_path / "a.nii.gz", a, ras_affine())
    pb = save_nifti(tmp_path / "b.nii.gz", b[3:], shifted)
    assert "shape" in grid_difference(read_volume(pa), read_volume(pb))
    out = tmp_path / "f.nii.gz"
    assert fuse_cli(pa, pb, "-o", out, "--method", "max", "--resample", "--norm-b", "ct-soft") == 0
    np.testing.assert_allclose(nib.load(out).affine, nib.load(pa).affine)
    meta = json.loads(nib.load(out).header.extensions[0].get_content())
    assert meta["resampled"] and meta["normalisation"]["b"]["window"] == [-160.0, 240.0]
    # where b exists, the fused value is max(a window, b window) of the same world point
    na = normalise(read_volume(pa), "mr")[0]
    nb = np.clip((b + 160.0) / 400.0, 0, 1)
    fused = read_volume(out).data
    np.testing.assert_allclose(fused[3:, :, 1:-1], np.maximum(na, nb)[3:, :, 1:-1], atol=1e-5)


# --- DICOM ---------------------------------------------------------------------------------------------------

def dicom_series(folder, volume, *, spacing=(0.9, 0.9, 2.0), origin=(20.0, 25.0, 10.0), slope=0.5,
                 intercept=-1024.0, series_uid=None, study_uid="1.2.826.0.1.3680043.8.498.1", modality="MR",
                 order=None):
    """Write a canonical (RAS+) ``volume`` as a standard axial DICOM series (LPS: row +x = L, column +y = P)
    of 16-bit stored values with RescaleSlope / Intercept, files in a scrambled order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    lps = volume[::-1, ::-1, :]              # DICOM voxel (column, row, slice), x and y reversed
    stored = np.round((lps - intercept) / slope).astype(np.uint16)
    order = order if order is not None else np.random.default_rng(0).permutation(volume.shape[2])
    for n, k in enumerate(order):
        ds = _base_dataset("1.2.840.10008.5.1.4.1.1.4", series_uid, study_uid, modality)
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + spacing[2] * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]
        ds.SliceThickness = spacing[2]
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        _set_pixels(ds, stored[:, :, k].T)
        ds.save_as(folder / f"file{n:03d}.dcm", enforce_file_format=True)
    return folder


def _base_dataset(sop_class, series_uid, study_uid, modality):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SeriesInstanceUID, ds.StudyInstanceUID = sop_class, series_uid, study_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality, ds.PatientName, ds.PatientID = modality, "Phantom^Test", "P0"
    return ds


def _set_pixels(ds, plane):
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = plane.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.ascontiguousarray(plane, dtype=np.uint16).tobytes()


def dicom_multiframe(path, volume, *, spacing=(0.9, 0.9, 2.0), origin=(20.0, 25.0, 10.0), slope=0.5,
                     intercept=-1024.0):
    """The same as ``dicom_series`` as one enhanced multi-frame file, frames stored in reverse order."""
    ds = _base_dataset("1.2.840.10008.5.1.4.1.1.4.1", generate_uid(), "1.2.826.0.1.3680043.8.498.1", "MR")
    lps = volume[::-1, ::-1, :]
    stored = np.round((lps - intercept) / slope).astype(np.uint16)
    order = list(range(volume.shape[2]))[::-1]
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing, measures.SliceThickness = [spacing[1], spacing[0]], spacing[2]
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = [orientation], [measures]
    ds.SharedFunctionalGroupsSequence = [shared]
    frames = []
    for k in order:
        frame, position, transform = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [origin[0], origin[1], origin[2] + spacing[2] * k]
        transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "US"
        frame.PlanePositionSequence, frame.PixelValueTransformationSequence = [position], [transform]
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = frames
    ds.NumberOfFrames = len(order)
    _set_pixels(ds, np.stack([stored[:, :, k].T for k in order]))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_series_sorted_by_position_with_rescale(tmp_path, phantom):
    a, _ = phantom
    vol = read_volume(dicom_series(tmp_path / "a", a))
    np.testing.assert_array_equal(vol.data, a)       # order, flips and rescale all undone
    # canonical voxel (0, 0, 0) is DICOM voxel (last column, last row, first slice), LPS -> RAS
    corner = [-(20.0 + 0.9 * (SIZE - 1)), -(25.0 + 0.9 * (SIZE - 1)), 10.0]
    np.testing.assert_allclose(vol.affine[:3, 3], corner, atol=1e-6)
    np.testing.assert_allclose(vol.spacing, [0.9, 0.9, 2.0], atol=1e-6)
    assert vol.modality == "MR"


def test_dicom_multiframe_reads_like_the_series(tmp_path, phantom):
    a, _ = phantom
    series = read_volume(dicom_series(tmp_path / "a", a))
    frames = read_volume(dicom_multiframe(tmp_path / "mf" / "a.dcm", a))
    np.testing.assert_array_equal(frames.data, series.data)
    np.testing.assert_allclose(frames.affine, series.affine, atol=1e-6)
    assert read_volume(tmp_path / "mf").data.shape == a.shape   # the folder holding it reads the same


def test_dicom_pair_fuses_to_nifti_and_to_a_dicom_series(tmp_path, phantom):
    a, b = phantom
    da, db = dicom_series(tmp_path / "a", a), dicom_series(tmp_path / "b", b, modality="MR")
    nii, series = tmp_path / "f.nii.gz", tmp_path / "fused_series"
    assert fuse_cli(da, db, "-o", nii, "--method", "average") == 0
    assert fuse_cli(da, db, "-o", series, "--method", "average") == 0
    source, as_nifti, as_dicom = read_volume(da), read_volume(nii), read_volume(series)
    for vol in (as_nifti, as_dicom):
        assert vol.shape == source.shape
        np.testing.assert_allclose(vol.affine, source.affine, atol=1e-5)
    na, nb = normalise(source, "mr")[0], normalise(read_volume(db), "mr")[0]
    np.testing.assert_allclose(as_nifti.data, 0.5 * (na + nb), atol=1e-6)
    np.testing.assert_allclose(as_dicom.data, np.floor(as_nifti.data * DICOM_LEVELS + 0.5), atol=1e-3)
    files = sorted(series.iterdir())
    assert len(files) == a.shape[2]
    first, src = pydicom.dcmread(files[0]), pydicom.dcmread(next(da.iterdir()))
    assert first.SeriesInstanceUID != src.SeriesInstanceUID and first.StudyInstanceUID == src.StudyInstanceUID
    assert list(first.ImageType)[:2] == ["DERIVED", "SECONDARY"] and first.PatientID == "P0"
    assert json.loads(first.DerivationDescription)["method"] == "average"


# --- bad input: one line, exit 2, nothing written ------------------------------------------------------------

def expect_error(capsys, args, *fragments, out=None):
    assert fuse_cli(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))
    return err


def test_four_d_volume(tmp_path, capsys, phantom):
    a, b = phantom
    p4 = save_nifti(tmp_path / "a.nii.gz", np.stack([a, a], axis=-1), ras_affine())
    pb = save_nifti(tmp_path / "b.nii.gz", b, ras_affine())
    out = tmp_path / "f.nii.gz"
    expect_error(capsys, [p4, pb, "-o", out], "4-D", out=out)
    # one volume in a 4-D file is accepted
    save_nifti(tmp_path / "a1.nii.gz", a[..., None], ras_affine())
    assert fuse_cli(tmp_path / "a1.nii.gz", pb, "-o", out, "--method", "average") == 0


def test_grids_that_differ(tmp_path, capsys, phantom):
    a, b = phantom
    pa = save_nifti(tmp_path / "a.nii.gz", a, ras_affine())
    out = tmp_path / "f.nii.gz"
    pb = save_nifti(tmp_path / "b1.nii.gz", b[:-1], ras_affine())
    expect_error(capsys, [pa, pb, "-o", out], "not on the same grid", "shape", "--resample", out=out)
    pb = save_nifti(tmp_path / "b2.nii.gz", b, ras_affine(spacing=(1.0, 0.9, 2.0)))
    expect_error(capsys, [pa, pb, "-o", out], "voxel size 0.9x0.9x2 vs 1x0.9x2 mm", out=out)
    pb = save_nifti(tmp_path / "b3.nii.gz", b, ras_affine(origin=(-19.0, -25.0, 10.0)))
    expect_error(capsys, [pa, pb, "-o", out], "placed differently", out=out)
    # within the tolerance (1 % of a voxel) is the same grid
    pb = save_nifti(tmp_path / "b4.nii.gz", b, ras_affine(origin=(-20.001, -25.0, 10.0)))
    assert fuse_cli(pa, pb, "-o", out, "--method", "average") == 0


def test_corrupt_header_and_nan_voxels(tmp_path, capsys, phantom):
    a, b = phantom
    pb = save_nifti(tmp_path / "b.nii.gz", b, ras_affine())
    out = tmp_path / "f.nii.gz"
    raw = bytearray(nib.Nifti1Image(a.astype(np.int16), ras_affine()).to_bytes())
    raw[344:348] = b"xxxx"                        # the magic string
    (tmp_path / "bad.nii").write_bytes(bytes(raw))
    expect_error(capsys, [tmp_path / "bad.nii", pb, "-o", out], "bad.nii: not a readable NIfTI file", out=out)
    (tmp_path / "trunc.nii.gz").write_bytes((tmp_path / "b.nii.gz").read_bytes()[:200])
    expect_error(capsys, [tmp_path / "trunc.nii.gz", pb, "-o", out], "not a readable NIfTI", out=out)
    nan = a.astype(np.float32)
    nan[3, 4, 2] = np.nan
    pn = save_nifti(tmp_path / "nan.nii.gz", nan, ras_affine(), dtype=np.float32)
    expect_error(capsys, [pn, pb, "-o", out], "1 voxel(s) are NaN or infinite (the first at voxel (3, 4, 2))",
                 out=out)


def test_dicom_folder_with_two_series_or_a_non_image(tmp_path, capsys, phantom):
    a, b = phantom
    db = dicom_series(tmp_path / "b", b)
    mixed = dicom_series(tmp_path / "mixed", a)
    other = dicom_series(tmp_path / "other", b, order=[0], series_uid="1.2.3.4")
    (other / "file000.dcm").rename(mixed / "other.dcm")
    out = tmp_path / "fused"
    expect_error(capsys, [mixed, db, "-o", out], "holds 2 DICOM series", "1 file(s) of 1.2.3.4", out=out)
    report = dicom_series(tmp_path / "report", a)
    sr = _base_dataset("1.2.840.10008.5.1.4.1.1.88.11", pydicom.dcmread(next(report.iterdir())).SeriesInstanceUID,
                       "1.2.826.0.1.3680043.8.498.1", "SR")
    sr.save_as(report / "zz_report.dcm", enforce_file_format=True)
    expect_error(capsys, [report, db, "-o", out], "zz_report.dcm: a DICOM Basic Text SR Storage without image data",
                 out=out)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not dicom")
    expect_error(capsys, [tmp_path / "notes", db, "-o", out], "readme.txt: not a DICOM file", out=out)


def test_outputs_are_never_overwritten(tmp_path, capsys, phantom):
    a, b = phantom
    da, db = dicom_series(tmp_path / "a", a), dicom_series(tmp_path / "b", b)
    out = tmp_path / "f.nii.gz"
    out.write_text("keep me")
    expect_error(capsys, [da, db, "-o", out], "already exists")
    assert out.read_text() == "keep me"
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "x.dcm").write_text("keep me")
    expect_error(capsys, [da, db, "-o", folder, "--force"], "already exists")
    assert [p.name for p in folder.iterdir()] == ["x.dcm"]
    nii = save_nifti(tmp_path / "a.nii.gz", a, ras_affine())
    expect_error(capsys, [nii, nii, "-o", tmp_path / "new_series"], "needs a DICOM series as the first source",
                 out=tmp_path / "new_series")
    expect_error(capsys, [nii, nii, "-o", tmp_path / "f.png"], "written as NIfTI (.nii, .nii.gz) or as a DICOM "
                 "series", out=tmp_path / "f.png")


def test_fuse_volume_files_rejects_unknown_parameters_before_reading(tmp_path):
    with pytest.raises(UserError, match="has no parameter 'levels_x'"):
        fuse_volume_files(tmp_path / "missing.nii.gz", tmp_path / "missing.nii.gz", tmp_path / "f.nii.gz", "dwt",
                          params={"levels_x": 2})


# --- BraTS-style datasets ------------------------------------------------------------------------------------

def brats_folder(root, phantom, cases=("BraTS20_001", "BraTS20_002", "BraTS-GLI-00003-000")):
    """Cases of phantom volumes in BraTS 2020 naming (_t1ce, _t2) and BraTS 2023 naming (-t1c, -t2w)."""
    a, b = phantom
    for n, case in enumerate(cases):
        names = ("-t1c", "-t2w") if case.startswith("BraTS-") else ("_t1ce", "_t2")
        (root / "brats" / case).mkdir(parents=True)
        for vol, suffix in zip((a, b), names):
            save_nifti(root / "brats" / case / f"{case}{suffix}.nii.gz", np.roll(vol, n, axis=0), ras_affine())
    return root


def test_brats_folder_becomes_slices_of_cases(tmp_path, phantom):
    from bench.datasets import Registry

    root = brats_folder(tmp_path, phantom)
    registry = Registry()
    assert registry.suite("mrgad_mrt2")["datasets"] == ["brats_mrgad_mrt2"]
    ds = registry.dataset("brats_mrgad_mrt2", root)
    assert ds.location == str(root / "brats")
    pairs = ds.pairs()
    # 5 head slices between 2 empty ones: the empty ones are below the area threshold, then every 4th: 1 and 5
    assert [p.name for p in pairs] == [f"{c}_a{k:03d}" for c in ("BraTS-GLI-00003-000", "BraTS20_001",
                                                                   "BraTS20_002") for k in (1, 5)]
    assert {p.case for p in pairs} == {"BraTS20_001", "BraTS20_002", "BraTS-GLI-00003-000"}
    a, b = pairs[-1].load()
    vol = read_volume(root / "brats" / "BraTS20_002" / "BraTS20_002_t1ce.nii.gz")
    np.testing.assert_array_equal(a, display_slice(normalise(vol, "mr")[0], 2, 5))
    assert a.shape == b.shape == (SIZE, SIZE) and a.dtype == np.float32
    assert len({p.fingerprint() for p in pairs}) == len(pairs)
    test = registry.dataset("brats_mrgad_mrt2_casewise", root).pairs()
    assert len({p.case for p in test}) == 1 and len(test) == 2     # ceil(0.2 x 3 cases) = 1 case


def test_without_brats_the_suite_falls_back_to_pairs_then_phantom(tmp_path, capsys):
    from bench.datasets import Registry

    ds = Registry().dataset("brats_mrgad_mrt2", tmp_path)
    assert ds.name == "phantom_mrgad_mrt2"
    err = capsys.readouterr().err
    assert "brats_mrgad_mrt2: no folder" in err and "mrgad_mrt2: no folder" in err


def test_case_missing_one_modality(tmp_path, phantom):
    from bench.datasets import Registry

    root = brats_folder(tmp_path, phantom)
    (root / "brats" / "BraTS20_002" / "BraTS20_002_t2.nii.gz").unlink()
    with pytest.raises(UserError, match=r"BraTS20_002: case BraTS20_002 has no MR-T2 volume \(expected "
                                        r"BraTS20_002_t2.nii.gz or BraTS20_002-t2w.nii.gz\)"):
        Registry().dataset("brats_mrgad_mrt2", root).pairs()


def test_run_scores_per_slice_and_per_case(tmp_path, phantom):
    import pandas as pd
    import yaml

    from bench.datasets import Registry
    from bench.runner import run_suite

    root = brats_folder(tmp_path / "data", phantom, cases=("c1", "c2"))
    spec = yaml.safe_load(open(Registry().path))
    spec["suites"] = {"vol": {"datasets": ["brats_mrgad_mrt2"], "methods": ["average", "max"],
                              "metrics": ["EN", "SSIM"], "reference": "average"}}
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(spec))
    out = run_suite("vol", out=tmp_path / "run", data_root=root, registry=Registry(tmp_path / "registry.yaml"))
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * 2 * 2 and set(results["case"]) == {"c1", "c2"}
    cases = pd.read_csv(out / "cases.csv")
    expected = results.groupby(["case", "config"])["SSIM"].mean()
    got = cases.set_index(["case", "config"])["SSIM"]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-12)
    assert (cases["slices"] == 2).all()
    assert "Scores per case" in (out / "index.html").read_text()


def test_dicom_series_with_a_gap_or_two_volumes(tmp_path, phantom):
    a, _ = phantom
    gap = dicom_series(tmp_path / "gap", a, order=[0, 1, 2, 4, 5, 6])          # slice 3 missing
    with pytest.raises(UserError, match=r"slices are unevenly spaced \(2 to 4 mm apart\); missing slices\?"):
        read_volume(gap)
    twice = dicom_series(tmp_path / "twice", a, order=[0, 1, 2])
    uid = pydicom.dcmread(next(twice.iterdir())).SeriesInstanceUID
    other = dicom_series(tmp_path / "t2", a, order=[1], series_uid=uid)      # a second echo of slice 1
    (other / "file000.dcm").rename(twice / "echo2.dcm")
    with pytest.raises(UserError, match="lie at the same position; one series holds several volumes"):
        read_volume(twice)


def test_auto_window_is_ct_for_a_ct_series(tmp_path, phantom):
    a, _ = phantom
    vol = read_volume(dicom_series(tmp_path / "ct", a - 500.0, modality="CT"))
    out, record = normalise(vol)
    assert vol.modality == "CT" and record["kind"] == "ct-brain" and record["window"] == [0.0, 80.0]
    np.testing.assert_allclose(out, np.clip((a - 500.0) / 80.0, 0, 1), atol=1e-6)
