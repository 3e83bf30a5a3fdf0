"""Dense-block GAN training: config resolution, resume equality, two-process DDP, epoch evaluation.

Everything runs on CPU with a tiny generator on tiny synthetic pairs (no dataset needed).
"""
import os
import socket

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from common.errors import UserError
from methods.densegan.train import CONFIG_DIR, _fit, checkpoint_paths, completed_epochs, resolve_config, train


def main(argv) -> int:
    """``python -m bench train`` with ``argv`` (the training command line)."""
    from bench.cli import main as bench_main
    return bench_main(["train", *argv])


def tiny_config(epochs=2, **train_over):
    cfg = resolve_config("densegan", profile="cpu", overrides=[
        "data.synthetic={pairs: 8, size: 24}", "data.patch_size=16", "data.rot90=true",
        "model.stem_channels=4", "model.growth=4", "model.decoder_channels=[8, 4]",
        "discriminator.base_channels=4", "discriminator.layers=2",
        "train.batch_size=2", "train.max_steps_per_epoch=null", "train.log_every=1", "train.threads=1",
        f"train.epochs={epochs}"])
    cfg["train"].update(train_over)
    return cfg


def test_profiles_inheritance_and_overrides():
    full = resolve_config("densegan", profile="cpu")
    paper = resolve_config("densegan", profile="paper")
    nodense = resolve_config("densegan-nodense", profile="cpu", overrides=["loss.lambda_ssim=2.5"])
    noloss = resolve_config("densegan-noloss-nodense", profile="cpu")
    assert full["model"]["encoder"] == "dense" and nodense["model"]["encoder"] == "plain"
    assert nodense["loss"]["lambda_ssim"] == 2.5 and nodense["optim"] == full["optim"]
    assert noloss["loss"]["lambda_detail"] == 0 and noloss["loss"]["lambda_ssim"] == 0
    assert noloss["model"]["encoder"] == "plain"
    assert paper["data"]["patch_size"] is None and paper["train"]["epochs"] > full["train"]["epochs"]
    with pytest.raises(UserError, match="no profile 'gpu'"):
        resolve_config("densegan", profile="gpu")


def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    straight = train(tiny_config(epochs=3), tmp_path / "straight")
    # run 2 epochs, then fake a kill in the middle of epoch 3 (a logged step past the checkpoint)
    train(tiny_config(epochs=2), tmp_path / "resumed")
    with open(tmp_path / "resumed" / "log_steps.csv", "a") as fh:
        fh.write("3,999,1,1,1,1,1,1,0\n")
    with pytest.raises(UserError, match="--resume"):
        train(tiny_config(epochs=3), tmp_path / "resumed")
    resumed = train(tiny_config(epochs=3), tmp_path / "resumed", resume=True)

    assert completed_epochs(tmp_path / "resumed") == [1, 2, 3]
    a, b = load_file(straight), load_file(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ca = load_file(checkpoint_paths(tmp_path / "straight", 3)[0])
    cb = load_file(checkpoint_paths(tmp_path / "resumed", 3)[0])
    assert all(torch.equal(ca[k], cb[k]) for k in ca)              # G and D, BN buffers included
    def losses(run):     # the logged losses per step, without the wall-clock column
        frame = pd.read_csv(tmp_path / run / "log_steps.csv")
        return frame.drop(columns="seconds")
    assert 999 not in losses("resumed").step.to_list()
    pd.testing.assert_frame_equal(losses("resumed"), losses("straight"))
    assert (tmp_path / "resumed" / "loss_curve.png").stat().st_size > 1000
    # and training moved the weights at all
    c1 = load_file(checkpoint_paths(tmp_path / "straight", 1)[0])
    assert not all(torch.equal(c1[k], ca[k]) for k in ca if k.startswith("generator."))


def test_command_line_entry_point(tmp_path, capsys):
    rc = main(["--method", "densegan-noloss", "--out", str(tmp_path / "run"), "--epochs", "1",
               "--set", "data.synthetic={pairs: 4, size: 24}", "--set", "data.patch_size=16",
               "--set", "model.decoder_channels=[4]", "--set", "train.batch_size=2", "--set", "train.threads=1"])
    assert rc == 0
    assert "generator weights" in capsys.readouterr().out
    resolved = (tmp_path / "run" / "config.yaml").read_text()
    assert "lambda_ssim: 0.0" in resolved and "method: densegan-noloss" in resolved
    assert main(["--method", "densegan", "--config", str(tmp_path / "none.yaml")]) == 2


def test_bench_train_command(tmp_path, capsys):
    from bench.cli import main as bench_main

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("inherit: " + str(CONFIG_DIR / "densegan.yaml") + "\n"
                   "data: {synthetic: {pairs: 4, size: 24}, patch_size: 16}\n"
                   "model: {stem_channels: 4, growth: 4, decoder_channels: [4]}\n"
                   "discriminator: {base_channels: 4, layers: 2}\n"
                   "profiles: {tiny: {train: {batch_size: 2, max_steps_per_epoch: 2, threads: 1, log_every: 1}}}\n")
    out = tmp_path / "run"
    rc = bench_main(["train", "--method", "densegan", "--config", str(cfg), "--profile", "tiny",
                     "--epochs", "1", "--out", str(out)])
    assert rc == 0 and f"generator weights: {out}" in capsys.readouterr().out
    assert completed_epochs(out) == [1]
    assert len(pd.read_csv(out / "log_steps.csv")) == 2
    assert {"config.yaml", "log_epochs.csv", "loss_curve.png", "generator.safetensors"} <= {
        p.name for p in out.iterdir()}
    # user mistakes: one error line, exit status 2
    assert bench_main(["train", "--method", "densegan", "--config", str(cfg), "--profile", "gpu"]) == 2
    assert bench_main(["train", "--method", "densegan", "--config", str(cfg), "--profile", "tiny",
                       "--epochs", "1", "--out", str(out)]) == 2         # checkpoints there, no --resume
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "no profile 'gpu'" in err[0] and "--resume" in err[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, config, out_dir, result_dir):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    _, generator, seen = _fit(config, out_dir, resume=False)
    torch.save({"state": generator.state_dict(), "seen": seen}, os.path.join(result_dir, f"rank{rank}.pt"))


def test_two_process_ddp_step(tmp_path):
    config = tiny_config(epochs=1, max_steps_per_epoch=2)
    port = _free_port()
    mp.spawn(_ddp_worker, args=(2, port, config, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])
    assert len(r0["seen"]) == len(r1["seen"]) == 4 and not set(r0["seen"]) & set(r1["seen"])
    # rank 0 alone wrote the run folder; the weights moved away from their (shared) initialisation
    assert completed_epochs(tmp_path / "run") == [1]
    torch.manual_seed(config["train"]["seed"])
    from methods.densegan.model import Generator, GeneratorConfig
    init = Generator(GeneratorConfig.from_dict(config["model"])).state_dict()
    assert not all(torch.equal(init[k], r0["state"][k]) for k in init)


def test_evaluate_checkpoints_and_plot(tmp_path):
    from bench.datasets import Dataset, Pair
    from methods.densegan.data import synthetic_pair
    from bench.gan_evaluate import evaluate_checkpoints, plot_metric_vs_epoch

    train(tiny_config(epochs=2), tmp_path / "run")
    ds = Dataset(name="synthetic", description="", modalities=("A", "B"), colour=None, detail="b",
                 list_pairs=lambda: [Pair("synthetic", f"p{i}", lambda i=i: synthetic_pair(i, 24)) for i in range(3)])
    frame = evaluate_checkpoints(tmp_path / "run", ds, ["EN", "SSIM"])
    assert list(frame.columns) == ["epoch", "dataset", "pair", "seconds", "metric_seconds", "EN", "SSIM"]
    assert len(frame) == 6 and sorted(frame.epoch.unique()) == [1, 2]
    # the scores are those of the epoch's own generator on that pair
    import metrics
    from methods.densegan import fuse_with_generator
    from methods.densegan.train import checkpoint_paths
    a, b = synthetic_pair(1, 24)
    expected = metrics.compute(a, b, fuse_with_generator(a, b, checkpoint_paths(tmp_path / "run", 2)[0]), ["EN", "SSIM"])
    row = frame[(frame.epoch == 2) & (frame.pair == "p1")].iloc[0]
    assert (row.EN, row.SSIM) == pytest.approx((expected["EN"], expected["SSIM"]), abs=1e-12)
    assert plot_metric_vs_epoch(frame, tmp_path / "m.png").stat().st_size > 1000
    with pytest.raises(UserError, match="no checkpoint for epoch"):
        evaluate_checkpoints(tmp_path / "run", ds, ["EN"], epochs=[7])


def test_method_specs_with_parameters():
    from bench.gan_evaluate import evaluate_methods, parse_method_spec

    assert parse_method_spec("dwt") == ("dwt", {})
    assert parse_method_spec("densegan[fusion_rule=max;device=cpu]") == ("densegan", {"fusion_rule": "max",
                                                                                      "device": "cpu"})
    with pytest.raises(UserError, match="not key=value"):
        parse_method_spec("densegan[max]")
    from bench.datasets import Dataset, Pair
    from methods.densegan.data import synthetic_pair
    ds = Dataset(name="synthetic", description="", modalities=("A", "B"), colour=None, detail="b",
                 list_pairs=lambda: [Pair("synthetic", "p0", lambda: synthetic_pair(0, 32))])
    frame = evaluate_methods(["average", "densegan[fusion_rule=mean]", "densegan"], [ds], ["SSIM"])
    assert frame.method.to_list() == ["average", "densegan[fusion_rule=mean]", "densegan"]
    assert frame.SSIM.iloc[1] != frame.SSIM.iloc[2]          # the parameter reached the method


def test_wins_counts_each_metric_in_its_direction():
    from bench.gan_evaluate import wins

    frame = pd.DataFrame([
        {"dataset": "d", "method": "ours", "pair": "p", "SSIM": 0.8, "Qabf": 0.5, "MSE": 0.01},
        {"dataset": "d", "method": "rival", "pair": "p", "SSIM": 0.7, "Qabf": 0.6, "MSE": 0.02}])
    row = wins(frame, "ours").iloc[0]
    assert (row["rival"], row["wins"], row["of"], row["loses on"]) == ("rival", 2, 3, "Qabf")   # MSE: lower wins


# ----------------------------------------------------------------------------------------- bad input (issue #16)

TINY = ["--set", "data.synthetic={pairs: 4, size: 24}", "--set", "data.patch_size=16", "--set",
        "model.decoder_channels=[4]", "--set", "train.batch_size=2", "--set", "train.threads=1",
        "--set", "train.max_steps_per_epoch=1"]


def _one_error_line(capsys, expected: str):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


@pytest.mark.parametrize("setting, expected", [
    ("train.epoch=5", "unknown key train.epoch"),
    ("foo.bar=1", "unknown section(s) foo"),
    ("train.batch_size=abc", "train.batch_size must be an integer"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("optim.lr_g=-1", "optim.lr_g must be > 0"),
    ("train.epochs.x=1", "train.epochs is a value, not a section"),
    ("loss.intensity_target=median", "loss.intensity_target must be one of mean, max, salience"),
    ("data.flips=maybe", "data.flips must be true or false"),
])
def test_bad_config_values_are_refused_before_anything_is_written(tmp_path, capsys, setting, expected):
    out = tmp_path / "run"
    assert main(["--out", str(out), "--epochs", "1", *TINY, "--set", setting]) == 2
    _one_error_line(capsys, expected)
    assert not out.exists()


@pytest.mark.parametrize("epochs", ["0", "-2"])
def test_zero_or_negative_epochs_are_refused(tmp_path, capsys, epochs):
    assert main(["--out", str(tmp_path / "run"), "--epochs", epochs, *TINY]) == 2
    _one_error_line(capsys, "train.epochs must be >= 1")
    assert not (tmp_path / "run").exists()


def test_out_folder_that_is_not_a_run_is_not_overwritten(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my own notes\n")
    (mine / "log_steps.csv").write_text("precious\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep\n")
    assert main(["--out", str(other), "--epochs", "1", *TINY]) == 2
    _one_error_line(capsys, "is not a training run")
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["--out", str(afile), "--epochs", "1", *TINY]) == 2
    _one_error_line(capsys, "is a file")
    assert afile.read_text() == "x"


def test_resume_needs_a_run_and_cannot_go_back_in_epochs(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--out", str(out), "--resume", "--epochs", "1", *TINY]) == 2
    _one_error_line(capsys, "nothing to resume")
    assert not out.exists()
    assert main(["--out", str(out), "--epochs", "2", *TINY]) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert main(["--out", str(out), "--resume", "--epochs", "1", *TINY]) == 2
    _one_error_line(capsys, "trained 2 epochs, more than the 1 asked for")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_data_root_must_exist(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "run"), "--data-root", str(tmp_path / "none"), *TINY]) == 2
    _one_error_line(capsys, "--data-root")


def test_config_file_errors_name_the_place(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  encoder: dense\n   growth: 4\n")
    assert main(["--config", str(bad), "--out", str(tmp_path / "run")]) == 2
    _one_error_line(capsys, "line 3, column")
    bad.write_text("- model\n- train\n")
    assert main(["--config", str(bad), "--out", str(tmp_path / "run")]) == 2
    _one_error_line(capsys, "must be a mapping")
