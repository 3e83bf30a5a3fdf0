"""Dense-block GAN: fusion rules, networks, MAC counter, losses, weights files, registered methods."""
import json
import math

import numpy as np
import pytest
import torch

from common.errors import UserError
from methods.densegan import VARIANTS, WEIGHTS_DIR, shipped_weights
from methods.densegan.checkpoint import load_generator, load_state, load_weights, save_generator, save_state
from methods.densegan.fusion_rules import (FUSION_RULES, AdditionFusion, L1Fusion, LmaxFusion, MaxFusion,
                                           MeanFusion, fusion_layer, get_fusion_rule)
from methods.densegan.losses import (discriminator_loss, generator_loss, gradient_loss, intensity_loss, sobel,
                                     ssim, ssim_loss)
from methods.densegan.model import (Discriminator, DiscriminatorConfig, Generator, GeneratorConfig, count_macs,
                                    count_parameters)

SHIPPED = ("densegan", "densegan-nodense", "densegan-noloss", "densegan-noloss-nodense")
TINY = GeneratorConfig(stem_channels=4, growth=4, dense_layers=3, decoder_channels=(8, 4))


def feat(*values):
    """(1, C, 1, 1) feature vector from channel values."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, -1, 1, 1)


# ------------------------------------------------------------------------------- fusion rules

def test_lmax_weights_by_channel_max_abs():
    a, b = feat(3.0, -1.0), feat(1.0, 0.5)           # act_a = 3, act_b = 1 -> w = 0.75 / 0.25
    fused = FUSION_RULES["lmax"]([a, b])
    assert torch.allclose(fused, 0.75 * a + 0.25 * b)


def test_lmax_picks_the_source_with_larger_activity():
    a = torch.randn(1, 8, 5, 5)
    silent = torch.zeros_like(a)
    assert torch.allclose(FUSION_RULES["lmax"]([a, silent]), a)
    assert torch.allclose(FUSION_RULES["lmax"]([silent, a]), a)
    # per position: where |a| dominates the fused vector is closer to a than to b
    b = 0.1 * torch.randn(1, 8, 5, 5)
    fused = FUSION_RULES["lmax"]([a, b])
    assert ((fused - a).abs().sum(1) < (fused - b).abs().sum(1)).all()


def test_lmax_inference_path_equals_general_form():
    torch.manual_seed(4)
    a, b = torch.randn(2, 16, 9, 7), torch.randn(2, 16, 9, 7)
    b[:, :, :2] = 0.0
    a[:, :, :1] = 0.0                                   # both silent in row 0: no 0/0
    general = FUSION_RULES["lmax"]([a, b])              # grad enabled: stacked K-source form
    with torch.no_grad():
        fast = FUSION_RULES["lmax"]([a, b])
    assert torch.allclose(fast, general, atol=1e-6) and torch.isfinite(fast).all()
    assert torch.equal(fast[:, :, 1], a[:, :, 1])      # b silent -> a exactly


def test_mean_addition_max_exact():
    a, b = feat(1.0, -2.0, 4.0), feat(3.0, 2.0, -1.0)
    assert torch.equal(FUSION_RULES["mean"]([a, b]), feat(2.0, 0.0, 1.5))
    assert torch.equal(FUSION_RULES["addition"]([a, b]), feat(4.0, 0.0, 3.0))
    assert torch.equal(FUSION_RULES["max"]([a, b]), feat(3.0, 2.0, 4.0))


def test_l1_rule_block_average_with_zero_padding():
    a = torch.ones(1, 1, 3, 3)
    b = torch.zeros(1, 1, 3, 3)
    b[0, 0, 1, 1] = 2.0
    fused = FUSION_RULES["l1"]([a, b])
    # centre: C_a = 9/9 = 1, C_b = 2/9 -> w_a = 9/11; corner: C_a = 4/9, C_b = 2/9 -> w_a = 2/3
    assert math.isclose(float(fused[0, 0, 1, 1]), 9 / 11 * 1 + 2 / 11 * 2, rel_tol=1e-6)
    assert math.isclose(float(fused[0, 0, 0, 0]), 2 / 3, rel_tol=1e-6)


@pytest.mark.parametrize("module_cls, name", [(LmaxFusion, "lmax"), (L1Fusion, "l1"), (AdditionFusion, "addition"),
                                              (MeanFusion, "mean"), (MaxFusion, "max")])
def test_module_form_equals_function_form(module_cls, name):
    a, b = torch.randn(2, 6, 7, 5), torch.randn(2, 6, 7, 5)
    expected = get_fusion_rule(name)([a, b])
    assert torch.equal(module_cls()(a, b), expected)
    assert torch.equal(fusion_layer(name)(a, b), expected)


def test_unknown_rule_is_a_user_error():
    with pytest.raises(UserError, match="unknown fusion rule"):
        get_fusion_rule("nope")


# ------------------------------------------------------------------------------- networks

def test_generator_shapes_and_range():
    g = Generator()
    a, b = torch.rand(2, 1, 20, 24), torch.rand(2, 1, 20, 24)
    assert g.encoder(a).shape == (2, 64, 20, 24)
    with torch.no_grad():
        out = g(a, b)
    assert out.shape == (2, 1, 20, 24)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_straight_through_clamp_clamps_forward_and_passes_gradient():
    from methods.densegan.model import StraightThroughClamp
    x = torch.tensor([-0.5, 0.25, 1.5], requires_grad=True)
    y = StraightThroughClamp()(x)
    assert torch.equal(y.detach(), torch.tensor([0.0, 0.25, 1.0]))
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones(3))


def test_dense_block_concatenates_earlier_outputs():
    enc = Generator().encoder
    x = torch.rand(1, 1, 8, 8)
    stem = torch.relu(enc.stem(x))
    out = enc(x)
    assert torch.allclose(out[:, :16], stem)        # C1 output passes through the block unchanged
    assert [c.in_channels for c in enc.block] == [16, 32, 48]


def test_plain_ablation_has_same_params_and_macs_as_dense():
    dense, plain = Generator(GeneratorConfig(encoder="dense")), Generator(GeneratorConfig(encoder="plain"))
    x = torch.zeros(1, 1, 32, 32)
    assert abs(count_parameters(dense) - count_parameters(plain)) < 100     # biases differ only
    assert count_macs(dense, x, x) == count_macs(plain, x, x)
    assert plain.encoder(x).shape == dense.encoder(x).shape


def test_mac_counter_matches_hand_count():
    h = w = 256
    enc = 2 * 9 * (1 * 16 + 16 * 16 + 32 * 16 + 48 * 16)             # both sources
    dec = 9 * (64 * 64 + 64 * 32 + 32 * 16 + 16 * 1)
    x = torch.zeros(1, 1, h, w)
    assert count_macs(Generator(), x, x) == (enc + dec) * h * w
    lean = GeneratorConfig(decoder_channels=(32, 16, 8))
    assert count_macs(Generator(lean), x, x) == (enc + 9 * (64 * 32 + 32 * 16 + 16 * 8 + 8)) * h * w


def test_discriminator_gives_one_logit_per_image_of_any_size():
    d = Discriminator(DiscriminatorConfig(base_channels=8, layers=3))
    assert d(torch.rand(3, 1, 32, 32)).shape == (3,)
    assert d(torch.rand(2, 1, 48, 40)).shape == (2,)


def test_unknown_model_key_is_a_user_error():
    with pytest.raises(UserError, match="decoder_chanels"):
        GeneratorConfig.from_dict({"decoder_chanels": [8]})


# ------------------------------------------------------------------------------- losses

def smooth_and_edged(size=32):
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    smooth = (0.5 + 0.3 * torch.sin(3 * x) * torch.cos(2 * y)).reshape(1, 1, size, size)
    edged = (x > 0.5).float().reshape(1, 1, size, size) * 0.8 + 0.1
    return smooth, edged


def test_loss_terms_vanish_for_identical_inputs():
    img, _ = smooth_and_edged()
    assert math.isclose(float(ssim(img, img)), 1.0, abs_tol=1e-5)
    assert float(ssim_loss(img, img, img)) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_loss(img, img, img, img, "max")) == pytest.approx(0.0, abs=1e-7)
    assert float(gradient_loss(img, img, img, img, "detail")) == pytest.approx(0.0, abs=1e-7)
    assert float(intensity_loss(img, img, img, "max")) == 0.0
    assert float(intensity_loss(img, img, img, "mean")) == 0.0


def test_sobel_of_a_ramp_and_a_constant():
    ramp = torch.arange(8.0).repeat(8, 1).reshape(1, 1, 8, 8) * 0.1
    gx, gy = sobel(ramp)
    assert torch.allclose(gx[..., 1:-1, 1:-1], torch.full((6, 6), 0.8))   # (1 + 2 + 1) * 2 * 0.1
    assert float(gy.abs().max()) < 1e-6
    gx, gy = sobel(torch.full((1, 1, 5, 5), 0.3))
    assert float(gx.abs().max()) == 0.0 and float(gy.abs().max()) == 0.0


def test_gradient_loss_positive_when_edges_differ():
    smooth, edged = smooth_and_edged()
    flat = torch.full_like(smooth, 0.5)
    assert float(gradient_loss(flat, smooth, edged, edged, "max")) > 0.05
    assert float(gradient_loss(flat, smooth, edged, edged, "detail")) > 0.05
    # keeping the edges lowers the loss
    assert float(gradient_loss(edged, smooth, edged, edged, "detail")) == 0.0


def test_intensity_loss_known_values():
    a, b = torch.full((1, 1, 4, 4), 0.2), torch.full((1, 1, 4, 4), 0.6)
    f = torch.zeros(1, 1, 4, 4)
    assert float(intensity_loss(f, a, b, "max")) == pytest.approx(0.6)
    assert float(intensity_loss(f, a, b, "mean")) == pytest.approx(0.4)


def test_gan_losses_known_values():
    zero = torch.zeros(4)
    assert float(discriminator_loss(zero, zero)) == pytest.approx(2 * math.log(2))
    assert float(discriminator_loss(torch.full((4,), 30.0), torch.full((4,), -30.0))) < 1e-10


def test_generator_loss_weights_and_skips_terms():
    smooth, edged = smooth_and_edged()
    cfg = {"lambda_adv": 0.5, "lambda_detail": 0.0, "lambda_ssim": 2.0, "lambda_int": 0.0,
           "gradient_target": "max", "intensity_target": "max", "ssim_window": 11, "ssim_sigma": 1.5}
    total, terms = generator_loss(smooth, smooth, edged, edged, torch.zeros(1), cfg)
    assert set(terms) == {"adv", "ssim"}
    assert float(total) == pytest.approx(0.5 * math.log(2) + 2.0 * terms["ssim"], rel=1e-5)
    with pytest.raises(UserError, match="lambda_typo"):
        generator_loss(smooth, smooth, edged, edged, torch.zeros(1), {**cfg, "lambda_typo": 1})


# ------------------------------------------------------------------------------- weights files

def test_generator_round_trip(tmp_path):
    torch.manual_seed(1)
    g = Generator(TINY)
    path = save_generator(g, tmp_path / "g.safetensors")
    g2 = load_generator(path)
    assert g2.config == TINY
    a, b = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(g.eval()(a, b), g2(a, b))
    assert not list(tmp_path.glob("*.tmp"))             # atomic write leaves no temp file


def test_pickle_weights_are_refused(tmp_path):
    g = Generator(TINY)
    pt = tmp_path / "g.pt"
    torch.save(g.state_dict(), pt)
    with pytest.raises(UserError, match="not a safetensors file"):
        load_generator(pt)
    disguised = tmp_path / "g.safetensors"
    disguised.write_bytes(pt.read_bytes())             # a pickle renamed to .safetensors
    with pytest.raises(UserError, match="not a safetensors file"):
        load_weights(disguised)


def test_state_file_round_trip_and_refuses_code(tmp_path):
    state = {"epoch": 3, "step": 12, "rng": {"torch": torch.get_rng_state()}}
    path = save_state(state, tmp_path / "s.state.pt")
    back = load_state(path)
    assert back["epoch"] == 3 and torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    torch.save({"x": Generator(TINY)}, tmp_path / "evil.state.pt")    # a pickled module, not plain data
    with pytest.raises(UserError, match="not a loadable training state"):
        load_state(tmp_path / "evil.state.pt")


# ------------------------------------------------------------------------------- registered methods

def test_variants_are_registered_as_trainable():
    import methods
    for name in VARIANTS:
        m = methods.get_method(name)
        assert m.trainable and set(m.params) == {"weights", "fusion_rule", "device"}


@pytest.fixture(scope="module")
def phantom_ct_mr():
    from bench.phantom import phantom_pair
    return phantom_pair("CT", "MR-T2", size=64)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_shipped_method_fuses_a_phantom_pair(name, phantom_ct_mr):
    import methods
    if not (WEIGHTS_DIR / f"{name}.safetensors").is_file():
        pytest.skip(f"{name}: no shipped weights (test_all_four_configurations_are_shipped covers the four)")
    assert (WEIGHTS_DIR / f"{name}.safetensors").stat().st_size < 2_000_000
    a, b = phantom_ct_mr
    fused = methods.fuse(a, b, name)
    assert fused.shape == (64, 64) and fused.dtype == np.float32
    # trained weights carry edges and information over; a randomly initialised generator of the same
    # architecture does not (its Qabf and VIF on this pair are below 0.01: its output is nearly black)
    import metrics
    from methods.densegan import cached_generator
    from methods.densegan.inference import fuse_arrays
    scores = metrics.compute(a, b, fused, names=["Qabf", "VIF"])
    assert scores["Qabf"] > 0.1 and scores["VIF"] > 0.2, scores
    torch.manual_seed(0)
    untrained = Generator(cached_generator(WEIGHTS_DIR / f"{name}.safetensors").config)
    random = metrics.compute(a, b, fuse_arrays(untrained, a, b), names=["Qabf", "VIF"])
    assert random["Qabf"] < 0.05 and random["VIF"] < 0.05, random
    # an RGB (PET-like) source gives an RGB result through the registry's colour path
    rgb = np.stack([a, 0.5 * a, b], axis=-1)
    assert methods.fuse(rgb, b, name).shape == (64, 64, 3)


def test_all_four_configurations_are_shipped():
    missing = [n for n in SHIPPED if not (WEIGHTS_DIR / f"{n}.safetensors").is_file()]
    assert not missing, f"no shipped weights for {missing}"


def test_complexity_is_counted_from_the_model(tmp_path):
    import methods
    torch.manual_seed(0)
    path = save_generator(Generator(TINY), tmp_path / "tiny.safetensors")
    info = methods.get_method("densegan").complexity(weights=str(path), fusion_rule="mean")
    x = torch.zeros(1, 1, 256, 256)
    assert info == {"parameters": count_parameters(Generator(TINY)), "macs": count_macs(Generator(TINY), x, x)}
    # without weights: the shipped (or configured) architecture; the lean one is within the 3.6 GMAC budget
    full = methods.get_method("densegan").complexity()
    lean = methods.get_method("densegan-lean").complexity()
    assert lean["macs"] < 3.6e9 < full["macs"] and lean["parameters"] < full["parameters"]


def test_weights_parameter_takes_checkpoints_run_folders_and_sweep_patterns(tmp_path, monkeypatch):
    import methods
    from bench.sweeps import expand_methods
    from methods.densegan.checkpoint import prefixed, save_weights
    from methods.densegan.model import Discriminator

    torch.manual_seed(2)
    g = Generator(TINY)
    run = tmp_path / "run"
    for epoch in (1, 2):     # training-checkpoint form: G and D in one file, prefixed
        with torch.no_grad():
            for p_ in g.parameters():
                p_.add_(0.01 * epoch)
        save_weights({**prefixed(g, "generator"), **prefixed(Discriminator(), "discriminator")},
                     run / "checkpoints" / f"epoch_{epoch:04d}.safetensors",
                     {"generator_config": json.dumps(TINY.to_dict())})
    save_generator(g, run / "generator.safetensors")
    rng = np.random.default_rng(3)
    a, b = rng.random((24, 24), dtype=np.float32), rng.random((24, 24), dtype=np.float32)
    configs = expand_methods([{"method": "densegan", "epochs": [1, 2],
                               "weights": str(run / "checkpoints" / "epoch_{epoch:04d}.safetensors")}])
    assert [c.label for c in configs] == ["densegan@1", "densegan@2"]
    at_1, at_2 = (methods.fuse(a, b, c.method, **c.kwargs) for c in configs)
    assert not np.array_equal(at_1, at_2)
    assert np.array_equal(methods.fuse(a, b, "densegan", weights=str(run)), at_2)   # folder -> final generator
    monkeypatch.chdir(tmp_path)                                                        # relative to the cwd
    assert np.array_equal(methods.fuse(a, b, "densegan", weights="run/checkpoints/epoch_0001.safetensors"), at_1)
    with pytest.raises(UserError, match="not found"):
        methods.fuse(a, b, "densegan", weights="run/checkpoints/epoch_0009.safetensors")


def test_fusion_rule_parameter_changes_the_result():
    import methods
    rng = np.random.default_rng(1)
    a, b = rng.random((32, 32), dtype=np.float32), rng.random((32, 32), dtype=np.float32)
    lmax = methods.fuse(a, b, "densegan")
    mean = methods.fuse(a, b, "densegan", fusion_rule="mean")
    assert not np.allclose(lmax, mean)


def test_missing_shipped_weights_say_how_to_train():
    with pytest.raises(UserError, match="python -m bench train --method densegan-missing"):
        shipped_weights("densegan-missing")
