"""The CI guard on metric scores: the quick suite must match its committed baseline."""
import pandas as pd
import pytest

from bench.regression import BASELINE_DIR, check_scores, compare, suite_scores


def frame(rows):
    return pd.DataFrame(rows, columns=["dataset", "config", "metric", "value"])


def test_compare_flags_moves_in_both_directions():
    baseline = frame([("d", "m", "EN", 5.0), ("d", "m", "SSIM", 1.0), ("d", "m", "SD", 50.0)])
    current = frame([("d", "m", "EN", 4.9), ("d", "m", "SSIM", 1.2), ("d", "m", "SD", 50.000001)])
    moved = compare(current, baseline, rtol=1e-4, atol=1e-6)
    assert moved == ["d / m / EN: 5 -> 4.9 (-0.1, worse; higher is better)",
                     "d / m / SSIM: 1 -> 1.2 (+0.2, better; higher is better)"]


def test_compare_flags_missing_and_new_cells():
    moved = compare(frame([("d", "new", "EN", 1.0)]), frame([("d", "old", "EN", 1.0)]), rtol=0, atol=0)
    assert len(moved) == 2 and "not computed now" in moved[0] + moved[1]


@pytest.fixture(scope="module")
def guard_scores():
    """The phantom guard suite (no ../shared needed), run once for the tests below."""
    return suite_scores("guard", jobs=1)


def test_phantom_guard_matches_committed_baseline(guard_scores, capsys):
    assert check_scores("guard", guard_scores) == 0, capsys.readouterr().out


@pytest.mark.parametrize("delta", [+0.05, -0.05])
def test_phantom_guard_fails_on_an_injected_improvement_or_regression(guard_scores, tmp_path, capsys, delta):
    baseline = pd.read_csv(BASELINE_DIR / "guard.csv")
    target = (baseline["config"] == "dwt") & (baseline["metric"] == "SSIM")
    assert target.sum() >= 1
    baseline.loc[target, "value"] -= delta      # the code now scores delta higher (or lower) than "before"
    baseline.to_csv(tmp_path / "guard.csv", index=False)
    assert check_scores("guard", guard_scores, baseline_dir=tmp_path) == 1
    out = capsys.readouterr().out
    assert "SCORES MOVED in suite 'guard'" in out and "/ dwt / SSIM" in out
    assert ("better" if delta > 0 else "worse") in out


@pytest.fixture(scope="module")
def quick_scores(harvard_dir):
    """The quick suite run once (what ``python -m bench regress --suite quick`` runs) for both tests below."""
    return suite_scores("quick", data_root=harvard_dir.parent, jobs=2)  # two jobs: workers in a torch-used session


def test_quick_suite_matches_committed_baseline(quick_scores, capsys):
    assert check_scores("quick", quick_scores) == 0, capsys.readouterr().out


def test_injected_regression_fails_with_a_readable_diff(quick_scores, tmp_path, capsys):
    baseline = pd.read_csv(BASELINE_DIR / "quick.csv")
    target = (baseline["config"] == "dwt") & (baseline["metric"] == "SSIM") & (baseline["dataset"] == "harvard_ct_mri")
    assert target.sum() == 1
    baseline.loc[target, "value"] += 0.05  # pretend dwt used to be better
    baseline.to_csv(tmp_path / "quick.csv", index=False)
    assert check_scores("quick", quick_scores, baseline_dir=tmp_path) == 1
    out = capsys.readouterr().out
    assert "SCORES MOVED in suite 'quick'" in out and "harvard_ct_mri / dwt / SSIM" in out and "worse" in out
