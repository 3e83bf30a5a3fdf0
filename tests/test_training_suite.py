"""A suite that trains: the runner trains (or resumes) its runs, sweeps their epochs, and reports the curves."""
import json
import re

import pandas as pd
import pytest
import yaml

from bench.datasets import Registry
from common.errors import UserError
from bench.runner import run_suite
from methods.densegan.train import checkpoint_paths

TINY = ["data.synthetic={pairs: 4, size: 24}", "data.patch_size=16", "model.stem_channels=4", "model.growth=4",
        "model.decoder_channels=[8, 4]", "discriminator.base_channels=4", "discriminator.layers=2",
        "train.batch_size=2", "train.max_steps_per_epoch=2", "train.log_every=1", "train.threads=1"]


def write_registry(tmp_path, run_dir, epochs=2, overrides=TINY):
    spec = {
        "datasets": {"tiny_phantom": {"description": "phantom, 2 small pairs", "kind": "phantom",
                                      "modalities": ["CT", "MR-T2"], "detail": "b", "pairs": 2, "size": 64,
                                      "seed": 0}},
        "suites": {"epochs": {
            "description": "epoch sweep of a tiny densegan run",
            "datasets": ["tiny_phantom"],
            "train": [{"method": "densegan", "profile": "cpu", "out": str(run_dir), "epochs": epochs,
                       "set": list(overrides)}],
            "methods": ["average", {"method": "densegan", "epochs": list(range(1, epochs + 1)),
                                    "weights": str(run_dir / "checkpoints" / "epoch_{epoch:04d}.safetensors")}],
            "metrics": ["EN", "Qabf"]}},
    }
    path = tmp_path / "datasets.yaml"
    path.write_text(yaml.safe_dump(spec))
    return Registry(path)


def test_suite_trains_sweeps_epochs_and_reports_loss_curves(tmp_path):
    run_dir = tmp_path / "run"
    registry = write_registry(tmp_path, run_dir)
    out = run_suite("epochs", out=tmp_path / "report", registry=registry, jobs=1)

    assert checkpoint_paths(run_dir, 2)[0].is_file()
    results = pd.read_csv(out / "results.csv")
    assert sorted(results["config"].unique()) == ["average", "densegan@1", "densegan@2"]
    assert results.groupby("config").size().tolist() == [2, 2, 2]
    # each epoch's cells are keyed by that checkpoint's content (a tiny 2-step model may fuse alike)
    versions = json.loads((out / "run.json").read_text())["code_versions"]
    assert versions["densegan@1"] != versions["densegan@2"]
    page = (out / "index.html").read_text()
    assert "id='epoch'" in page
    curve = re.search(r"src='(figures/loss_[^']+\.png)'", page)
    assert curve and (out / curve.group(1)).is_file()
    training = json.loads((out / "run.json").read_text())["training"]
    assert training[0]["epochs"] == 2 and training[0]["out"] == str(run_dir)

    # A resumed suite neither retrains nor recomputes: the checkpoint and the cells are reused as they are.
    stamp = checkpoint_paths(run_dir, 2)[0].stat().st_mtime_ns
    lines = (out / "cells.jsonl").read_text().count("\n")
    run_suite("epochs", out=out, registry=registry, jobs=1, resume=True)
    assert checkpoint_paths(run_dir, 2)[0].stat().st_mtime_ns == stamp
    assert (out / "cells.jsonl").read_text().count("\n") == lines


def test_suite_extends_a_shorter_run_and_refuses_a_different_config(tmp_path):
    run_dir = tmp_path / "run"
    run_suite("epochs", out=tmp_path / "r1", registry=write_registry(tmp_path, run_dir, epochs=1), jobs=1)
    assert not checkpoint_paths(run_dir, 2)[0].exists()
    run_suite("epochs", out=tmp_path / "r2", registry=write_registry(tmp_path, run_dir, epochs=2), jobs=1)
    assert checkpoint_paths(run_dir, 2)[0].is_file()          # trained on from epoch 1
    changed = TINY + ["loss.lambda_ssim=1.0"]
    with pytest.raises(UserError, match="different config.*loss.lambda_ssim"):
        run_suite("epochs", out=tmp_path / "r3", registry=write_registry(tmp_path, run_dir, 3, changed), jobs=1)


def test_train_entry_of_a_method_that_does_not_train(tmp_path):
    registry = write_registry(tmp_path, tmp_path / "run")
    registry.suites["epochs"]["train"] = [{"method": "dwt"}]
    with pytest.raises(UserError, match="not trainable"):
        run_suite("epochs", out=tmp_path / "report", registry=registry, jobs=1)


def test_a_finished_run_with_another_config_is_not_reused(tmp_path):
    run_dir = tmp_path / "run"
    run_suite("epochs", out=tmp_path / "r1", registry=write_registry(tmp_path, run_dir, epochs=1), jobs=1)
    changed = TINY + ["optim.lr_g=0.01"]
    with pytest.raises(UserError, match="different config.*optim.lr_g"):
        run_suite("epochs", out=tmp_path / "r2", registry=write_registry(tmp_path, run_dir, 1, changed), jobs=1)


@pytest.mark.parametrize("train, message", [
    ([{"method": "densegan", "epoch": 2}], "allowed keys"),
    ([{"profile": "cpu"}], "needs 'method'"),
    ({"method": "densegan"}, "must be a list"),
])
def test_malformed_train_entries_are_user_errors(tmp_path, train, message):
    registry = write_registry(tmp_path, tmp_path / "run")
    registry.suites["epochs"]["train"] = train
    with pytest.raises(UserError, match=message):
        run_suite("epochs", out=tmp_path / "report", registry=registry, jobs=1)
    assert not (tmp_path / "run").exists()


def test_resume_accepts_an_option_added_later_at_its_default_only(tmp_path):
    """A run started before an option existed (its config.yaml lacks the key) resumes when the option is at
    its densegan.yaml default, which keeps the old behaviour; any other value is a different experiment."""
    from methods.densegan.train import check_same_config, resolve_config

    config = resolve_config("densegan", profile="long")
    old = yaml.safe_load(yaml.safe_dump(config))
    del old["train"]["keep_generators"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    check_same_config(tmp_path, config)                                   # default False: same experiment
    config["train"]["keep_generators"] = True
    with pytest.raises(UserError, match="different config.*train.keep_generators"):
        check_same_config(tmp_path, config)
    config["train"]["keep_generators"] = False
    config["loss"]["lambda_ssim"] = 123.0
    with pytest.raises(UserError, match="different config.*loss.lambda_ssim"):
        check_same_config(tmp_path, config)


def test_selected_methods_train_only_the_runs_they_fuse_with(tmp_path):
    """``--methods average``: the suite's training run is not needed, so it is not trained; selecting the
    epoch sweep trains it."""
    run_dir = tmp_path / "run"
    registry = write_registry(tmp_path, run_dir, epochs=1)
    run_suite("epochs", out=tmp_path / "r1", registry=registry, jobs=1, methods=["average"])
    assert not run_dir.exists()
    sweep = {"method": "densegan", "epochs": [1], "weights": str(run_dir / "checkpoints" / "epoch_{epoch:04d}.safetensors")}
    run_suite("epochs", out=tmp_path / "r2", registry=registry, jobs=1, methods=["average", sweep])
    assert checkpoint_paths(run_dir, 1)[0].is_file()


def test_an_epoch_sweep_over_a_runs_kept_generators_shows_that_runs_curves(tmp_path):
    """A suite without a training entry sweeps the kept generators of a run trained elsewhere (a campaign
    run): the epoch section plots the sweep and shows that run's loss curve."""
    from methods.densegan.train import resolve_config, train

    run_dir = tmp_path / "campaign-run"
    train(resolve_config("densegan", profile="cpu", overrides=[*TINY, "train.epochs=2", "train.keep_generators=true"]),
          run_dir)
    registry = write_registry(tmp_path, run_dir)
    registry.suites["epochs"]["train"] = []
    registry.suites["epochs"]["methods"][1]["weights"] = str(run_dir / "generators" / "epoch_{epoch:04d}.safetensors")
    out = run_suite("epochs", out=tmp_path / "report", registry=registry, jobs=1)
    assert sorted(pd.read_csv(out / "results.csv")["config"].unique()) == ["average", "densegan@1", "densegan@2"]
    page = (out / "index.html").read_text()
    curve = re.search(r"src='(figures/loss_campaign-run\.png)'", page)
    assert curve and (out / curve.group(1)).read_bytes() == (run_dir / "loss_curve.png").read_bytes()
    assert "2 epochs, run folder" in page


def test_every_epoch_sweep_in_datasets_yaml_reads_files_in_the_repository_or_trains_them():
    """A suite's epoch sweep either reads generators that are in the repository (the campaign's kept ones)
    or names a training entry of the same suite that writes them: a fresh clone can run every suite."""
    from bench.sweeps import expand_methods
    from methods.densegan import resolve_weights

    registry = Registry()
    checked = 0
    for name, suite in registry.suites.items():
        outs = [str(entry.get("out")) for entry in suite.get("train") or []]
        for config in expand_methods(suite["methods"]):
            weights = config.kwargs.get("weights")
            if config.epoch is None or not weights or any(str(weights).startswith(o) for o in outs):
                continue
            assert resolve_weights(config.method, weights).is_file(), f"{name}: {config.label} reads {weights}"
            checked += 1
    assert checked >= 24            # mrgad_mrt2's and ct_mri's twelve campaign epochs
