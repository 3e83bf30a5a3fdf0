"""Equivariance analysis: the transforms, the gaps on methods whose equivariance is known, the report
section and its cache."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import gaussian_filter

import methods
from bench.datasets import Registry
from bench.equivariance import CACHE_FILE, TRANSFORMS, to_8bit, transform_gaps
from bench.runner import run_suite
from test_foundation import make_pair_folder


def sources(seed=0, shape=(40, 48)):
    rng = np.random.default_rng(seed)
    return [gaussian_filter(rng.random(shape), 2).astype(np.float32) for _ in range(2)]


def gaps(fn, metric_names=("EN", "SSIM")):
    a, b = sources()
    return {row["transform"]: row for row in transform_gaps(a, b, to_8bit(fn(a, b)), fn, list(metric_names))}


def test_transforms_are_the_stated_group_actions():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(TRANSFORMS["hflip"](x), x[:, ::-1])
    np.testing.assert_array_equal(TRANSFORMS["rot90"](x), np.rot90(x))
    np.testing.assert_array_equal(TRANSFORMS["shift"](x), np.roll(x, (5, 3), axis=(0, 1)))
    sub = TRANSFORMS["subpixel"](x)
    assert sub[1, 1] == pytest.approx(x[:2, :2].mean()) and sub.mean() == pytest.approx(x.mean())
    rgb = np.random.default_rng(0).random((6, 8, 3))
    np.testing.assert_array_equal(TRANSFORMS["shift"](rgb)[..., 1], TRANSFORMS["shift"](rgb[..., 1]))


def test_pixelwise_mean_is_equivariant_under_every_transform():
    rows = gaps(lambda a, b: (a + b) / 2)
    for name in ("hflip", "rot90", "shift"):
        assert rows[name]["psnr"] == np.inf and rows[name]["delta_EN"] == 0 and rows[name]["delta_SSIM"] == 0
    assert rows["subpixel"]["psnr"] > 55                    # only the 8-bit rounding differs (~59 dB)


def test_max_rule_commutes_with_permutations_but_not_with_interpolation():
    rows = gaps(np.maximum)
    assert all(rows[name]["psnr"] == np.inf for name in ("hflip", "rot90", "shift"))
    assert rows["subpixel"]["psnr"] < gaps(lambda a, b: (a + b) / 2)["subpixel"]["psnr"] - 3


def test_position_dependent_and_decimated_methods_show_gaps():
    half = lambda a, b: np.where(np.arange(a.shape[1]) < a.shape[1] // 2, a, b)  # noqa: E731
    rows = gaps(half)
    assert rows["hflip"]["psnr"] < 40 and rows["hflip"]["delta_SSIM"] != 0
    dwt = gaps(lambda a, b: methods.fuse(a, b, "dwt"))
    assert dwt["shift"]["psnr"] < 50                            # decimation: not shift-invariant


def toy_suite(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001", "1002", "1003"])
    spec = {"datasets": {"toy": {"kind": "folder", "root": "toy", "modalities": ["CT", "MRI"],
                                 "split": {"scheme": "all"}, "description": "toy pairs"}},
            "suites": {"toy": {"datasets": ["toy"], "methods": ["average", "max", {"method": "dwt", "grid": {"level": [1, 2]}}],
                               "metrics": ["EN", "SSIM"], "timing_repeats": 1}}}
    (tmp_path / "datasets.yaml").write_text(json.dumps(spec))
    return dict(out=tmp_path / "run", data_root=tmp_path / "data", registry=Registry(tmp_path / "datasets.yaml"))


def check_section(out):
    page = (out / "index.html").read_text()
    assert "id='equivariance'" in page and "figures/equivariance.png" in page
    table = pd.read_csv(out / "tables" / "equivariance.csv", dtype={"pair": str})
    # the compared methods only (no grid points), first pair, four transforms
    assert sorted(set(table["config"])) == ["average", "max"] and len(table) == 2 * 4
    assert set(table["pair"]) == {"1001"}
    average = table[(table["config"] == "average") & (table["transform"] != "subpixel")]
    assert np.isinf(average["psnr"]).all()


def test_report_section_is_written_and_reused_on_resume(tmp_path):
    kwargs = toy_suite(tmp_path)
    out = run_suite("toy", **kwargs)
    check_section(out)
    cached = (out / CACHE_FILE).read_text()
    run_suite("toy", resume=True, **kwargs)
    assert (out / CACHE_FILE).read_text() == cached               # nothing fused again


def test_a_suite_can_turn_the_section_off(tmp_path):
    kwargs = toy_suite(tmp_path)
    spec = json.loads((tmp_path / "datasets.yaml").read_text())
    spec["suites"]["toy"]["equivariance"] = False
    (tmp_path / "datasets.yaml").write_text(json.dumps(spec))
    out = run_suite("toy", **{**kwargs, "registry": Registry(tmp_path / "datasets.yaml")})
    assert "id='equivariance'" not in (out / "index.html").read_text() and not (out / CACHE_FILE).exists()


@pytest.mark.slow
def test_report_section_on_worker_processes(tmp_path):
    # the same rows through the worker pool (process start-up makes this slow on a busy machine)
    out = run_suite("toy", jobs=2, **toy_suite(tmp_path))
    check_section(out)
