"""Issue #6 options of the dense-block GAN: fusion rules, discriminators, loss terms, config switches.

Tiny tensors and tiny networks on CPU; no dataset needed.
"""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from common.errors import UserError
from methods.densegan.checkpoint import load_generator, save_generator
from methods.densegan.discriminators import (DualDiscriminator, GradientIntensityDiscriminator, PatchDiscriminator,
                                             build_discriminator)
from methods.densegan.fusion_rules import FUSION_RULES
from methods.densegan.losses import generator_loss, gradient_magnitude
from methods.densegan.losses_plus import (frequency_loss, local_contrast_loss, local_intensity_loss,
                                          local_intensity_target, texture_loss)
from methods.densegan.model import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig
from methods.densegan.rules_plus import ResidualFusionNetwork, load_stage_one
from methods.densegan.train import resolve_config, train

NEW_RULES = ("l1-softmax", "nestfuse", "nestfuse-avg", "local-energy")
TINY_D = DiscriminatorConfig(base_channels=4, layers=2)


def smooth_features(n=1, c=8, size=16, seed=0):
    """Spatially smooth random feature maps (a signal, not white noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, c, size // 4, size // 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------- fusion rules

@pytest.mark.parametrize("rule", NEW_RULES)
def test_rule_shape_and_convex_combination(rule):
    a, b = smooth_features(2, seed=1), smooth_features(2, seed=2)
    fused = FUSION_RULES[rule]([a, b])
    assert fused.shape == a.shape
    # identical sources: weights summing to 1 reproduce the source exactly
    assert torch.allclose(FUSION_RULES[rule]([a, a]), a, atol=1e-5)
    # a convex combination per position/channel stays between the sources
    lo, hi = torch.minimum(a, b), torch.maximum(a, b)
    assert (fused >= lo - 1e-5).all() and (fused <= hi + 1e-5).all()


@pytest.mark.parametrize("rule", NEW_RULES)
def test_rule_picks_the_stronger_source(rule):
    strong = smooth_features(seed=3) + 0.5
    weak = 0.01 * smooth_features(seed=4)
    for pair, winner in (([strong, weak], strong), ([weak, strong], strong)):
        fused = FUSION_RULES[rule](pair)
        assert ((fused - winner).abs().mean() < 0.25 * (fused - weak).abs().mean())


def test_l1_softmax_is_sharper_than_linear_l1():
    a, b = torch.full((1, 4, 6, 6), 2.0), torch.full((1, 4, 6, 6), 1.0)
    linear, soft = FUSION_RULES["l1"]([a, b]), FUSION_RULES["l1-softmax"]([a, b])
    w_linear, w_soft = (float((x[0, 0, 3, 3] - 1.0) / 1.0) for x in (linear, soft))
    assert w_linear == pytest.approx(2 / 3, rel=1e-5)
    assert w_soft == pytest.approx(float(torch.sigmoid(torch.tensor(1 / (0.25 * 1.5)))), rel=1e-5)


def test_nestfuse_channel_attention_uses_nuclear_norm():
    from methods.densegan.rules_plus import channel_attention_fusion
    a = torch.zeros(1, 2, 4, 4)
    b = torch.zeros(1, 2, 4, 4)
    a[0, 0] = torch.eye(4) * 3.0          # nuclear norm 12
    b[0, 0] = torch.ones(4, 4)            # rank one: nuclear norm 4 (average pooling would say 1 vs 0.75)
    fused = channel_attention_fusion(torch.stack([a, b]), "nuclear")
    assert torch.allclose(fused[0, 0], 0.75 * a[0, 0] + 0.25 * b[0, 0])


def noisy_pair(noise_a, noise_b, channels=16, size=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, size)
    amplitude = torch.relu(torch.randn(1, channels, 1, 1, generator=g))
    signal = amplitude * (0.5 + 0.5 * torch.sin(6 * y))[None, None, :, None].expand(1, channels, size, size)
    na = noise_a * torch.randn(1, channels, size, size, generator=g)
    nb = noise_b * torch.randn(1, channels, size, size, generator=g)
    return signal, signal + na, signal + nb


@pytest.mark.parametrize("noise_a,noise_b", [(0.3, 0.3), (0.0, 0.3), (0.1, 0.5)])
def test_noise_demo_local_energy_keeps_less_noise_than_lmax(noise_a, noise_b):
    """Equal signal, independent feature noise: Lmax's weights follow the noise peaks; ours do not."""
    signal, a, b = noisy_pair(noise_a, noise_b)
    residual = {r: float(((FUSION_RULES[r]([a, b]) - signal) ** 2).mean()) for r in ("lmax", "local-energy", "mean")}
    assert residual["local-energy"] < residual["lmax"]
    # and ours is within 5 % of plain averaging, the best fixed weights for equally informative sources
    assert residual["local-energy"] < 1.05 * residual["mean"]
    if noise_a != noise_b:     # Lmax leans towards the noisier source: clearly worse than the average
        assert residual["lmax"] > 1.5 * residual["mean"]


def test_rfn_block_starts_as_the_mean_and_learns():
    torch.manual_seed(0)
    rfn = ResidualFusionNetwork(4)
    a, b = torch.rand(2, 4, 8, 8), torch.rand(2, 4, 8, 8)
    assert torch.allclose(rfn(a, b), 0.5 * (a + b), atol=1e-6)
    loss = (rfn(a, b) - a).pow(2).mean()
    loss.backward()
    assert all(p.grad is not None for p in rfn.parameters())
    assert rfn.residual.weight.grad.abs().sum() > 0


def test_rfn_generator_round_trip_and_stage_two_freezing(tmp_path):
    torch.manual_seed(0)
    tiny = dict(stem_channels=4, growth=4, dense_layers=2, decoder_channels=(4,))
    stage_one = Generator(GeneratorConfig(**tiny))
    path = save_generator(stage_one, tmp_path / "stage1.safetensors")
    rfn_gen = Generator(GeneratorConfig(**tiny, fusion_rule="rfn"))
    assert isinstance(rfn_gen.fusion, ResidualFusionNetwork)
    load_stage_one(rfn_gen, {"init_from": str(path), "freeze": ["encoder", "decoder"]})
    for name in ("encoder", "decoder"):
        own, ref = getattr(rfn_gen, name).state_dict(), getattr(stage_one, name).state_dict()
        assert all(torch.equal(own[k], ref[k]) for k in ref)
        assert not any(p.requires_grad for p in getattr(rfn_gen, name).parameters())
    assert all(p.requires_grad for p in rfn_gen.fusion.parameters())
    # the learned block is saved and rebuilt from the file's own config
    saved = save_generator(rfn_gen, tmp_path / "rfn.safetensors")
    reloaded = load_generator(saved)
    x = torch.rand(1, 1, 12, 12)
    assert torch.allclose(reloaded(x, x), rfn_gen.eval()(x, x))
    with pytest.raises(UserError, match="no submodule"):
        load_stage_one(rfn_gen, {"freeze": ["decoderr"]})


# ------------------------------------------------------------------------------- discriminators

def test_default_builder_is_exactly_the_dcgan_discriminator():
    torch.manual_seed(5)
    built = build_discriminator({"base_channels": 4, "layers": 2})
    torch.manual_seed(5)
    plain = Discriminator(TINY_D)
    assert type(built) is Discriminator
    assert all(torch.equal(x, y) for x, y in zip(built.state_dict().values(), plain.state_dict().values()))


def test_patchgan_gives_a_logit_map():
    d = PatchDiscriminator(TINY_D)
    out = d(torch.rand(3, 1, 32, 32))
    assert out.shape == (3, 8, 8)            # two stride-2 layers: 32 -> 8 patches per side


def test_gradient_discriminator_judges_intensity_and_gradient_apart():
    d = GradientIntensityDiscriminator(TINY_D).eval()
    x = torch.rand(2, 1, 16, 16)
    out = d(x)
    assert out.shape == (2, 2)
    # the gradient branch sees |grad x| only: adding a constant changes the intensity logit alone
    shifted = d(x + 0.5)
    assert torch.allclose(shifted[:, 1], out[:, 1], atol=1e-5)
    assert not torch.allclose(shifted[:, 0], out[:, 0], atol=1e-3)
    assert torch.allclose(gradient_magnitude(x + 0.5), gradient_magnitude(x), atol=1e-5)


def test_spectral_norm_is_applied_and_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    d = build_discriminator({"base_channels": 4, "layers": 2, "spectral_norm": True, "batch_norm": False})
    convs = [m for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert convs and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in convs)
    d.train()
    for _ in range(30):                      # power iterations run in training-mode forward passes
        d(torch.rand(2, 1, 16, 16))
    for m in convs:
        sigma = torch.linalg.matrix_norm(m.weight.detach().reshape(m.weight.shape[0], -1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_dual_discriminator_has_one_member_per_source():
    d = build_discriminator({"base_channels": 4, "layers": 2, "dual": True, "kind": "patchgan"})
    assert isinstance(d, DualDiscriminator) and d.dual
    assert d.d_a is not d.d_b and not torch.equal(d.d_a.classifier.weight, d.d_b.classifier.weight)
    x, y = torch.rand(2, 1, 16, 16), torch.rand(2, 1, 16, 16)
    out = d(x, y)
    assert out.shape == (4, 4, 4)
    assert torch.equal(out[:2], d.d_a(x)) and torch.equal(out[2:], d.d_b(y))


def test_unknown_discriminator_kind_is_a_user_error():
    with pytest.raises(UserError, match="kind must be one of"):
        build_discriminator({"kind": "stylegan"})
    with pytest.raises(UserError, match="unknown key"):
        build_discriminator({"kind": "patchgan", "widht": 3})


# ------------------------------------------------------------------------------- loss terms

def images(seed=0, size=24):
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    a = (0.5 + 0.4 * torch.sin(8 * x) * torch.cos(5 * y))[None, None]
    b = torch.rand(1, 1, size, size, generator=g) * 0.3
    return a, b


LOSS_FNS = {
    "local_int": (lambda f, a, b: local_intensity_loss(f, a, b), lambda a, b: local_intensity_target(a, b)),
    "local_contrast": (lambda f, a, b: local_contrast_loss(f, a, torch.full_like(b, 0.2)), lambda a, b: a),
    "texture": (lambda f, a, b: texture_loss(f, a, torch.zeros_like(b)), lambda a, b: a),
    "texture_magnitude": (lambda f, a, b: texture_loss(f, a, torch.zeros_like(b), "magnitude"), lambda a, b: a),
    "freq": (lambda f, a, b: frequency_loss(f, a, a), lambda a, b: a),
}


@pytest.mark.parametrize("name", list(LOSS_FNS))
def test_loss_zero_at_its_target_positive_elsewhere_and_differentiable(name):
    loss_fn, target_fn = LOSS_FNS[name]
    a, b = images()
    target = target_fn(a, b)
    assert float(loss_fn(target, a, b)) == pytest.approx(0.0, abs=1e-5)
    fused = (0.5 * target + 0.25).requires_grad_(True)        # halved contrast, shifted brightness
    loss = loss_fn(fused, a, b)
    assert float(loss.detach()) > 1e-3
    loss.backward()
    assert fused.grad is not None and fused.grad.abs().sum() > 0


def test_local_intensity_target_follows_the_locally_informative_source():
    """Left half: bright flat 'bone' in A; right half: textured 'tissue' in B over a dark flat A."""
    size = 32
    a = torch.zeros(1, 1, size, size)
    a[..., :16] = 0.9
    a[..., 16:] = 0.2
    b = torch.zeros(1, 1, size, size)
    b[..., 16:] = 0.4 + 0.3 * torch.sign(torch.sin(torch.arange(16.0)))[None, None, None, :]
    b[..., :16] = 0.3
    target = local_intensity_target(a, b)
    assert (target[..., 2:12] - a[..., 2:12]).abs().max() < 0.05        # bone stays bright (A)
    right = target[..., 22:30]
    assert (right - b[..., 22:30]).abs().mean() < (right - a[..., 22:30]).abs().mean()


def test_generator_loss_adds_the_new_terms_only_when_switched_on():
    cfg = resolve_config("densegan", profile="cpu")["loss"]
    a, b = images()
    fused = (0.5 * a + 0.5 * b).requires_grad_(True)
    logits = torch.zeros(1)
    base, base_terms = generator_loss(fused, a, b, b, logits, cfg)
    on = {**cfg, "lambda_local_int": 2.0, "lambda_local_contrast": 1.0, "lambda_texture": 3.0, "lambda_freq": 0.5}
    total, terms = generator_loss(fused, a, b, b, logits, on)
    assert set(terms) - set(base_terms) == {"local_int", "local_contrast", "texture", "freq"}
    extra = 2 * terms["local_int"] + terms["local_contrast"] + 3 * terms["texture"] + 0.5 * terms["freq"]
    assert float(total.detach()) == pytest.approx(float(base.detach()) + extra, rel=1e-5)
    with pytest.raises(UserError, match="unknown key"):
        generator_loss(fused, a, b, b, logits, {**cfg, "lambda_textur": 1.0})


# ------------------------------------------------------------------------------- config switches

def tiny_overrides(*extra):
    return ["data.synthetic={pairs: 4, size: 24}", "data.patch_size=16", "model.stem_channels=4",
            "model.growth=4", "model.dense_layers=2", "model.decoder_channels=[4]",
            "discriminator.base_channels=4", "discriminator.layers=2", "train.batch_size=2",
            "train.max_steps_per_epoch=1", "train.epochs=1", "train.threads=1", "train.log_every=1", *extra]


SWITCHES = {
    "l1-softmax": ["model.fusion_rule=l1-softmax"],
    "nestfuse": ["model.fusion_rule=nestfuse"],
    "local-energy": ["model.fusion_rule=local-energy"],
    "rfn": ["model.fusion_rule=rfn"],
    "dual": ["discriminator.dual=true"],
    "patchgan": ["discriminator.kind=patchgan"],
    "spectral-norm": ["discriminator.spectral_norm=true", "discriminator.batch_norm=false"],
    "gradient-d": ["discriminator.kind=gradient"],
    "dual-patch-sn": ["discriminator.dual=true", "discriminator.kind=patchgan", "discriminator.spectral_norm=true"],
    "local-bc": ["loss.lambda_local_int=10", "loss.lambda_local_contrast=5", "loss.lambda_int=0"],
    "texture": ["loss.lambda_texture=5"],
    "freq": ["loss.lambda_freq=1"],
}


def _discriminator(run) -> dict:
    """The trained discriminator's tensors in the run's epoch-1 checkpoint."""
    from methods.densegan.train import checkpoint_paths
    return {k: v for k, v in load_file(checkpoint_paths(run, 1)[0]).items() if k.startswith("discriminator.")}


# what each option must leave behind in the trained run: the generator's fusion layer, the
# discriminator's saved tensors (d), or its loss term in the step log
OPTION_EVIDENCE = {
    "l1-softmax": lambda g, d, log: getattr(g.fusion, "rule", None) == "l1-softmax",
    "nestfuse": lambda g, d, log: getattr(g.fusion, "rule", None) == "nestfuse",
    "local-energy": lambda g, d, log: getattr(g.fusion, "rule", None) == "local-energy",
    "rfn": lambda g, d, log: type(g.fusion).__name__ == "ResidualFusionNetwork",
    "dual": lambda g, d, log: any(".d_a." in k for k in d) and any(".d_b." in k for k in d),
    "patchgan": lambda g, d, log: d["discriminator.classifier.weight"].ndim == 4,      # a conv, not a linear
    "spectral-norm": lambda g, d, log: any("parametrizations" in k for k in d),
    "gradient-d": lambda g, d, log: any(".gradient." in k for k in d) and any(".intensity." in k for k in d),
    "dual-patch-sn": lambda g, d, log: any(".d_a." in k and "parametrizations" in k for k in d),
    "local-bc": lambda g, d, log: {"local_int", "local_contrast"} <= set(log.columns) and "int" not in log.columns,
    "texture": lambda g, d, log: "texture" in log.columns,
    "freq": lambda g, d, log: "freq" in log.columns,
}


@pytest.mark.parametrize("name", list(SWITCHES))
def test_each_option_trains_one_step_on_cpu(name, tmp_path):
    import pandas as pd
    cfg = resolve_config("densegan", profile="cpu", overrides=tiny_overrides(*SWITCHES[name]))
    path = train(cfg, tmp_path / name)
    tensors = load_file(path)
    assert tensors and all(torch.isfinite(t).all() for t in tensors.values())
    generator = load_generator(path)
    out = generator(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))
    assert out.shape == (1, 1, 16, 16) and torch.isfinite(out).all()
    assert OPTION_EVIDENCE[name](generator, _discriminator(tmp_path / name),
                                 pd.read_csv(tmp_path / name / "log_steps.csv")), f"{name} left no trace in the run"


def test_dual_discriminator_training_moves_both_members(tmp_path):
    from methods.densegan.checkpoint import load_weights, unprefixed
    from methods.densegan.train import checkpoint_paths
    cfg = resolve_config("densegan", profile="cpu", overrides=tiny_overrides("discriminator.dual=true",
                                                                             "train.max_steps_per_epoch=2"))
    torch.manual_seed(int(cfg["train"]["seed"]))
    Generator(GeneratorConfig.from_dict(cfg["model"]))
    initial = build_discriminator(cfg["discriminator"]).state_dict()
    train(cfg, tmp_path / "dual")
    trained = unprefixed(load_weights(checkpoint_paths(tmp_path / "dual", 1)[0])[0], "discriminator")
    for member in ("d_a.", "d_b."):
        keys = [k for k in initial if k.startswith(member) and k.endswith("weight")]
        assert any(not torch.equal(initial[k], trained[k]) for k in keys)


def test_rfn_stage_two_trains_only_the_fusion_block(tmp_path):
    stage1 = train(resolve_config("densegan", profile="cpu", overrides=tiny_overrides()), tmp_path / "s1")
    cfg = resolve_config("densegan", profile="cpu", overrides=tiny_overrides(
        "model.fusion_rule=rfn", f"train.init_from={stage1}", "train.freeze=[encoder, decoder]"))
    stage2 = train(cfg, tmp_path / "s2")
    before, after = load_file(stage1), load_file(stage2)
    for key, value in before.items():          # encoder and decoder untouched
        assert torch.equal(after[key], value)
    fusion = [k for k in after if k.startswith("fusion.")]
    torch.manual_seed(0)
    fresh = ResidualFusionNetwork(4 + 2 * 4).state_dict()
    assert fusion and any(not torch.equal(after[k], fresh[k[len("fusion."):]]) for k in fusion)


def test_plus_config_is_the_seed_plus_the_studys_chosen_combination():
    """densegan-plus.yaml = densegan.yaml + exactly the overrides the study chose on validation
    (reports/plus_study/combination.json), so the config cannot drift from the study."""
    import json

    import methods
    from methods.densegan.train import REPO

    chosen = json.loads((REPO / "reports" / "plus_study" / "combination.json").read_text())
    cfg = resolve_config("densegan-plus", profile="cpu")
    assert cfg["method"] == "densegan-plus"
    expected = resolve_config("densegan", profile="cpu", overrides=chosen["overrides"])
    assert {k: cfg[k] for k in ("model", "discriminator", "loss", "optim", "data", "train")} == \
        {k: expected[k] for k in ("model", "discriminator", "loss", "optim", "data", "train")}
    assert cfg != resolve_config("densegan", profile="cpu") | {"method": "densegan-plus"}
    m = methods.get_method("densegan-plus")
    assert m.trainable and set(m.params) == {"weights", "fusion_rule", "device"}


# ------------------------------------------------------------------------------- study analysis

def synthetic_scores():
    """Per-pair scores: 'good' beats the seed on every headline metric, 'bad' loses on every one."""
    import pandas as pd
    from bench.studies.plus import HARVARD, METRICS
    rng = np.random.default_rng(0)
    rows = []
    for dataset in HARVARD:
        for k in range(8):
            base = rng.random(len(METRICS))
            for variant, shift in (("seed", 0.0), ("local-energy", 0.1), ("nestfuse", -0.1), ("texture", 0.05),
                                   ("freq", -0.05)):
                rows.append({"variant": variant, "dataset": dataset, "pair": f"p{k}",
                             **dict(zip(METRICS, base + shift + 0.001 * rng.random(len(METRICS))))})
    return pd.DataFrame(rows)


def test_study_picks_the_changes_that_beat_the_seed_and_tests_significance():
    from bench.studies.plus import SINGLE_CHANGES, choose_combination, significance, wins_against
    frame = synthetic_scores()
    assert wins_against(frame, "local-energy") == 24 and wins_against(frame, "nestfuse") == 0
    chosen, overrides = choose_combination(frame)
    assert chosen == ["local-energy", "texture"]
    assert overrides == SINGLE_CHANGES["local-energy"][1] + SINGLE_CHANGES["texture"][1]
    assert significance(frame, "local-energy", "harvard_ct_mri_val", "SSIM") < 0.05
