"""The dense-block GAN's inference path (issue #14): equal to ``Generator.forward`` to 1e-5 for every
shipped model and every architecture option, tiles and bands equal to one piece, small and odd sizes."""
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.errors import UserError
from bench.phantom import phantom_pair
from methods.densegan import VARIANTS, WEIGHTS_DIR, cached_generator, shipped_weights
from methods.densegan.inference import (_supports_fast_path, conv_valid, fuse_arrays, lmax_into, plan_regions,
                                        receptive_radius, reflect_border_)
from methods.densegan.model import Generator, GeneratorConfig


def reference(generator, a, b):
    """The training graph's output (reflection pad, conv, ReLU, concatenation), clipped like the method."""
    with torch.inference_mode():
        out = generator(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])[0, 0].numpy()
    return np.clip(out, 0.0, 1.0)


@pytest.fixture(scope="module")
def phantom():
    return [tuple(x.astype(np.float32) for x in phantom_pair("MR-T1-Gad", "MR-T2", i, size=96)) for i in range(2)]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_shipped_models_equal_their_forward_pass(name, phantom):
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"no shipped weights {path}")
    generator = cached_generator(path)
    assert _supports_fast_path(generator)
    for a, b in phantom:
        np.testing.assert_allclose(fuse_arrays(generator, a, b), reference(generator, a, b), atol=1e-5, rtol=0)


@pytest.mark.parametrize("options", [
    {"encoder": "plain"}, {"fusion_rule": "l1"}, {"fusion_rule": "addition"}, {"output_activation": "sigmoid"},
    {"decoder_channels": [8]}, {"dense_layers": 1, "growth": 4}])
def test_every_architecture_option_equals_its_forward_pass(options):
    torch.manual_seed(0)
    generator = Generator(GeneratorConfig.from_dict({"stem_channels": 4, "growth": 4, "decoder_channels": [8, 4],
                                                     **options}))
    rng = np.random.default_rng(1)
    a, b = (rng.random((37, 53), dtype=np.float32) for _ in range(2))
    np.testing.assert_allclose(fuse_arrays(generator, a, b), reference(generator, a, b), atol=1e-5, rtol=0)


def test_tiles_and_bands_equal_one_piece():
    generator = cached_generator(WEIGHTS_DIR / "densegan.safetensors")
    rng = np.random.default_rng(2)
    a, b = (rng.random((150, 97), dtype=np.float32) for _ in range(2))
    whole = fuse_arrays(generator, a, b, tile=0)
    np.testing.assert_allclose(whole, reference(generator, a, b), atol=1e-5, rtol=0)
    for kwargs in ({"bands": 2}, {"bands": 3}, {"tile": 40}, {"tile": 33, "bands": 2}):
        np.testing.assert_allclose(fuse_arrays(generator, a, b, **kwargs), whole, atol=1e-5, rtol=0)
    # a halo half the receptive radius is visibly wrong: the halo is what makes tiles exact
    assert receptive_radius(generator) == 8
    short = plan_regions(150, 97, 40, 1, receptive_radius(generator) // 2)
    from methods.densegan.inference import _forward
    cut = np.empty_like(whole)
    for rows, cols, er, ec in short:
        part = _forward(generator, a[er, ec], b[er, ec], "cpu")
        cut[rows, cols] = part[rows.start - er.start:rows.stop - er.start, cols.start - ec.start:cols.stop - ec.start]
    assert np.abs(np.clip(cut, 0, 1) - whole).max() > 1e-4


def test_regions_cover_the_image_once():
    for h, w, tile, bands in ((256, 256, 0, 2), (1000, 517, 384, 2), (5, 9, 0, 1), (770, 770, 384, 3)):
        count = np.zeros((h, w), int)
        for rows, cols, ext_rows, ext_cols in plan_regions(h, w, tile, bands, 8):
            count[rows, cols] += 1
            assert ext_rows.start <= rows.start and ext_rows.stop >= rows.stop
            assert rows.start - ext_rows.start in (0, 8) and ext_cols.stop - cols.stop in (0, 8)
        assert (count == 1).all()


def test_large_images_are_tiled_automatically(monkeypatch):
    from methods.densegan import inference
    generator = cached_generator(WEIGHTS_DIR / "densegan.safetensors")
    rng = np.random.default_rng(3)
    a, b = (rng.random((70, 60), dtype=np.float32) for _ in range(2))
    whole = fuse_arrays(generator, a, b, tile=0)
    shapes = []
    real_forward = inference._forward
    monkeypatch.setattr(inference, "_forward", lambda g, x, y, d: (shapes.append(x.shape), real_forward(g, x, y, d))[1])
    monkeypatch.setattr(inference, "TILE_ABOVE", 1000)
    monkeypatch.setattr(inference, "TILE_SIZE", 32)
    tiled = fuse_arrays(generator, a, b)
    assert len(shapes) == 6 and max(max(s) for s in shapes) <= 32 + 2 * 8
    np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(2, 2), (2, 9), (9, 2), (3, 5)])
def test_images_smaller_than_the_receptive_field(shape):
    generator = cached_generator(WEIGHTS_DIR / "densegan.safetensors")
    rng = np.random.default_rng(4)
    a, b = (rng.random(shape, dtype=np.float32) for _ in range(2))
    np.testing.assert_allclose(fuse_arrays(generator, a, b), reference(generator, a, b), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(1, 64), (64, 1), (1, 1)])
def test_one_pixel_wide_image_is_a_one_line_error(shape, tmp_path, capsys):
    generator = cached_generator(WEIGHTS_DIR / "densegan.safetensors")
    a = np.zeros(shape, np.float32)
    with pytest.raises(UserError, match="too small"):
        fuse_arrays(generator, a, a)
    if a.size == 1:
        return                   # a 1x1 image is constant: the CLI refuses it for that first
    from PIL import Image

    from bench.cli import main
    for name in ("a.png", "b.png"):
        Image.fromarray(np.arange(np.prod(shape), dtype=np.uint8).reshape(shape) * 3).save(tmp_path / name)
    assert main(["fuse", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "-o", str(tmp_path / "f.png"),
                 "--method", "densegan"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "too small" in err[0] and not (tmp_path / "f.png").exists()


def test_reflect_border_equals_reflection_padding():
    x = torch.rand(2, 3, 5, 7).to(memory_format=torch.channels_last)
    padded = torch.zeros(2, 3, 7, 9).to(memory_format=torch.channels_last)
    padded[:, :, 1:-1, 1:-1] = x
    assert torch.equal(reflect_border_(padded), F.pad(x, (1, 1, 1, 1), mode="reflect"))


def test_conv_valid_with_relu_equals_conv_then_relu():
    conv = torch.nn.Conv2d(5, 4, 3)
    x = torch.randn(2, 5, 9, 11).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(conv_valid(x, conv, relu=True), torch.relu(conv(x)), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(conv_valid(x, conv, relu=False), conv(x), atol=1e-6, rtol=1e-5)


def test_lmax_into_equals_the_registered_rule():
    from methods.densegan.fusion_rules import lmax_fusion
    feats = torch.rand(2, 6, 8, 9)
    feats[0, :, :2] = 0.0                    # a region where A has no activity
    out = torch.empty(1, 6, 8, 9)
    torch.testing.assert_close(lmax_into(feats, out), lmax_fusion([feats[:1], feats[1:]]), atol=1e-6, rtol=1e-6)


def test_speed_profile_counts_the_fused_convolutions():
    """``python -m bench.speed.densegan --profile``: the shipped generator's 8 convolutions per pair are 7 fused
    conv + ReLU calls (stem, 3 dense layers, 3 decoder layers) and one plain one (the output layer)."""
    from bench.speed.densegan import profile_rows
    from methods.densegan.inference import _pointwise_relu_available

    if not _pointwise_relu_available():
        pytest.skip("this torch build has no oneDNN conv + ReLU op")
    rows, wall_ms = profile_rows(threads=1, repeats=2, size=64, top=50)
    calls = {r["op"]: r["calls"] for r in rows}
    assert calls["mkldnn::_convolution_pointwise"] == 7
    assert calls["aten::mkldnn_convolution"] == 1          # the output layer (no ReLU), through F.conv2d
    assert wall_ms > 0 and abs(sum(r["share"] for r in rows) - 1.0) < 1e-6


def test_auto_bands_takes_the_faster_way_and_keeps_it(monkeypatch):
    import methods.densegan.inference as inference

    generator = cached_generator(shipped_weights("densegan"))
    rng = np.random.default_rng(1)
    a, b = (rng.random((96, 80), dtype=np.float32) for _ in range(2))
    calls = []
    real = inference.fuse_arrays

    def spy(g, x, y, **kw):
        calls.append(kw.get("bands"))
        if kw.get("bands") == 1:
            time.sleep(0.05)        # make the intra-op way the slow one
        return real(g, x, y, **kw)

    monkeypatch.setattr(inference, "_AUTO_BANDS", {})
    monkeypatch.setattr(inference.torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(inference, "fuse_arrays", spy)
    fused = real(generator, a, b, bands="auto")               # times both ways
    assert calls == [1, 2]
    np.testing.assert_allclose(fused, real(generator, a, b, bands=1), atol=1e-5)
    calls.clear()
    real(generator, a, b, bands="auto")                       # within AUTO_RECHECK_S: the faster, bands, only
    assert calls == []
    assert inference._AUTO_BANDS[(id(generator), a.shape, 2)][0] == 2
    monkeypatch.setattr(inference, "AUTO_RECHECK_S", 0.0)    # stale: timed again
    real(generator, a, b, bands="auto")
    assert calls == [1, 2]
