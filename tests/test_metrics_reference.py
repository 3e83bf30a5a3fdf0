"""Our metrics against the reference vectors of ../shared/reference/metrics (README.md there).

THE mapping table below says which reference column each (metric, convention) reproduces. ``scale``
multiplies the reference value where the README documents an exact relation (e.g. our default SSIM is
the mean, the column the sum). Tolerances are relative (absolute ``ABS_FLOOR`` near zero), as tight as
the README says is achievable: 1e-6 against CDDFuse's float32 code, 1e-5 against pytorch-msssim, 1e-9
against Octave where our float64 arithmetic agrees to that.
"""
import math
import warnings

import numpy as np
import pandas as pd
import pytest

import metrics
from common.io import read_image
from metrics._filters import to255
from metrics.structural import piella_q

LN2 = math.log(2)
ABS_FLOOR = 1e-4

# (metric, convention, reference column, scale applied to the reference, relative tolerance)
REFERENCE_MAP = [
    ("EN", "default", "cddfuse.EN", 1, 1e-9),
    ("EN", "cddfuse", "cddfuse.EN", 1, 1e-9),
    ("EN", "vifb", "vifb.EN", 1, 1e-9),
    ("SD", "default", "vifb.SD", 1, 1e-9),
    ("SD", "cddfuse", "cddfuse.SD", 1, 1e-6),
    ("SD", "vifb", "vifb.SD", 1, 1e-9),
    ("SF", "default", "tang.SF", 1, 1e-9),
    ("SF", "cddfuse", "cddfuse.SF", 1, 1e-6),
    ("SF", "vifb", "vifb.SF", 1, 1e-9),
    ("AG", "default", "cddfuse.AG", 1, 1e-6),
    ("AG", "cddfuse", "cddfuse.AG", 1, 1e-6),
    ("AG", "vifb", "vifb.AG", 1, 1e-9),
    ("EI", "vifb", "vifb.EI", 1, 1e-9),
    ("CE", "vifb", "vifb.CE", 1, 1e-9),
    ("MI", "default", "cddfuse.MI", 1 / LN2, 1e-9),
    ("MI", "cddfuse", "cddfuse.MI", 1, 1e-9),
    ("MI", "vifb", "vifb.MI", 1, 1e-9),
    ("NMI", "default", "zhengliu.Q_MI", 1, 1e-9),
    ("NCIE", "default", "zhengliu.Q_NCIE", 1, 1e-9),
    ("MSE", "default", "tang.MSE", 255.0 ** 2, 1e-9),
    ("MSE", "cddfuse", "cddfuse.MSE", 1, 1e-6),
    ("RMSE", "vifb", "vifb.RMSE", 1, 1e-9),
    ("PSNR", "cddfuse", "cddfuse.PSNR", 1, 1e-6),
    ("PSNR", "vifb", "vifb.PSNR", 1, 1e-9),
    ("CC", "default", "tang.CC", 1, 1e-9),
    ("CC", "cddfuse", "cddfuse.CC", 1, 1e-6),
    ("SCD", "default", "tang.SCD", 1, 1e-9),
    ("SCD", "cddfuse", "cddfuse.SCD", 1, 1e-6),
    ("VIF", "default", "tang.VIF", 1, 1e-9),
    ("VIF", "cddfuse", "cddfuse.VIF", 1, 1e-6),
    ("Qabf", "default", "vifb.Qabf", 1, 1e-9),
    ("Qabf", "cddfuse", "cddfuse.Qabf", 1, 1e-6),
    ("Qabf", "vifb", "vifb.Qabf", 1, 1e-9),
    ("Nabf", "default", "tang.Nabf", 1, 1e-9),
    ("SSIM", "default", "vifb.SSIM", 0.5, 1e-9),
    ("SSIM", "cddfuse", "cddfuse.SSIM", 1, 1e-6),
    ("SSIM", "vifb", "vifb.SSIM", 1, 1e-9),
    ("SSIM", "vifb", "zhengliu.SSIM_wang_sum", 1, 1e-9),
    ("MS_SSIM", "default", "msssim.MS_SSIM", 0.5, 1e-5),
    ("Qcb", "vifb", "vifb.Qcb", 1, 1e-6),
    ("Qcv", "vifb", "vifb.Qcv", 1, 1e-9),
    ("Qcv", "default", "zhengliu.Q_CV", 1, 1e-9),
    ("Qy", "vifb", "zhengliu.Q_Y", 1, 0),   # NaN on every medical vector (0/0 weights), as the reference
    ("Qc", "vifb", "zhengliu.Q_C", 1, 0),   # idem
    ("Qp", "default", "zhengliu.Q_P", 1, 1e-6),
    ("FMI_pixel", "default", "tang.FMI_none", 1, 1e-6),
    ("FMI_dct", "default", "tang.FMI_dct", 1, 1e-6),
]

# Known, documented disagreements: (metric, convention, triple id) -> reason (strict xfail).
KNOWN_DIFFERENCES = {
    ("Qcb", "vifb", t): "Qcb differs by ~1e-2 on the PET-MRI triples: FFT rounding noise in the PET image's large "
                        "black area decides the local contrast there (see metrics.visual.chen_blum and "
                        "test_qcb_pet_difference_is_fft_rounding_noise)"
    for t in ("petmri_25015_avg", "petmri_25015_max", "petmri_25015_lap")
}


def _triple_ids():
    from conftest import REFERENCE  # tests/ is on sys.path (pytest rootdir-relative import)
    path = REFERENCE / "metrics" / "triples.csv"
    return list(pd.read_csv(path)["id"]) if path.is_file() else ["<no reference data>"]


TRIPLE_IDS = _triple_ids()


@pytest.fixture(scope="module")
def reference(metric_reference_dir):
    triples = pd.read_csv(metric_reference_dir / "triples.csv", index_col="id")
    values = pd.read_csv(metric_reference_dir / "vectors.csv", index_col="id")
    fmi_path = metric_reference_dir / "vectors_fmi.csv"
    if fmi_path.is_file():
        values = values.join(pd.read_csv(fmi_path, index_col="id"))
    images = {}

    def load(triple):
        if triple not in images:
            images[triple] = tuple(np.asarray(read_image(metric_reference_dir / triples.loc[triple, k]), np.float64)
                                   for k in ("A", "B", "F"))
        return images[triple]
    return values, load


def _close(ours, ref, rel):
    if math.isnan(ref):
        return math.isnan(ours)
    return abs(ours - ref) <= max(rel * abs(ref), ABS_FLOOR * rel / 1e-3 if rel else 0.0)


@pytest.mark.parametrize("triple", TRIPLE_IDS)
@pytest.mark.parametrize("name,convention,column,scale,rel", REFERENCE_MAP,
                         ids=[f"{m}-{c}-{col}" for m, c, col, _, _ in REFERENCE_MAP])
def test_matches_reference(reference, name, convention, column, scale, rel, triple, request):
    values, load = reference
    if name not in metrics.METRICS:
        pytest.skip(f"metric {name} not implemented")
    ref = values.loc[triple, column]
    if pd.isna(ref) and column.startswith("tang.FMI"):
        pytest.skip("Tang's FMI was only run on the four 'lap' triples")
    if (name, convention, triple) in KNOWN_DIFFERENCES:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_DIFFERENCES[(name, convention, triple)], strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = metrics.get_metric(name).fn(*load(triple), convention=convention)
    assert _close(ours, float(ref) * scale, rel), f"{name}[{convention}] {ours!r} vs {column} {ref * scale!r}"


@pytest.mark.parametrize("triple", TRIPLE_IDS)
def test_piella_building_block_matches_zhengliu_q_s(reference, triple):
    """Qw/Qe share their core with Piella's unweighted Q, which Zheng Liu reports as Q_S."""
    values, load = reference
    a, b, f = (to255(x) for x in load(triple))
    assert _close(piella_q(a, b, f, "vifb"), values.loc[triple, "zhengliu.Q_S"], 1e-9)


def test_every_registered_metric_has_a_reference_or_property_test():
    """Guard: a metric added later must be mapped here or covered in test_metrics_properties."""
    from test_metrics_properties import PROPERTY_ONLY
    mapped = {m for m, *_ in REFERENCE_MAP}
    assert set(metrics.METRICS) <= mapped | set(PROPERTY_ONLY)


QCB_TRIPLES = ("petmri_25015_avg", "ctmri_16009_avg", "spectmri_10018_avg")


@pytest.mark.parametrize("triple", QCB_TRIPLES)
def test_qcb_pet_difference_is_fft_rounding_noise(reference, triple):
    """The explanation of the PET-MRI Qcb xfail, checked: swapping only the FFT code (numpy's real-input
    transform vs scipy.fft on a complex copy) moves Qcb by > 1e-4 on the PET triple, whose black
    background leaves the CSF-filtered image at rounding-noise level, and by < 1e-6 elsewhere; on
    PET the reference is then only reproducible to the size of that noise effect."""
    from scipy import fft as scipy_fft

    from metrics._filters import stretch_levels
    from metrics.visual import chen_blum_from_levels
    values, load = reference
    levels = [stretch_levels(to255(x)) for x in load(triple)]
    ours = chen_blum_from_levels(*levels)
    other_fft = chen_blum_from_levels(*levels, fft2=lambda x: scipy_fft.fft2(x.astype(np.complex128)),
                                      ifft2=scipy_fft.ifft2)
    spread = abs(ours - other_fft) / ours
    ref = values.loc[triple, "vifb.Qcb"]
    if triple.startswith("petmri"):
        assert spread > 1e-4
        assert abs(ours - ref) / ref < 2e-2
    else:
        assert spread < 1e-6
        assert abs(ours - ref) / ref < 1e-6
