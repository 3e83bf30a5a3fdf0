"""The report's structure: every analysis present, every referenced file there, tables with the right rows."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from bench.analysis import holm, most_different_box, wilcoxon_vs_reference
from bench.datasets import Registry
from common.errors import UserError
from bench.runner import run_suite
from bench.sweeps import expand_methods
from test_foundation import make_pair_folder


@pytest.fixture
def swept_run(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001", "1002", "2001", "2002", "3001"])
    spec = {
        "datasets": {"toy": {"kind": "folder", "root": "toy", "modalities": ["CT", "MRI"],
                             "split": {"scheme": "all"}, "description": "toy pairs"}},
        "suites": {"toy": {"datasets": ["toy"], "reference": "average", "difference_maps": True,
                           "methods": ["average", "max", {"method": "dwt", "grid": {"level": [1, 2, 3]}}],
                           "metrics": ["EN", "SD", "SSIM"], "timing_repeats": 1}},
    }
    (tmp_path / "datasets.yaml").write_text(json.dumps(spec))
    return run_suite("toy", out=tmp_path / "run", data_root=tmp_path / "data",
                     registry=Registry(tmp_path / "datasets.yaml"), jobs=2)


def test_report_has_every_analysis_and_only_existing_files(swept_run):
    page = (swept_run / "index.html").read_text()
    for anchor in ("toy-objective", "toy-subjective", "toy-limitation", "parametric", "algorithm"):
        assert f"id='{anchor}'" in page, anchor
    assert "id='epoch'" not in page  # nothing was swept over epochs
    refs = re.findall(r"(?:src|href)=['\"]([^'\"#]+)['\"]", page)
    assert len(refs) >= 8 and all((swept_run / r).is_file() for r in refs)
    assert "http" not in " ".join(refs)  # opens offline


def test_report_tables_have_one_row_per_configuration(swept_run):
    labels = ["average", "max", "dwt[level=1]", "dwt[level=2]", "dwt[level=3]"]
    results = pd.read_csv(swept_run / "results.csv")
    assert len(results) == 5 * 5 and set(results["config"]) == set(labels)
    summary = pd.read_csv(swept_run / "summary.csv")
    assert summary["config"].tolist() == labels and (summary["n"] == 5).all()
    assert (summary["metric_seconds_mean"] > 0).all()    # the metrics' time, scored in the workers
    markdown = (swept_run / "tables" / "objective_toy.md").read_text().splitlines()
    assert [line.split("|")[1].strip() for line in markdown[2:]] == labels
    latex = (swept_run / "tables" / "objective_toy.tex").read_text()
    assert latex.count(r"\\") == 1 + len(labels) and r"\begin{tabular}" in latex
    algorithm = pd.read_csv(swept_run / "tables" / "algorithm.csv")
    assert algorithm["config"].tolist() == labels and (algorithm["median_ms"] > 0).all()


def test_sweep_expansion_and_labels():
    configs = expand_methods(["average", {"method": "dwt", "grid": {"level": [2, 3], "wavelet": ["db1", "db2"]}},
                              {"method": "densegan", "epochs": [1, 2], "weights": "runs/x/epoch_{epoch:03d}.st"}])
    labels = [c.label for c in configs]
    assert labels[:3] == ["average", "dwt[level=2,wavelet=db1]", "dwt[level=2,wavelet=db2]"]
    assert labels[-2:] == ["densegan@1", "densegan@2"] and configs[-1].kwargs == {"weights": "runs/x/epoch_002.st"}
    with pytest.raises(UserError, match="same method configuration twice"):
        expand_methods(["dwt", "dwt"])
    with pytest.raises(UserError, match="no 'weights' pattern"):
        expand_methods([{"method": "densegan", "epochs": [1]}])


def test_holm_adjustment_matches_the_definition():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": float("nan")})
    assert adjusted["a"] == pytest.approx(0.03) and adjusted["c"] == pytest.approx(0.06)
    assert adjusted["b"] == pytest.approx(0.06) and np.isnan(adjusted["d"])


def test_wilcoxon_marks_a_consistently_better_method():
    rng = np.random.default_rng(0)
    base = rng.random(12)
    scores = pd.DataFrame({"ref": base, "better": base + 0.1 + 0.01 * rng.random(12),
                           "same": base + 1e-3 * rng.standard_normal(12)})
    marks = wilcoxon_vs_reference(scores, "ref", higher_is_better=True)
    assert marks == {"ref": "ref", "better": "+", "same": ""}
    assert wilcoxon_vs_reference(scores, "ref", higher_is_better=False)["better"] == "−"


def test_inset_box_lands_where_images_differ():
    a = np.zeros((64, 64), np.float32)
    b = a.copy()
    b[40:50, 10:20] = 1.0
    r, c = most_different_box([a, b], 12)
    assert 38 <= r <= 40 and 8 <= c <= 10


def test_one_win_rule_and_one_paired_test():
    from bench.analysis import better, paired_wilcoxon
    assert better("SSIM", 0.8, 0.7) and not better("SSIM", 0.7, 0.8)
    assert better("MSE", 10.0, 12.0) and not better("MSE", 12.0, 10.0)       # lower is better
    assert not better("SSIM", 0.80, 0.79, margin=0.02)
    assert np.isnan(paired_wilcoxon([1.0, 2.0], [1.0, 2.0]))                   # no pair differs
    assert np.isnan(paired_wilcoxon([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], min_pairs=5))
    x = np.arange(12.0)
    assert paired_wilcoxon(x + 1.0, x) < 0.01
