"""The training recipe of the dense-block GAN (issue #15): separate discriminator passes, DCGAN init,
loss shares, intensity targets, EMA and schedule, the validation split, best-checkpoint selection, campaigns.

Everything but the Harvard split check runs on tiny synthetic pairs on CPU.
"""
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import safe_open

from bench.datasets import Registry, case_of, casewise_split
from common.errors import UserError
from methods.densegan import train as train_module
from methods.densegan.discriminators import build_discriminator
from methods.densegan.losses import generator_loss, intensity_loss, local_intensity_target, weighted_shares
from methods.densegan.train import (CONFIG_DIR, completed_epochs, ema_decay_at, learning_rate_factor, resolve_config,
                                    train, update_ema)
from tests.test_densegan_train import tiny_config as train_tiny_config


def tiny_config(epochs=2, **train_over):
    """test_densegan_train's tiny run, two steps an epoch."""
    return train_tiny_config(epochs, **{"max_steps_per_epoch": 2, **train_over})


# ----------------------------------------------------------------------------------------- discriminator

def test_discriminator_sees_real_and_fake_in_separate_batches(tmp_path, monkeypatch):
    """Every D forward pass gets a batch of only real or only fake images, never the two concatenated."""
    calls = []
    original = build_discriminator

    def recording(section):
        d = original(section)
        d.register_forward_pre_hook(lambda _m, args: calls.append(args[0].detach().clone()))
        return d

    monkeypatch.setattr(train_module, "build_discriminator", recording)
    batches = []
    real_fit_step = train_module.discriminator_step

    def spy(run, a, b, detail, fused, autocast):
        batches.append((detail.clone(), fused.detach().clone()))
        return real_fit_step(run, a, b, detail, fused, autocast)

    monkeypatch.setattr(train_module, "discriminator_step", spy)
    train(tiny_config(epochs=1, max_steps_per_epoch=1), tmp_path / "run")
    detail, fused = batches[0]
    # D step: real pass, fake pass; G step: one pass on the fake batch
    assert len(calls) == 3 and all(c.shape[0] == detail.shape[0] for c in calls)
    assert torch.equal(calls[0], detail) and torch.allclose(calls[1], fused) and torch.allclose(calls[2], fused)


def test_dcgan_initialisation():
    d = build_discriminator({"base_channels": 32, "layers": 4, "init": "dcgan"})
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    weights = torch.cat([c.weight.detach().flatten() for c in convs])
    assert abs(float(weights.std()) - 0.02) < 0.002 and abs(float(weights.mean())) < 0.002
    bn = torch.cat([m.weight.detach() for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(float(bn.mean()) - 1.0) < 0.01 and 0.01 < float(bn.std()) < 0.03
    default = build_discriminator({"base_channels": 32, "layers": 4})
    first = next(m for m in default.modules() if isinstance(m, torch.nn.Conv2d))
    assert float(first.weight.detach().std()) > 0.1          # PyTorch's default: U(+-1/sqrt(fan_in)), fan_in 16
    with pytest.raises(UserError, match="init must be one of"):
        build_discriminator({"init": "xavier"})


# ----------------------------------------------------------------------------------------- losses

def test_weighted_shares_by_hand():
    shares = weighted_shares({"adv": 0.5, "ssim": 0.25, "int": 0.1}, {"lambda_adv": 2.0, "lambda_ssim": 4.0,
                                                                       "lambda_int": 10.0})
    assert shares == pytest.approx({"adv": 1 / 3, "ssim": 1 / 3, "int": 1 / 3})


def test_loss_shares_are_logged_every_step(tmp_path):
    out = tmp_path / "run"
    train(tiny_config(epochs=1), out)
    steps = pd.read_csv(out / "log_steps.csv")
    share_cols = [c for c in steps if c.startswith("share_")]
    assert set(share_cols) == {"share_adv", "share_detail", "share_ssim", "share_int"}
    np.testing.assert_allclose(steps[share_cols].sum(axis=1), 1.0, rtol=1e-9)
    cfg = tiny_config()["loss"]
    row = steps.iloc[0]
    assert row["share_adv"] == pytest.approx(cfg["lambda_adv"] * row["adv"] / row["loss_g"], rel=1e-5)


def test_intensity_targets_on_hand_made_sources():
    a = torch.zeros(1, 1, 32, 32)
    b = torch.zeros(1, 1, 32, 32)
    a[..., :16] = 0.8           # A bright on the left
    b[..., 16:] = 0.6           # B bright on the right
    fused = torch.zeros_like(a)
    assert float(intensity_loss(fused, a, b, "mean")) == pytest.approx(0.5 * 0.4 + 0.5 * 0.3)
    assert float(intensity_loss(fused, a, b, "max")) == pytest.approx(0.5 * 0.8 + 0.5 * 0.6)
    target = local_intensity_target(a, b)
    # away from the boundary the salience target is the bright source itself, not the mean
    assert torch.allclose(target[..., :10], a[..., :10], atol=1e-3)
    assert torch.allclose(target[..., 22:], b[..., 22:], atol=1e-3)
    assert float(intensity_loss(target, a, b, "salience")) == 0.0
    with pytest.raises(UserError, match="intensity_target must be one of mean, max, salience"):
        intensity_loss(fused, a, b, "median")


def test_salience_target_is_a_config_choice():
    cfg = tiny_config()["loss"]
    x = torch.rand(2, 1, 24, 24)
    y = torch.rand(2, 1, 24, 24)
    f = torch.rand(2, 1, 24, 24)
    terms = {t: generator_loss(f, x, y, y, torch.zeros(2), {**cfg, "intensity_target": t})[1]["int"]
             for t in ("mean", "max", "salience")}
    assert len({round(v, 6) for v in terms.values()}) == 3


def test_patches_per_pair_draws_distinct_patches_of_each_pair():
    from methods.densegan.data import FusionPairs
    data = FusionPairs({"synthetic": {"pairs": 3, "size": 32}, "patch_size": 8, "patches_per_pair": 4}, seed=0)
    assert len(data) == 12
    full = data.sources(1)
    patches = [data[i][0][0].numpy() for i in (1, 4, 7, 10)]           # the four draws of pair 1
    assert len({p.tobytes() for p in patches}) == 4
    for p in patches:       # each is a (possibly flipped) window of pair 1's source A
        windows = np.lib.stride_tricks.sliding_window_view(full[0], (8, 8)).reshape(-1, 8, 8)
        assert any(np.array_equal(w, p) or np.array_equal(w[:, ::-1], p) or np.array_equal(w[::-1], p)
                   or np.array_equal(w[::-1, ::-1], p) for w in windows)
    with pytest.raises(UserError, match="patches_per_pair"):
        FusionPairs({"synthetic": {"pairs": 3, "size": 32}, "patches_per_pair": 0})


# ----------------------------------------------------------------------------------------- EMA, schedule

def test_ema_update_and_warm_up():
    from methods.densegan.model import Generator, GeneratorConfig
    cfg = GeneratorConfig(stem_channels=2, growth=2, dense_layers=1, decoder_channels=(2,))
    g, ema = Generator(cfg), Generator(cfg)
    before = [p.clone() for p in ema.parameters()]
    update_ema(ema, g, 0.75)
    for e, b0, p in zip(ema.parameters(), before, g.parameters()):
        assert torch.allclose(e, 0.75 * b0 + 0.25 * p)
    assert ema_decay_at(0.999, 0) == pytest.approx(0.1) and ema_decay_at(0.999, 10 ** 6) == 0.999


def test_cosine_schedule_with_warm_up():
    oc = {"schedule": "cosine", "warmup_steps": 10, "lr_min_factor": 0.1}
    assert learning_rate_factor(oc, 0, 110) == pytest.approx(0.1)
    assert learning_rate_factor(oc, 10, 110) == pytest.approx(1.0)
    assert learning_rate_factor(oc, 60, 110) == pytest.approx(0.55)
    assert learning_rate_factor(oc, 110, 110) == pytest.approx(0.1)
    assert learning_rate_factor({"schedule": "constant"}, 50, 110) == 1.0
    with pytest.raises(UserError, match="schedule must be"):
        learning_rate_factor({"schedule": "step"}, 0, 10)


def test_ema_generator_is_what_the_run_ships(tmp_path):
    out = tmp_path / "run"
    final = train(tiny_config(epochs=1, ema_decay=0.5), out)
    shipped = {k: f.get_tensor(k) for f in [safe_open(final, "pt")] for k in f.keys()}
    with safe_open(out / "checkpoints" / "epoch_0001.safetensors", "pt") as f:
        ema = {k[len("ema."):]: f.get_tensor(k) for k in f.keys() if k.startswith("ema.")}
        raw = {k[len("generator."):]: f.get_tensor(k) for k in f.keys() if k.startswith("generator.")}
    assert ema and all(torch.equal(shipped[k], ema[k]) for k in ema)
    assert not all(torch.equal(raw[k], ema[k]) for k in ema)


# ----------------------------------------------------------------------------------------- validation

def test_casewise_validation_part_is_disjoint_and_leaves_test_unchanged():
    stems = [f"{case}{s:03d}" for case in range(10, 30) for s in range(4)]
    parts = {p: casewise_split(stems, p, 0.2, 0, val_fraction=0.1) for p in ("train", "val", "test")}
    cases = {p: {case_of(s) for s in v} for p, v in parts.items()}
    assert set().union(*parts.values()) == set(stems)
    assert not (cases["train"] & cases["val"] or cases["train"] & cases["test"] or cases["val"] & cases["test"])
    assert len(cases["val"]) == 2 and len(cases["test"]) == 4
    assert parts["test"] == casewise_split(stems, "test", 0.2, 0)          # carved out of the train pool
    assert parts["train"] | parts["val"] == casewise_split(stems, "train", 0.2, 0)
    with pytest.raises(UserError, match="cannot give"):
        casewise_split(["1001", "2001"], "val", 0.2, 0, val_fraction=0.1)


def test_harvard_train_val_test_parts_share_no_case(harvard_dir):
    registry = Registry()
    for task in ("ct_mri", "pet_mri", "spect_mri"):
        cases = {part: {case_of(p.name) for p in registry.dataset(name, harvard_dir.parent, announce=False).pairs()}
                 for part, name in (("train", f"harvard_{task}_casewise_train"), ("val", f"harvard_{task}_val"),
                                    ("test", f"harvard_{task}_casewise"))}
        assert all(cases.values())
        assert not (cases["train"] & cases["val"] or cases["train"] & cases["test"] or cases["val"] & cases["test"])


def test_best_checkpoint_is_the_best_validation_epoch(tmp_path, monkeypatch):
    scores = iter([0.30, 0.50, 0.40])
    monkeypatch.setattr(train_module, "validation_pairs", lambda cfg, datasets=None: ["a pair"])

    def scripted(generator, pairs):
        s = next(scores)
        return {"Qabf": s, "VIF": s, "SSIM": s, "MI": s, "val_score": s}

    monkeypatch.setattr(train_module, "validation_scores", scripted)
    out = tmp_path / "run"
    train(tiny_config(epochs=3), out)
    val = pd.read_csv(out / "log_val.csv")
    assert val.epoch.tolist() == [1, 2, 3] and val.val_score.tolist() == [0.30, 0.50, 0.40]
    with safe_open(out / "best.safetensors", "pt") as f:
        meta = f.metadata()
        best = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["epoch"] == "2" and meta["select_by"] == "val_score"
    with safe_open(out / "checkpoints" / "epoch_0002.safetensors", "pt") as f:
        assert all(torch.equal(best[k], f.get_tensor("generator." + k)) for k in best)
    assert (out / "val_curve.png").stat().st_size > 1000


def test_kept_epoch_generators_are_each_epochs_generator_and_serve_an_epoch_sweep(tmp_path):
    """``train.keep_generators``: every epoch's generator in shipped form, equal to that epoch's checkpoint
    (kept here too, to compare), and usable as ``weights=`` in an epoch sweep."""
    import methods
    from bench.sweeps import expand_methods
    from methods.densegan.train import epoch_generator_path

    out = tmp_path / "run"
    train(tiny_config(epochs=2, keep_generators=True), out)
    for epoch in (1, 2):
        with safe_open(epoch_generator_path(out, epoch), "pt") as kept, \
                safe_open(out / "checkpoints" / f"epoch_{epoch:04d}.safetensors", "pt") as checkpoint:
            assert kept.metadata()["epoch"] == str(epoch)
            assert all(torch.equal(kept.get_tensor(k), checkpoint.get_tensor("generator." + k)) for k in kept.keys())
    with safe_open(epoch_generator_path(out, 1), "pt") as first, safe_open(epoch_generator_path(out, 2), "pt") as last:
        assert not all(torch.equal(first.get_tensor(k), last.get_tensor(k)) for k in first.keys())
    rng = np.random.default_rng(0)
    a, b = rng.random((24, 24), dtype=np.float32), rng.random((24, 24), dtype=np.float32)
    configs = expand_methods([{"method": "densegan", "epochs": [1, 2],
                               "weights": str(out / "generators" / "epoch_{epoch:04d}.safetensors")}])
    assert [c.label for c in configs] == ["densegan@1", "densegan@2"]
    for epoch, config in zip((1, 2), configs):
        from_checkpoint = methods.fuse(a, b, "densegan", weights=str(out / "checkpoints" / f"epoch_{epoch:04d}.safetensors"))
        assert np.array_equal(methods.fuse(a, b, config.method, **config.kwargs), from_checkpoint)
    train(tiny_config(epochs=1), tmp_path / "default")
    assert not (tmp_path / "default" / "generators").exists()                         # off by default


def test_validation_scores_rank_a_real_generator_above_a_black_one():
    from methods.densegan.data import synthetic_pair
    from methods.densegan.model import Generator, GeneratorConfig
    pairs = [("p", *synthetic_pair(i, 48)) for i in range(2)]
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(stem_channels=4, growth=4, decoder_channels=(4,), fusion_rule="max"))
    black = Generator(GeneratorConfig(stem_channels=4, growth=4, decoder_channels=(4,)))
    for p in black.parameters():
        torch.nn.init.zeros_(p)
    good, bad = train_module.validation_scores(g, pairs), train_module.validation_scores(black, pairs)
    assert set(good) == {"Qabf", "VIF", "SSIM", "MI", "val_score"}
    assert good["val_score"] == pytest.approx(0.5 * (good["Qabf"] + good["VIF"]))
    assert bad["val_score"] < good["val_score"]


# ----------------------------------------------------------------------------------------- campaign

def test_campaign_trains_skips_finished_and_resumes(tmp_path):
    from bench.campaign import read_campaign, run_campaign

    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("inherit: " + str(CONFIG_DIR / "densegan.yaml") + "\n"
                   "data: {synthetic: {pairs: 4, size: 24}, patch_size: 16}\n"
                   "model: {stem_channels: 4, growth: 4, decoder_channels: [4]}\n"
                   "discriminator: {base_channels: 4, layers: 2}\n"
                   "profiles: {tiny: {train: {epochs: 2, batch_size: 2, max_steps_per_epoch: 1, threads: 1, "
                   "log_every: 1}}}\n")
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(f"out: {tmp_path / 'out'}\nprofile: tiny\n"
                        f"runs:\n  - {{method: densegan, seeds: [0, 1], config: {cfg}}}\n")
    out, runs = read_campaign(campaign)
    assert [r.name for r in runs] == ["densegan-s0", "densegan-s1"]

    rows = run_campaign(campaign, jobs=2, poll_seconds=0.2)
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert [completed_epochs(out / r) for r in ("densegan-s0", "densegan-s1")] == [[1, 2], [1, 2]]
    seeds = [pd.read_csv(out / r / "log_steps.csv").loss_g.iloc[0] for r in ("densegan-s0", "densegan-s1")]
    assert seeds[0] != seeds[1]                                      # the seed reached the run
    table = pd.read_csv(out / "campaign.csv")
    assert table.samples.tolist() == [4, 4] and (table.epochs_done == 2).all()

    # interrupt seed 1 after its first epoch: the rerun resumes it and leaves seed 0 alone
    stamp = (out / "densegan-s0" / "generator.safetensors").stat().st_mtime_ns
    for p in (out / "densegan-s1" / "checkpoints").glob("epoch_0002.*"):
        p.unlink()
    (out / "densegan-s1" / "generator.safetensors").unlink()
    rows = run_campaign(campaign, jobs=1, poll_seconds=0.2)
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert (out / "densegan-s0" / "generator.safetensors").stat().st_mtime_ns == stamp
    commands = [line for line in (out / "logs" / "densegan-s1.log").read_text().splitlines()
                if line.startswith("# ")]
    assert len(commands) == 2 and "--resume" not in commands[0] and commands[1].endswith("--resume")

    # a campaign folder kept in git has no checkpoints of its finished runs: they stay finished, not retrained
    import shutil
    shutil.rmtree(out / "densegan-s0" / "checkpoints")
    rows = run_campaign(campaign, jobs=1, poll_seconds=0.2)
    assert [r["status"] for r in rows] == ["finished", "finished"] and rows[0]["epochs_done"] == 2
    assert (out / "densegan-s0" / "generator.safetensors").stat().st_mtime_ns == stamp


def test_campaign_file_errors(tmp_path):
    from bench.campaign import read_campaign

    bad = tmp_path / "c.yaml"
    bad.write_text("out: x\nruns:\n  - {method: densegan, seed: [0]}\n")
    with pytest.raises(UserError, match="unknown key"):
        read_campaign(bad)
    bad.write_text("out: x\nruns:\n  - {method: densegan}\n  - {method: densegan, seeds: [0]}\n")
    with pytest.raises(UserError, match="listed twice"):
        read_campaign(bad)
    good = tmp_path / "named.yaml"
    good.write_text("out: x\nruns:\n  - {method: densegan}\n"
                    "  - {name: densegan-intmax, method: densegan, set: [loss.intensity_target=max]}\n")
    _, runs = read_campaign(good)
    assert [r.name for r in runs] == ["densegan-s0", "densegan-intmax-s0"]
    assert runs[1].method == "densegan" and "loss.intensity_target=max" in runs[1].command(False)
    with pytest.raises(UserError, match="not found"):
        read_campaign(tmp_path / "none.yaml")


# ----------------------------------------------------------------------------------------- targets table

def test_target_table_counts_wins_beyond_the_seed_spread():
    from bench.gan_targets import HEADLINE, seed_table, targets

    rows = []

    def add(method, value, **over):
        rows.append({"dataset": "d", "method": method, "pair": "p", **{m: value for m in HEADLINE}, **over})

    for seed, jitter in enumerate((-0.01, 0.0, 0.01)):
        add(f"densegan-s{seed}", 0.60 + jitter)
        # the ablation is 0.05 worse on six metrics (beyond the +-0.01 spread) and 0.005 worse on two (within)
        add(f"densegan-nodense-s{seed}", 0.55 + jitter, EN=0.595 + jitter, SD=0.595 + jitter)
    add("densegan", 0.61)
    add("average", 0.50, VIF=0.70)                  # average wins VIF
    add("max", 0.50)
    add("densegan-plus", 0.62, MI=0.1)              # loses MI to densegan: 7 of 8
    add("csmca", 0.50, Qabf=0.9)
    table = {(r["target"][0], r["rival"]): r for r in targets(pd.DataFrame(rows))}
    assert table[("1", "average")]["won"] == 1 and not table[("1", "average")]["pass"]
    assert table[("1", "max")]["pass"]
    ablation = table[("2", "densegan-nodense")]
    assert ablation["won"] == 6 and ablation["pass"] and "EN" not in ablation["detail"]
    assert table[("3", "densegan")]["won"] == 7 and table[("3", "densegan")]["pass"]
    assert table[("3", "csmca")]["detail"] == "VIF" and not table[("3", "csmca")]["pass"]
    # the seed table: population sd over three seeds; a one-seed configuration shows no spread at all
    add("densegan-plus-s0", 0.62)
    spread = seed_table(pd.DataFrame(rows)).set_index("configuration")
    assert spread.loc["densegan", "Qabf"] == "0.6000 ± 0.0082" and spread.loc["densegan", "seeds"] == 3
    assert spread.loc["densegan-plus", "Qabf"] == "0.6200" and spread.loc["densegan-plus", "seeds"] == 1


# ----------------------------------------------------------------------------------------- equivariance loss

def test_equivariance_loss_is_zero_for_a_pixelwise_rule_and_not_for_a_position_dependent_one():
    from methods.densegan.losses_plus import draw_transform, equivariance_loss
    a, b = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16)
    pixelwise = torch.maximum                                 # commutes with every flip, rotation and roll
    positional = lambda x, y: 0.5 * (x + y) + ramp            # noqa: E731  (depends on the column)
    gen = torch.Generator().manual_seed(0)
    kinds = set()
    for _ in range(20):
        kind, t = draw_transform(["flip", "rot90", "shift"], gen)
        kinds.add(kind)
        assert float(equivariance_loss(pixelwise, a, b, pixelwise(a, b), t)) == 0.0
    assert kinds == {"flip", "rot90", "shift"}
    _, hflip = "flip", (lambda x: x.flip(-1))
    assert float(equivariance_loss(positional, a, b, positional(a, b), hflip)) == pytest.approx(
        float((ramp.flip(-1) - ramp).abs().mean()), rel=1e-6)
    with pytest.raises(UserError, match="unknown shear"):
        draw_transform(["shear"])


def test_equivariance_term_is_trained_and_logged(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(epochs=1)
    cfg["model"]["output_activation"] = "sigmoid"      # a clamped untrained generator is all black: T(0) = 0
    cfg["loss"].update(lambda_equivariance=2.0, equivariance_transforms=["flip", "rot90", "shift"])
    train(cfg, out)
    steps = pd.read_csv(out / "log_steps.csv")
    assert "equivariance" in steps and (steps.equivariance > 0).all() and (steps.share_equivariance > 0).all()
    np.testing.assert_allclose(steps.filter(like="share_").sum(axis=1), 1.0, rtol=1e-9)
    assert resolve_config("densegan-equivariant", profile="long")["loss"]["lambda_equivariance"] == 5.0


# ----------------------------------------------------------------------------------------- perceptual loss

def test_perceptual_loss_on_hand_made_inputs():
    from methods.densegan.model import DenseEncoder
    from methods.densegan.perceptual import EncoderFeatures, perceptual_loss
    torch.manual_seed(0)
    features = EncoderFeatures(DenseEncoder(4, 4, 2), ["stem", "dense2"])
    a, b = torch.rand(2, 1, 24, 24), torch.rand(2, 1, 24, 24)
    assert float(perceptual_loss(features, a, a, a)) == 0.0                 # F = A = B
    fused = torch.rand(2, 1, 24, 24, requires_grad=True)
    loss = perceptual_loss(features, fused, a, b)
    loss.backward()
    assert float(loss.detach()) > 0 and fused.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in features.parameters())     # frozen
    # by hand for one layer: mean |phi(F) - max(phi(A), phi(B))|
    stem = EncoderFeatures(features.encoder, ["stem"])
    phi = lambda x: stem(x)[0]                                             # noqa: E731
    expected = (phi(fused) - torch.maximum(phi(a), phi(b))).abs().mean()
    assert float(perceptual_loss(stem, fused, a, b).detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    with pytest.raises(UserError, match="unknown dense9"):
        EncoderFeatures(DenseEncoder(4, 4, 2), ["dense9"])


def test_perceptual_term_is_trained_and_logged(tmp_path):
    from methods.densegan.checkpoint import save_generator
    from methods.densegan.model import Generator, GeneratorConfig
    torch.manual_seed(1)
    ae = save_generator(Generator(GeneratorConfig(stem_channels=4, growth=4, decoder_channels=(4,),
                                                  fusion_rule="mean")), tmp_path / "ae.safetensors")
    cfg = tiny_config(epochs=1)
    cfg["model"]["output_activation"] = "sigmoid"
    cfg["loss"].update(lambda_perceptual=1.0, perceptual_layers=["dense1"], perceptual_weights=str(ae))
    train(cfg, tmp_path / "run")
    steps = pd.read_csv(tmp_path / "run" / "log_steps.csv")
    assert (steps.perceptual > 0).all() and (steps.share_perceptual > 0).all()
    cfg["loss"]["perceptual_weights"] = str(tmp_path / "none.safetensors")
    with pytest.raises(UserError, match="no feature network"):
        train(cfg, tmp_path / "run2")


def test_campaign_only_trains_the_named_runs_and_lists_every_run(tmp_path, monkeypatch):
    import bench.campaign as campaign
    campaign_file = tmp_path / "c.yaml"
    campaign_file.write_text(f"out: {tmp_path / 'out'}\nruns:\n  - {{method: densegan, seeds: [0, 1]}}\n")
    started = []

    class FakeProcess:
        returncode = 0

        def __init__(self, cmd, **_):
            started.append(cmd)

        def poll(self):
            return 0

    monkeypatch.setattr(campaign.subprocess, "Popen", FakeProcess)
    rows = campaign.run_campaign(campaign_file, only=["densegan-s1"], poll_seconds=0.01)
    assert [r["run"] for r in rows] == ["densegan-s0", "densegan-s1"]
    assert len(started) == 1 and "train.seed=1" in started[0]
    with pytest.raises(UserError, match="no run named densegan-s7"):
        campaign.run_campaign(campaign_file, only=["densegan-s7"])


def test_autoencoder_command_refuses_zero_steps(capsys):
    from bench.autoencoder import main
    assert main(["--steps", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --steps must be at least 1, got 0"]


def test_ship_weights_takes_the_validation_best_finished_seed(tmp_path):
    from bench.campaign import ship_weights
    from methods.densegan.checkpoint import load_generator, save_generator
    from methods.densegan.model import Generator, GeneratorConfig

    cfg = GeneratorConfig(stem_channels=4, growth=4, decoder_channels=(4,))
    runs = {"densegan-s0": (0.5, True), "densegan-s1": (0.6, True),
            "densegan-nodense-s0": (0.7, False),     # still training: no final generator
            "densegan-intmax-s0": (0.9, True)}       # a recipe variant, not a registered configuration
    generators = {}
    for i, (name, (score, finished)) in enumerate(runs.items()):
        torch.manual_seed(i)
        generators[name] = Generator(cfg)
        (tmp_path / name).mkdir()
        save_generator(generators[name], tmp_path / name / "best.safetensors",
                       {"val_score": str(score), "epoch": str(3 + i)})
        if finished:
            save_generator(generators[name], tmp_path / name / "generator.safetensors")
    weights = tmp_path / "weights"
    weights.mkdir()
    rows = ship_weights(tmp_path, weights)
    assert [(r["method"], r["seed"], r["epoch"]) for r in rows] == [("densegan", 1, "4")]
    assert sorted(p.name for p in weights.iterdir()) == ["densegan.safetensors"]
    shipped = load_generator(weights / "densegan.safetensors")
    for key, value in generators["densegan-s1"].state_dict().items():
        assert torch.equal(shipped.state_dict()[key], value)
    with pytest.raises(UserError, match="--replace"):
        ship_weights(tmp_path, weights)
    before = (weights / "densegan.safetensors").read_bytes()
    again = ship_weights(tmp_path, weights, replace=True)[0]
    assert again["run"] == "densegan-s1" and again["unchanged"]
    assert (weights / "densegan.safetensors").read_bytes() == before     # same content: the file is left alone
    save_generator(generators["densegan-s0"], tmp_path / "densegan-s0" / "best.safetensors",
                   {"val_score": "0.65", "epoch": "9"})                      # seed 0 is now the better one
    newer = ship_weights(tmp_path, weights, replace=True)[0]
    assert newer["run"] == "densegan-s0" and not newer["unchanged"]
    assert load_generator(weights / "densegan.safetensors").state_dict().keys() == shipped.state_dict().keys()
    with pytest.raises(UserError, match="no finished run to ship"):
        ship_weights(tmp_path / "densegan-nodense-s0", weights)


def test_reconstruction_ssim_is_one_for_a_perfect_autoencoder_and_lower_otherwise():
    from bench.datasets import Dataset, Pair
    from methods.densegan.data import synthetic_pair
    from methods.densegan.losses import ssim
    from methods.densegan.perceptual import reconstruction_ssim

    ds = Dataset(name="synthetic", description="", modalities=("A", "B"), colour=None, detail="b",
                 list_pairs=lambda: [Pair("synthetic", f"p{i}", lambda i=i: synthetic_pair(i, 32)) for i in range(2)])

    class Scaled(torch.nn.Module):
        def __init__(self, gain):
            super().__init__()
            self.gain = gain

        def forward(self, x, y):
            return self.gain * x

    assert reconstruction_ssim(Scaled(1.0), lambda name: ds, ["synthetic"]) == pytest.approx(1.0, abs=1e-6)
    images = [torch.from_numpy(img.astype("float32"))[None, None] for i in range(2) for img in synthetic_pair(i, 32)]
    expected = sum(float(ssim(0.5 * x, x)) for x in images) / len(images)
    assert reconstruction_ssim(Scaled(0.5), lambda name: ds, ["synthetic"]) == pytest.approx(expected, abs=1e-6)
    assert expected < 0.95


def test_campaign_report_scores_the_baselines_on_the_validation_pairs(tmp_path, monkeypatch):
    import methods
    import metrics
    from bench.campaign_report import write_campaign_report
    from bench.datasets import Dataset, Pair
    from common.io import read_csv_rows, write_csv_rows
    from methods.densegan.data import synthetic_pair

    ds = Dataset(name="synthetic", description="", modalities=("A", "B"), colour=None, detail="b",
                 list_pairs=lambda: [Pair("synthetic", f"p{i}", lambda i=i: synthetic_pair(i, 64)) for i in range(5)])
    data_cfg = {"val_datasets": ["synthetic"], "val_pairs": 2}
    for run, scores in (("densegan-s0", (0.3, 0.5)), ("densegan-nodense-s0", (0.2, 0.4))):
        (tmp_path / run).mkdir()
        write_csv_rows(tmp_path / run / "log_val.csv",
                       [{"epoch": e + 1, "Qabf": q, "VIF": q, "SSIM": q, "MI": 1.0, "val_score": q}
                        for e, q in enumerate(scores)], ["epoch", "Qabf", "VIF", "SSIM", "MI", "val_score"])
    table = [{"run": "densegan-s0", "status": "finished"}, {"run": "densegan-nodense-s0", "status": "training"}]
    page = write_campaign_report(tmp_path, table, ["run", "status"], data_cfg, lambda name: ds).read_text()
    assert "densegan-nodense-s0" in page and "training" in page
    assert (tmp_path / "val_curves.png").stat().st_size > 10_000
    # the max baseline's row is its mean over the evenly spaced validation pairs p0 and p4
    expected = [metrics.compute(a, b, methods.fuse(a, b, "max"), ["Qabf", "VIF"])
                for a, b in (synthetic_pair(0, 64), synthetic_pair(4, 64))]
    row = next(r for r in read_csv_rows(tmp_path / "val_baselines.csv") if r["method"] == "max")
    assert float(row["Qabf"]) == pytest.approx(np.mean([e["Qabf"] for e in expected]), abs=1e-6)
    assert float(row["val_score"]) == pytest.approx(np.mean([(e["Qabf"] + e["VIF"]) / 2 for e in expected]), abs=1e-6)
    with pytest.raises(UserError, match="validate on nothing"):
        write_campaign_report(tmp_path, table, ["run", "status"], {}, lambda name: ds)
    # the second report reads the cache: nothing is fused again
    monkeypatch.setattr(methods, "fuse", lambda *a, **k: pytest.fail("baselines fused again"))
    write_campaign_report(tmp_path, table, ["run", "status"], data_cfg, lambda name: ds)


def test_autoencoder_keeps_the_step_with_the_best_validation_patches(tmp_path, capsys):
    import re

    from bench.datasets import Dataset, Pair
    from methods.densegan.checkpoint import load_generator
    from methods.densegan.data import synthetic_pair
    from methods.densegan.losses import ssim
    from methods.densegan.perceptual import train_autoencoder, validation_patches

    ds = Dataset(name="synthetic", description="", modalities=("A", "B"), colour=None, detail="b",
                 list_pairs=lambda: [Pair("synthetic", f"p{i}", lambda i=i: synthetic_pair(i, 32)) for i in range(4)])
    path = train_autoencoder(tmp_path / "ae.safetensors", lambda name: ds, steps=6, batch=4, patch=16,
                             names=["synthetic"], lr=3e-3, val_every=2)
    logged = {int(s): float(v) for s, v in re.findall(r"step (\d+)/6: .*validation patch SSIM ([\d.]+)",
                                                      capsys.readouterr().err)}
    assert sorted(logged) == [2, 4, 6]
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    assert int(meta["best_step"]) == max(logged, key=logged.get) != 6     # this seed's best is not the last
    patches = validation_patches(lambda name: ds, 16, 0)
    with torch.no_grad():
        kept = float(ssim(load_generator(path)(patches, patches), patches))
    assert kept == pytest.approx(max(logged.values()), abs=1e-4)


def test_target_scoring_reuses_its_cells_and_rescores_only_a_retrained_run(tmp_path, monkeypatch):
    import bench.gan_targets as gan_targets
    import bench.runner as runner
    from methods.densegan.checkpoint import save_generator
    from methods.densegan.model import Generator, GeneratorConfig

    monkeypatch.setattr(gan_targets, "CLASSICAL", ("average", "max"))
    cfg = GeneratorConfig(stem_channels=4, growth=4, decoder_channels=(4,))
    campaign = tmp_path / "campaign"

    def write_run(name, score, seed, finished=True):
        torch.manual_seed(seed)
        generator = Generator(cfg)
        (campaign / name).mkdir(parents=True, exist_ok=True)
        save_generator(generator, campaign / name / "best.safetensors", {"val_score": str(score), "epoch": "3"})
        if finished:
            save_generator(generator, campaign / name / "generator.safetensors")

    write_run("densegan-s0", 0.5, 0)
    write_run("densegan-s1", 0.6, 1)
    write_run("densegan-nodense-s0", 0.7, 2, finished=False)
    computed = []
    real_run_pair = runner._run_pair
    monkeypatch.setattr(runner, "_run_pair", lambda task: computed.append([c.label for c in task["configs"]])
                        or real_run_pair(task))
    out = tmp_path / "cells"
    frame = gan_targets.score(campaign, ["phantom_ct_mri"], 1, out)
    assert computed == [["average", "max", "densegan-s0", "densegan-s1"]]
    assert sorted(frame.method) == ["average", "densegan", "densegan-s0", "densegan-s1", "max"]
    metric_cols = list(gan_targets.HEADLINE)
    shipped = frame.set_index("method").loc[["densegan", "densegan-s1"], metric_cols]
    assert (shipped.iloc[0] == shipped.iloc[1]).all()                 # the validation-best seed, seed 1
    assert (frame.set_index("method").loc["densegan-s0", metric_cols] != shipped.iloc[0]).any()
    assert gan_targets.unfinished_runs(campaign) == ["densegan-nodense-s0"]

    computed.clear()
    again = gan_targets.score(campaign, ["phantom_ct_mri"], 1, out)
    assert computed == [] and again.equals(frame)                      # every cell reused
    write_run("densegan-s0", 0.65, 7)                                  # seed 0 trained on: now the better one
    computed.clear()
    third = gan_targets.score(campaign, ["phantom_ct_mri"], 1, out)
    assert computed == [["densegan-s0"]]
    rows = third.set_index("method")
    assert (rows.loc["densegan", metric_cols] == rows.loc["densegan-s0", metric_cols]).all()
    spread = gan_targets.seed_table(third).set_index("configuration").loc["densegan"]
    vifs = third.set_index("method").loc[["densegan-s0", "densegan-s1"], "VIF"]
    assert spread["seeds"] == 2 and spread["VIF"] == f"{vifs.mean():.4f} ± {vifs.std(ddof=0):.4f}"
    page = gan_targets.report_markdown(third, gan_targets.targets(third), "cmd", ["densegan-nodense-s0"])
    assert "**Provisional**" in page and "densegan-nodense-s0" in page
    assert "| phantom_ct_mri | 1 densegan vs simple | max |" in page
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="holds no cells.jsonl"):
        gan_targets.score(campaign, ["phantom_ct_mri"], 1, tmp_path / "other")
