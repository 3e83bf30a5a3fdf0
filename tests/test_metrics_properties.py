"""Properties of the metrics on synthetic images: identities, A/B symmetry, known values, monotonicity,
and the documented behaviour on bad or degenerate input."""
import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

import metrics
from common.errors import UserError
from metrics._filters import MetricWarning

# metrics without a reference column; their tests live here only
PROPERTY_ONLY = ("Qw", "Qe", "FMI_wavelet", "VIFF", "STC")  # STC's properties: tests/test_soft_tissue.py
# metrics defined only on a CT-MRI head (NaN with a warning on these synthetic images, by design)
HEAD_ONLY = ("STC",)

SIZE = 176  # MS_SSIM needs more than 160 pixels a side


def _smooth_image(seed, sigma=3.0):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.random((SIZE, SIZE)), sigma)
    x = (x - x.min()) / (x.max() - x.min())
    return np.floor(x * 255 + 0.5) / 255  # 8-bit grey levels, as read from a PNG


@pytest.fixture(scope="module")
def pair():
    return _smooth_image(1), _smooth_image(2)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        return fn(*args, **kw)


def _all(a, b, f, convention="default"):
    return _quiet(metrics.compute, a, b, f, convention=convention)


# F = A = B: metrics with a known perfect value
PERFECT = {"SSIM": 1.0, "MS_SSIM": 1.0, "Qw": 1.0, "Qe": 1.0, "CC": 1.0, "MSE": 0.0, "RMSE": 0.0,
           "CE": 0.0, "Qcv": 0.0, "Nabf": 0.0, "VIF": 2.0, "Qy": 1.0, "Qc": 1.0, "Qcb": 1.0, "NMI": 2.0,
           "FMI_pixel": 1.0, "FMI_dct": 1.0, "FMI_wavelet": 1.0, "VIFF": 1.0}


@pytest.mark.parametrize("name", sorted(PERFECT))
def test_identity_gives_the_perfect_value(pair, name):
    a, _ = pair
    assert math.isclose(_quiet(metrics.get_metric(name).fn, a, a, a), PERFECT[name], rel_tol=1e-6, abs_tol=1e-6)


def test_psnr_is_infinite_and_mi_twice_the_entropy_when_f_equals_both(pair):
    a, _ = pair
    values = _all(a, a, a)
    assert values["PSNR"] == math.inf
    assert math.isclose(values["MI"], 2 * values["EN"], rel_tol=1e-12)


SYMMETRIC = ("MI", "NMI", "NCIE", "CC", "SCD", "SSIM", "MS_SSIM", "Qabf", "Nabf", "VIF", "CE", "MSE", "RMSE",
             "PSNR", "Qcb", "Qcv", "Qw", "Qy", "Qp", "FMI_dct", "FMI_wavelet", "VIFF")  # not Qc: its clipping (mu<0 -> 0, mu>1 -> 1) is one-sided


@pytest.mark.parametrize("convention", metrics.CONVENTIONS)
def test_symmetric_in_the_sources(pair, convention):
    a, b = pair
    f = np.clip(0.6 * a + 0.4 * b, 0, 1)
    ab, ba = _all(a, b, f, convention), _all(b, a, f, convention)
    for name in SYMMETRIC:
        assert math.isclose(ab[name], ba[name], rel_tol=1e-9, abs_tol=1e-12), name


def test_known_values_on_two_level_image():
    f = np.zeros((SIZE, SIZE))
    f[:, SIZE // 2:] = 1.0
    assert math.isclose(metrics.compute(f, f, f, ["EN"])["EN"], 1.0)
    assert math.isclose(metrics.compute(f, f, f, ["SD"])["SD"], 127.5)
    # one vertical edge: each of the SIZE rows has one 255 step among SIZE-1 differences
    assert math.isclose(metrics.compute(f, f, f, ["SF"])["SF"], 255 / math.sqrt(SIZE - 1))


def test_conventions_relate_as_documented(pair):
    a, b = pair
    f = np.clip(0.5 * a + 0.5 * b, 0, 1)
    d, c, v = _all(a, b, f), _all(a, b, f, "cddfuse"), _all(a, b, f, "vifb")
    assert math.isclose(c["MI"], d["MI"] * math.log(2), rel_tol=1e-12)
    assert math.isclose(v["SSIM"], 2 * d["SSIM"], rel_tol=1e-12)
    assert math.isclose(v["SF"], d["SF"] * math.sqrt((SIZE - 1) / SIZE), rel_tol=1e-3)
    assert math.isclose(d["PSNR"], 10 * math.log10(255 ** 2 / d["MSE"]), rel_tol=1e-12)


NOISE_DOWN = ("SSIM", "MS_SSIM", "PSNR", "CC", "Qabf", "VIF", "Qw", "Qcb", "Qy", "Qc", "Qp",
              "FMI_pixel", "FMI_dct", "FMI_wavelet", "VIFF")
NOISE_UP = ("EN", "SF", "AG", "EI", "MSE", "RMSE", "Nabf", "Qcv")


def test_monotone_under_increasing_noise(pair):
    a, b = pair
    clean = 0.5 * a + 0.5 * b
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(clean.shape)
    runs = [_all(a, b, np.clip(clean + s * noise, 0, 1)) for s in (0.0, 0.02, 0.08)]
    for name in NOISE_DOWN:
        assert runs[0][name] > runs[1][name] > runs[2][name], (name, [r[name] for r in runs])
    for name in NOISE_UP:
        assert runs[0][name] < runs[1][name] < runs[2][name], (name, [r[name] for r in runs])


def test_blurring_f_loses_detail(pair):
    a, b = pair
    sharp = np.maximum(a, b)
    blurred = ndimage.gaussian_filter(sharp, 2.0)
    s, bl = _all(a, b, sharp), _all(a, b, blurred)
    for name in ("SF", "AG", "EI", "Qabf", "SSIM", "VIFF"):
        assert bl[name] < s[name], name


# ------------------------------------------------------------------------------------ bad input
def test_shape_mismatch_is_a_user_error(pair):
    a, b = pair
    with pytest.raises(UserError, match="shape"):
        metrics.compute(a, b, a[:-1])


def test_nan_input_is_a_user_error(pair):
    a, b = pair
    f = a.copy()
    f[3, 4] = np.nan
    with pytest.raises(UserError, match="NaN"):
        metrics.compute(a, b, f)


def test_constant_fused_image_has_documented_values(pair):
    a, b = pair
    f = np.full_like(a, 0.5)
    with pytest.warns(MetricWarning):
        values = metrics.compute(a, b, f)
    assert values["EN"] == 0 and values["SD"] == 0 and values["SF"] == 0 and values["AG"] == 0
    assert math.isnan(values["CC"])  # 0/0 correlation, warned
    finite = {k for k, v in values.items() if math.isfinite(v)}
    assert {"MI", "SSIM", "Qabf", "VIF", "PSNR", "Qcv", "Nabf"} <= finite


def _degenerate_triples(a, b):
    """Triples (A, B, F) with constant, black, binary, identical or half-black images."""
    grey, black = np.full_like(a, 0.5), np.zeros_like(a)
    left = np.arange(SIZE) < SIZE // 2
    return {
        "constant F": (a, b, grey), "constant A": (grey, b, 0.5 * (grey + b)), "constant A and F": (grey, b, grey),
        "all constant": (grey, grey, grey), "all black": (black, black, black), "black F": (a, b, black),
        "black A": (black, b, b), "F = A = B": (a, a, a),
        "binary": ((a > 0.5) * 1.0, (b > 0.5) * 1.0, (a + b > 1) * 1.0),
        "black halves": (np.where(left, 0.0, a), np.where(left[:, None], 0.0, b), np.where(left, 0.0, a)),
    }


@pytest.mark.parametrize("case", sorted(_degenerate_triples(np.zeros((1, 1)), np.zeros((1, 1)))))
def test_degenerate_input_gives_nan_only_with_a_metric_warning(pair, case):
    # every metric under every convention: no numpy RuntimeWarning escapes, and a NaN always comes
    # with the MetricWarning that names its documented cause (PSNR's +inf for F = A = B is documented)
    a, b, f = _degenerate_triples(*pair)[case]
    for name, metric in metrics.METRICS.items():
        for convention in metric.conventions:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = metrics.compute(a, b, f, [name], convention=convention)[name]
            leaked = [str(w.message) for w in caught if not issubclass(w.category, MetricWarning)]
            assert not leaked, (name, convention, leaked)
            assert not math.isnan(value) or caught, f"{name} ({convention}) is NaN on {case} without a warning"


@pytest.mark.parametrize("side", (2, 12, 100))
def test_images_too_small_for_a_window_give_nan_with_a_warning(side):
    a, b, f = (_smooth_image(seed)[:side, :side] for seed in (1, 2, 3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = metrics.compute(a, b, f)
    assert set(values) == set(metrics.METRICS)
    messages = " | ".join(str(w.message) for w in caught)
    too_small = [name for name, v in values.items() if math.isnan(v)]
    assert "MS_SSIM" in too_small and all(name in messages for name in too_small), messages
    assert math.isfinite(values["EN"]) and math.isfinite(values["Qabf"])


def test_one_pixel_wide_input_is_a_user_error():
    with pytest.raises(UserError, match="at least 2x2"):
        metrics.compute(np.zeros((1, 8)), np.zeros((1, 8)), np.zeros((1, 8)))


def test_yang_and_cvejic_nan_only_under_vifb_on_flat_backgrounds(pair):
    a, b = pair
    a, b = a.copy(), b.copy()
    a[:40, :40] = 0
    b[:40, :40] = 0  # a black corner in both sources, as in medical images
    f = 0.5 * (a + b)
    with pytest.warns(MetricWarning):
        vifb = metrics.compute(a, b, f, ["Qy", "Qc"], convention="vifb")
    assert math.isnan(vifb["Qy"]) and math.isnan(vifb["Qc"])
    default = metrics.compute(a, b, f, ["Qy", "Qc"])
    assert all(0 < v <= 1 for v in default.values())


def test_sixteen_bit_input_is_handled(pair):
    a, b = pair
    a16, b16 = (np.floor(x * 65535 + 0.5) / 65535 for x in (a, b))  # what read_image gives for 16-bit PNGs
    f16 = 0.5 * (a16 + b16)
    values = _all(a16.astype(np.float32), b16.astype(np.float32), f16.astype(np.float32))
    reference = _all(a, b, 0.5 * (a + b))
    assert all(math.isfinite(v) for k, v in values.items() if k not in HEAD_ONLY)
    for name in ("EN", "SD", "SSIM", "Qabf", "VIF", "MI"):
        assert math.isclose(values[name], reference[name], rel_tol=0.05), name


def test_headline_set_names_registered_metrics():
    from metrics.sets import HEADLINE
    assert HEADLINE == ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
    assert set(HEADLINE) <= set(metrics.METRICS)


def test_every_metric_documents_itself():
    for m in metrics.METRICS.values():
        doc = m.fn.__doc__ or ""
        # a formula/source with a year, and a direction statement
        assert len(doc) > 200 and any(ch.isdigit() for ch in doc), m.name
        assert ("better" in doc) or ("Lower" in doc) or ("Higher" in doc), m.name
        # and what constant / flat / black input gives (the issue asks for it per metric)
        assert any(w in doc.lower() for w in ("constant", "nan", "0/0", "flat", "black", "always defined")), m.name


def test_evaluate_folders(tmp_path, pair):
    from common.io import write_image
    from bench.metrics_folder import evaluate_folders
    a, b = pair
    for d in ("a", "b", "f"):
        (tmp_path / d).mkdir()
    for stem in ("x1", "x2"):
        write_image(tmp_path / "a" / f"{stem}.png", a)
        write_image(tmp_path / "b" / f"{stem}.png", b)
        write_image(tmp_path / "f" / f"{stem}.png", np.maximum(a, b))
    table = evaluate_folders(tmp_path / "a", tmp_path / "b", tmp_path / "f", ["EN", "SSIM"], "default", 1)
    assert list(table.index) == ["x1", "x2"] and list(table.columns) == ["EN", "SSIM"]
    assert table.loc["x1", "EN"] == table.loc["x2", "EN"] > 0
    write_image(tmp_path / "f" / "orphan.png", a)
    with pytest.raises(UserError, match="orphan"):
        evaluate_folders(tmp_path / "a", tmp_path / "b", tmp_path / "f", ["EN"], "default", 1)
    with pytest.raises(UserError, match="does not exist"):
        evaluate_folders(tmp_path / "nope", tmp_path / "b", tmp_path / "f", ["EN"], "default", 1)
    (tmp_path / "f" / "orphan.png").unlink()
    (tmp_path / "f" / "x2.png").unlink()
    write_image(tmp_path / "f" / "x2.png", np.maximum(a, b)[:100])       # x2: F of another size
    with pytest.raises(UserError, match="x2: metric inputs differ in shape"):
        evaluate_folders(tmp_path / "a", tmp_path / "b", tmp_path / "f", ["EN"], "default", 1)
    failures = []
    table = evaluate_folders(tmp_path / "a", tmp_path / "b", tmp_path / "f", ["EN"], "default", 2, failures)
    assert list(table.index) == ["x1"] and len(failures) == 1 and failures[0].startswith("x2: ")


def test_cli_folder_mode_writes_named_rows_and_keeps_them_when_an_image_fails(tmp_path, pair):
    from bench.cli import main
    from common.io import write_image
    a, b = pair
    for d in ("a", "b", "f"):
        (tmp_path / d).mkdir()
    for stem, f in (("p1", np.maximum(a, b)), ("p2", f_small := np.maximum(a, b)[:90])):
        write_image(tmp_path / "a" / f"{stem}.png", a)
        write_image(tmp_path / "b" / f"{stem}.png", b)
        write_image(tmp_path / "f" / f"{stem}.png", f)
    assert f_small.shape != a.shape
    out = tmp_path / "scores.csv"
    args = ["metrics", "--a", str(tmp_path / "a"), "--b", str(tmp_path / "b"), "--f", str(tmp_path / "f"),
            "--metrics", "EN,SD", "-o", str(out)]
    assert main(args) == 2                                # p2 failed, and the exit status says so
    lines = out.read_text().splitlines()
    assert lines[0] == "name,EN,SD" and len(lines) == 2 and lines[1].startswith("p1,")
    assert main(args) == 2 and out.read_text().splitlines() == lines   # not overwritten without --force


# ------------------------------------------------------------------------------------------- FMI
def test_fmi_window_vectors_are_column_major_3x3_windows():
    from metrics.fmi import window_vectors
    x = np.arange(20.0).reshape(4, 5)
    w = window_vectors(x)
    assert w.shape == (9, 2 * 3)  # one window per column
    assert np.array_equal(w[:, 0], x[:3, :3].T.ravel())  # MATLAB sub(:) order
    assert np.array_equal(w[:, 4], x[1:4, 1:4].T.ravel())


def test_fmi_sequential_sum_keeps_matlab_rounding_of_flat_windows():
    """Nine copies of fl(1/9) add up to 1 + 2^-52 left to right (MATLAB), exactly 1 pairwise (numpy)."""
    from metrics.fmi import sequential_sum
    column = np.full((9, 1), 1 / 9)
    assert sequential_sum(column)[0] == 1 + 2.0 ** -52
    assert sequential_sum(np.arange(12.0).reshape(4, 3)).tolist() == [18.0, 22.0, 26.0]


def test_fmi_orders_unrelated_partly_related_and_identical_sources():
    from metrics.fmi import feature_mutual_information
    rng = np.random.default_rng(3)
    x, noise = rng.random((40, 40)), rng.random((40, 40))
    assert feature_mutual_information(x, x, x) == 1.0  # every window identical
    unrelated = feature_mutual_information(noise, noise, x)
    half = feature_mutual_information(x, noise, x)   # one source identical (1), one unrelated
    assert 0 < unrelated < 0.2 and math.isclose(half, (1 + unrelated) / 2, rel_tol=0.05)


def _nelsen_nmi_all_cells(x_pdf, f_pdf):
    """Haghighat's fmi.m joint PDF built cell by cell over all l x l cells (one window per column)."""
    l = x_pdf.shape[0]
    nmi = []
    for x, f in zip(x_pdf.T, f_pdf.T):
        cx, cf = np.cumsum(x), np.cumsum(f)
        xt, ft = x - x.sum() / l, f - f.sum() / l
        num = (xt * ft).sum()
        c = 0.0 if num == 0 else num / np.sqrt((xt * xt).sum() * (ft * ft).sum())
        idx = np.arange(1, l + 1)
        sd = [np.sqrt(max((idx * idx) @ p - (idx @ p) ** 2, 0.0)) for p in (x, f)]
        if c < 0:   # lower Frechet bound L(i, j) = max(C_F(i) + C_X(j) - 1, 0)
            bound = np.maximum(cf[:, None] + cx[None] - 1.0, 0.0)
        else:       # upper bound U(i, j) = min(C_F(i), C_X(j))
            bound = np.minimum(cf[:, None], cx[None])
        cov = (bound - cf[:, None] * cx[None]).sum()
        w = 0.0 if (sd[0] == 0 or sd[1] == 0 or c == 0) else c * sd[0] * sd[1] / cov
        mass = np.diff(np.diff(np.pad(bound, ((1, 0), (1, 0))), axis=0), axis=1)
        joint = f[:, None] * x[None] + w * (mass - f[:, None] * x[None])
        plogp = lambda p: p * np.log(np.abs(p) + 1e-300)  # noqa: E731
        h_x, h_f, h_j = -plogp(x).sum(), -plogp(f).sum(), -plogp(joint).sum()
        mi = h_x + h_f - h_j
        nmi.append(0.0 if mi == 0 else 2 * mi / (h_x + h_f))
    return np.array(nmi)


def test_fmi_staircase_joint_entropy_equals_the_all_cells_sum():
    """The staircase walk + closed form gives the same window FMI as summing all 81 joint cells, on
    windows with ties, zero cells, flat windows and both signs of correlation."""
    from metrics.fmi import _fused_windows, _minmax_windows, _nelsen_nmi, _window_pdfs
    rng = np.random.default_rng(5)
    f_win = np.round(rng.random((9, 400)) * 4)     # few grey levels: many ties and repeated CDF values
    x_win = np.round(rng.random((9, 400)) * 4)
    x_win[:, :50] = 10 - f_win[:, :50]              # anti-correlated windows (lower bound)
    x_win[:, 50:60] = 2 * f_win[:, 50:60] + 1       # same PDF after normalisation (w ~ 1)
    x_win[:, 60:70] = 3.0                           # flat windows
    f_pdf, x_pdf = (_window_pdfs(_minmax_windows(w)) for w in (f_win, x_win))
    fast = _nelsen_nmi(x_pdf, _fused_windows(f_pdf))
    slow = _nelsen_nmi_all_cells(x_pdf, f_pdf)
    assert (fast[:50] < 0.9).any() and np.isfinite(fast).all()
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-13)


def test_fmi_is_invariant_to_affine_grey_changes_of_f(pair):
    """Every window is min-max normalised, so F -> 0.5 F + 0.2 changes no window PDF."""
    a, b = pair
    f = 0.5 * a + 0.5 * b
    pixel = metrics.get_metric("FMI_pixel").fn
    assert math.isclose(pixel(a, b, f), pixel(a, b, 0.5 * f + 0.2), rel_tol=1e-9)


def test_viff_and_vif_share_the_channel_model(pair):
    """VIF's ratio is rebuilt from the shared channel maps; VIFF scores each pixel by the source F
    preserves worse (smaller gain, as VIFF_Public.m), so F = A with an unrelated B scores below the
    average of the two."""
    from metrics.visual import VIF_NOISE_VAR, _information_maps, vif_channel_maps, vif_pixel_multiscale
    from metrics._filters import to255
    a, b = pair
    x, z = to255(a), to255(0.7 * a + 0.3 * b)
    maps = vif_channel_maps(x, z)
    assert len(maps) == 4 and maps[0][0].shape == (SIZE - 16, SIZE - 16)
    kept, own = zip(*(_information_maps(g, s1, sv, VIF_NOISE_VAR) for g, s1, sv in maps))
    assert math.isclose(sum(k.sum() for k in kept) / sum(o.sum() for o in own), vif_pixel_multiscale(maps),
                        rel_tol=1e-12)
    viff = metrics.get_metric("VIFF").fn
    assert 0 < viff(a, b, a) < viff(a, b, 0.5 * (a + b)) < viff(a, a, a) <= 1 + 1e-9


@pytest.mark.parametrize("convention", ["default", "cddfuse", "vifb"])
def test_suite_values_equal_metrics_computed_alone(pair, convention):
    """``compute`` shares intermediate maps between metrics (metrics._shared); every value must be
    exactly the one the metric gives on its own."""
    a, b = pair
    f = np.clip(0.6 * a + 0.4 * b + 0.02 * np.sin(np.arange(SIZE) / 3.0)[None, :], 0, 1)
    a, b, f = (x.astype(np.float32).astype(np.float64) for x in (a, b, f))  # what compute passes on
    together = _all(a, b, f, convention)
    for name, m in metrics.METRICS.items():
        alone = _quiet(m.fn, a, b, f, convention=convention if convention in m.conventions else "default")
        assert together[name] == alone or (math.isnan(together[name]) and math.isnan(alone)), name


def test_shared_maps_are_read_only_within_compute(pair):
    """A metric that modified a shared map in place would corrupt the next metric's input: refused."""
    from metrics._filters import to255
    from metrics._shared import shared_results
    a, _ = pair
    with shared_results():
        x = to255(a)
        assert to255(a) is x
        with pytest.raises(ValueError, match="read-only"):
            x += 1
    assert to255(a) is not to255(a)  # outside compute nothing is kept
