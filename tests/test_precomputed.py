"""Published outputs as methods (``kind: precomputed``) and deep peers left out of a suite for missing weights."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

import methods
import metrics
from bench.datasets import Registry
from common.errors import UserError
from common.io import read_image, write_image
from bench.runner import run_suite
from methods import pretrained

PHANTOM = {"description": "phantom, 3 small pairs", "kind": "phantom", "modalities": ["CT", "MR-T2"],
           "detail": "b", "pairs": 3, "size": 64, "seed": 0}


def write_registry(tmp_path, suite_methods, outputs=None, pattern="fused_{name}.png"):
    spec = {"datasets": {"tiny": PHANTOM},
            "suites": {"s": {"description": "tiny", "datasets": ["tiny"], "methods": suite_methods,
                             "metrics": ["EN", "SSIM"], "reference": suite_methods[0]}}}
    if outputs is not None:
        spec["methods"] = {"published": {"kind": "precomputed", "description": "someone's outputs",
                                         "citation": "A. Author, Their method, 2024",
                                         "folders": {"tiny": str(outputs)}, "pattern": pattern}}
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(spec))
    return Registry(path)


@pytest.fixture
def outputs(tmp_path):
    """A folder of 'published' fused images of the three phantom pairs (the max rule, written as 8-bit PNG)."""
    folder = tmp_path / "published"
    for pair in Registry(write_registry(tmp_path, ["max"]).path).dataset("tiny").pairs():
        a, b = pair.load()
        write_image(folder / f"fused_{pair.name}.png", methods.fuse(a, b, "max"))
    return folder


def test_a_precomputed_method_is_scored_and_reported_like_any_method(tmp_path, outputs):
    registry = write_registry(tmp_path, ["average", "published"], outputs)
    out = run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["config"].unique()) == ["average", "published"]
    for pair in registry.dataset("tiny").pairs():
        a, b = pair.load()
        expected = metrics.compute(a, b, read_image(outputs / f"fused_{pair.name}.png"), ["EN", "SSIM"])
        row = results[(results["config"] == "published") & (results["pair"] == pair.name)].iloc[0]
        assert row["EN"] == pytest.approx(expected["EN"], rel=1e-12)
        assert row["SSIM"] == pytest.approx(expected["SSIM"], rel=1e-12)
        assert np.isnan(row["seconds"])            # nothing ran, so no time
    page = (out / "index.html").read_text()
    assert "A. Author, Their method, 2024" in page and "<td>published</td><td>3</td>" in page
    assert "published" not in pd.read_csv(out / "tables" / "algorithm.csv")["config"].tolist()
    run = json.loads((out / "run.json").read_text())
    assert run["precomputed"]["published"]["folders"]["tiny"] == str(outputs)


def test_missing_and_extra_names_are_one_line_listing_them(tmp_path, outputs):
    (outputs / "fused_slice01.png").unlink()
    (outputs / "fused_slice01.png").parent.joinpath("fused_slice99.png").write_bytes(
        (outputs / "fused_slice00.png").read_bytes())
    registry = write_registry(tmp_path, ["average", "published"], outputs)
    with pytest.raises(UserError) as err:
        run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    message = str(err.value)
    assert "1 pair(s) without an output: slice01" in message
    assert "1 output(s) without a pair: slice99" in message and "\n" not in message
    assert not (tmp_path / "run").exists()         # refused before the run folder is made


def test_an_output_of_another_size_is_refused(tmp_path, outputs):
    write_image(outputs / "fused_slice02.png", np.zeros((32, 32), np.float32), overwrite=True)
    registry = write_registry(tmp_path, ["published"], outputs)
    with pytest.raises(UserError, match=r"fused_slice02.png: 32x32, but the sources of pair 'slice02' are 64x64"):
        run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)


def test_the_name_pattern_and_a_bad_pattern(tmp_path, outputs):
    registry = write_registry(tmp_path, ["published"], outputs, pattern="{name}.png")
    with pytest.raises(UserError, match="3 pair\\(s\\) without an output"):
        run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    with pytest.raises(UserError, match="must hold \\{name\\} once"):
        write_registry(tmp_path, ["published"], outputs, pattern="fused.png").precomputed()


def test_a_deep_peer_without_weights_is_left_out_and_the_report_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.CACHE_ENV, str(tmp_path / "empty-cache"))
    registry = write_registry(tmp_path, ["ifcnn", "average", {"method": "densefuse", "grid": {"strategy": ["l1"]}}])
    out = run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    assert pd.read_csv(out / "results.csv")["config"].unique().tolist() == ["average"]
    skipped = json.loads((out / "run.json").read_text())["skipped"]
    assert sorted(skipped) == ["densefuse[strategy=l1]", "ifcnn"]
    assert "python -m bench weights fetch ifcnn" in skipped["ifcnn"]
    page = (out / "index.html").read_text()
    assert "Skipped (2)" in page and "weights fetch densefuse" in page
    # the suite's reference (ifcnn) was left out: marks compare against the first method run instead
    assert "better/worse than <code>average</code>" in page
    # asked for by name, a method without weights is an error, not a silent skip
    with pytest.raises(UserError, match="weights fetch ifcnn"):
        run_suite("s", out=tmp_path / "run2", registry=registry, jobs=1, methods=["ifcnn"])
