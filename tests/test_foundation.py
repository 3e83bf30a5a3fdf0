"""The data layer, colour, registries, CLI errors and the run folder's nothing-is-lost rules."""
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import methods
import metrics
from bench.cli import main
from common.colour import recolour, rgb_to_ycbcr, ycbcr_to_rgb
from bench.datasets import Registry, casewise_split, pair_files
from common.errors import UserError
from common.io import read_image, to_uint8, write_image
from bench.runner import CELLS_FILE, read_cells, run_suite

REPO = Path(__file__).resolve().parents[1]


def save_png(path, arr8, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr8, mode).save(path)
    return path


def smooth_image(seed, size=32):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = 0.5 + 0.3 * np.sin(6 * x + seed) * np.cos(5 * y) + 0.05 * rng.standard_normal((size, size))
    return np.clip(img, 0, 1).astype(np.float32)


def make_pair_folder(root, names, size=32, modalities=("CT", "MRI")):
    for i, name in enumerate(names):
        for j, mod in enumerate(modalities):
            save_png(root / mod / f"{name}.png", to_uint8(smooth_image(10 * i + j, size)))
    return root


def write_registry(tmp_path, folder_root, **split):
    spec = {
        "datasets": {"toy": {"kind": "folder", "root": folder_root, "modalities": ["CT", "MRI"],
                             "split": split or {"scheme": "all"}, "description": "toy pairs"}},
        "suites": {"toy": {"datasets": ["toy"], "methods": ["average", "dwt"], "metrics": ["EN", "SSIM"]}},
    }
    path = tmp_path / "datasets.yaml"
    path.write_text(json.dumps(spec))  # JSON is valid YAML
    return Registry(path)


# --- image I/O --------------------------------------------------------------------------------------------

def test_read_8bit_16bit_grey_and_rgb(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(to_uint8(read_image(save_png(tmp_path / "g.png", grey))), grey)
    deep = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    img16 = read_image(save_png(tmp_path / "d.png", deep))
    assert img16.dtype == np.float32 and abs(float(img16.max()) - 1.0) < 1e-6
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert read_image(save_png(tmp_path / "c.png", rgb)).shape == (8, 8, 3)


def test_unreadable_file_is_a_user_error(tmp_path):
    bogus = tmp_path / "scan.png"
    bogus.write_text("this is not an image")
    with pytest.raises(UserError, match=r"scan\.png: not a readable image"):
        read_image(bogus)
    with pytest.raises(UserError, match="no such image file"):
        read_image(tmp_path / "missing.png")


def test_transparent_alpha_is_refused(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 3] = 128
    with pytest.raises(UserError, match="transparent"):
        read_image(save_png(tmp_path / "t.png", rgba))


def test_write_image_never_overwrites_silently(tmp_path):
    path = write_image(tmp_path / "f.png", np.full((4, 4), 0.5, np.float32))
    with pytest.raises(UserError, match="already exists"):
        write_image(path, np.zeros((4, 4), np.float32))
    assert to_uint8(read_image(path)).max() == 128
    assert [p.name for p in tmp_path.iterdir()] == ["f.png"]  # no temporary left behind


def test_uint8_rounding_is_half_away_from_zero():
    assert to_uint8(np.array([0.5 / 255, 1.5 / 255, 2.5 / 255])).tolist() == [1, 2, 3]


# --- colour ------------------------------------------------------------------------------------------------

def test_ycbcr_round_trip_within_one_level():
    rgb = np.random.default_rng(1).integers(0, 256, (64, 64, 3)).astype(np.float32) / 255
    back = ycbcr_to_rgb(rgb_to_ycbcr(rgb))
    assert np.abs(back - rgb).max() < 1 / 255


def test_luma_matches_the_reference_convention():
    rgb8 = np.random.default_rng(2).integers(0, 256, (32, 32, 3))
    expected = np.floor(0.299 * rgb8[..., 0] + 0.587 * rgb8[..., 1] + 0.114 * rgb8[..., 2] + 0.5)
    y = rgb_to_ycbcr(rgb8.astype(np.float32) / 255)[..., 0]
    assert np.array_equal(to_uint8(y), expected.astype(np.uint8))


def test_colour_source_keeps_its_chroma():
    rgb = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32) * 0.6 + 0.2
    grey = smooth_image(4, 16)
    fused = methods.fuse(grey, rgb, "average")
    assert fused.shape == (16, 16, 3)
    ycc_f, ycc_src = rgb_to_ycbcr(fused), rgb_to_ycbcr(rgb)
    inside = (fused > 0.01).all(-1) & (fused < 0.99).all(-1)  # away from the gamut clip
    assert np.abs(ycc_f[..., 1:][inside] - ycc_src[..., 1:][inside]).max() < 1e-4
    assert np.allclose(recolour(ycc_src[..., 0], rgb), rgb, atol=1e-5)


# --- methods -----------------------------------------------------------------------------------------------

def test_dwt_of_identical_inputs_reconstructs_the_input():
    img = smooth_image(5, 64)
    assert np.abs(methods.fuse(img, img, "dwt") - img).max() < 1e-5
    assert np.abs(methods.fuse(img, img, "dwt", wavelet="db4", level=3) - img).max() < 1e-5


def test_dwt_detail_rule_keeps_the_stronger_edge():
    flat = np.full((32, 32), 0.5, np.float32)
    edge = flat.copy()
    edge[:, 16:] = 0.9
    fused = methods.fuse(flat + 1e-3 * smooth_image(0), edge, "dwt")
    assert fused[:, 17:].mean() - fused[:, :15].mean() > 0.15  # average would give 0.2, max-abs keeps it


def test_fuse_rejects_bad_shapes():
    with pytest.raises(UserError, match="source sizes differ: A is 32x32, B is 31x32"):
        methods.fuse(smooth_image(0), smooth_image(1)[:, :31], "average")
    two_channel = np.stack([smooth_image(0), smooth_image(1)], axis=-1)
    with pytest.raises(UserError, match=r"source A: expected a grey .* got shape \(32, 32, 2\)"):
        methods.fuse(two_channel, smooth_image(1), "average")


def test_fuse_rejects_nan_and_constant_sources():
    good = smooth_image(0)
    bad = good.copy()
    bad[3, 3] = np.nan
    with pytest.raises(UserError, match="source A: contains NaN"):
        methods.fuse(bad, good)
    with pytest.raises(UserError, match="source B is constant"):
        methods.fuse(good, np.full_like(good, 0.25))


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="unknown method 'nope'"):
        methods.fuse(smooth_image(0), smooth_image(1), "nope")
    with pytest.raises(UserError, match="has no parameter 'levels'"):
        methods.fuse(smooth_image(0), smooth_image(1), "dwt", levels=2)
    with pytest.raises(UserError, match="unknown metric 'XYZ'"):
        metrics.compute(smooth_image(0), smooth_image(1), smooth_image(2), ["XYZ"])


# --- datasets ----------------------------------------------------------------------------------------------

def test_pairing_by_name(tmp_path):
    make_pair_folder(tmp_path, ["1001", "1002", "2001"])
    pairs = pair_files(tmp_path / "CT", tmp_path / "MRI")
    assert sorted(pairs) == ["1001", "1002", "2001"]
    assert all(a.stem == b.stem and a.parent.name == "CT" for a, b in pairs.values())


def test_unpaired_name_is_reported_with_its_folder(tmp_path):
    make_pair_folder(tmp_path, ["1001", "1002"])
    save_png(tmp_path / "CT" / "1003.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(UserError, match=r"CT: 1003 has no partner in .*MRI"):
        pair_files(tmp_path / "CT", tmp_path / "MRI")


def test_empty_modality_folder(tmp_path):
    (tmp_path / "CT").mkdir()
    (tmp_path / "MRI").mkdir()
    with pytest.raises(UserError, match="no images"):
        pair_files(tmp_path / "CT", tmp_path / "MRI")


def test_missing_data_root_says_where_it_looked(tmp_path):
    registry = write_registry(tmp_path, "toy")
    with pytest.raises(UserError, match=r"data root .*nowhere \(from --data-root\) does not exist"):
        registry.dataset("toy", tmp_path / "nowhere")


def test_size_mismatch_inside_a_dataset(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001"])
    save_png(tmp_path / "data" / "toy" / "MRI" / "1001.png", np.zeros((20, 32), np.uint8))
    pair = write_registry(tmp_path, "toy").dataset("toy", tmp_path / "data").pairs()[0]
    with pytest.raises(UserError, match="sizes differ"):
        pair.load()


def test_casewise_split_keeps_cases_apart():
    stems = [f"{case}{s:03d}" for case in (16, 2, 20, 21, 28) for s in range(5)]
    test, train = casewise_split(stems, "test", 0.4, 0), casewise_split(stems, "train", 0.4, 0)
    assert test | train == set(stems) and not test & train
    case = lambda s: s[:-3]  # noqa: E731
    assert not {case(s) for s in test} & {case(s) for s in train}
    assert len({case(s) for s in test}) == 2


def test_harvard_casewise_split_is_disjoint_by_case(harvard_dir):
    registry = Registry()
    test = {p.name for p in registry.dataset("harvard_ct_mri_casewise", harvard_dir.parent).pairs()}
    all_names = {p.stem for part in ("train", "test") for p in (harvard_dir / "CT-MRI" / part / "CT").iterdir()}
    train = casewise_split(all_names, "train", 0.2, 0)
    assert test and not {n[:-3] for n in test} & {n[:-3] for n in train}


def test_real_harvard_pairs_load(harvard_dir):
    ds = Registry().dataset("harvard_pet_mri", harvard_dir.parent)
    pairs = ds.pairs()
    assert len(pairs) == 24
    a, b = pairs[0].load()
    assert a.shape == (256, 256, 3) and b.shape == (256, 256) and ds.colour == "a"


# --- the run folder ----------------------------------------------------------------------------------------

def test_run_writes_report_and_refuses_to_overwrite(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001", "1002", "2001"])
    registry = write_registry(tmp_path, "toy")
    out = run_suite("toy", out=tmp_path / "run", data_root=tmp_path / "data", registry=registry)
    for name in ("results.csv", "summary.csv", "index.html", "figures/grid_toy.png"):
        assert (out / name).is_file(), name
    page = (out / "index.html").read_text()
    refs = re.findall(r"(?:src|href)=['\"]([^'\"#]+)['\"]", page)
    assert refs and all((out / r).is_file() for r in refs)
    assert len(read_cells(out)) == 6
    with pytest.raises(UserError, match="already holds a run; pass --resume"):
        run_suite("toy", out=out, data_root=tmp_path / "data", registry=registry)


def test_killed_run_resumes_without_recomputing(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001", "1002", "2001"])
    registry = write_registry(tmp_path, "toy")
    out = run_suite("toy", out=tmp_path / "run", data_root=tmp_path / "data", registry=registry)
    lines = (out / CELLS_FILE).read_text().splitlines()
    # simulate a kill: two cells lost, the last line torn in the middle of a write
    (out / CELLS_FILE).write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])
    run_suite("toy", out=out, data_root=tmp_path / "data", registry=registry, resume=True)
    after = (out / CELLS_FILE).read_text().splitlines()
    assert after[:3] == lines[:3]            # finished cells kept as they were, not recomputed
    assert len(after) == 6                   # the torn cell and the two lost ones computed once each
    assert sorted(json.loads(l)["key"] for l in after) == sorted(json.loads(l)["key"] for l in lines)


def test_resume_recomputes_a_cell_whose_data_changed(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001", "1002"])
    registry = write_registry(tmp_path, "toy")
    out = run_suite("toy", out=tmp_path / "run", data_root=tmp_path / "data", registry=registry)
    save_png(tmp_path / "data" / "toy" / "CT" / "1002.png", to_uint8(smooth_image(99)))
    run_suite("toy", out=out, data_root=tmp_path / "data", registry=registry, resume=True)
    new = [json.loads(l) for l in (out / CELLS_FILE).read_text().splitlines()[4:]]
    assert sorted(c["key"] for c in new) == ["toy/1002/average", "toy/1002/dwt"]


def test_fresh_keeps_the_previous_run(tmp_path):
    make_pair_folder(tmp_path / "data" / "toy", ["1001"])
    registry = write_registry(tmp_path, "toy")
    out = run_suite("toy", out=tmp_path / "run", data_root=tmp_path / "data", registry=registry)
    run_suite("toy", out=out, data_root=tmp_path / "data", registry=registry, fresh=True)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.prev-")]
    assert len(kept) == 1 and (kept[0] / "results.csv").is_file()


# --- CLI ---------------------------------------------------------------------------------------------------

def test_cli_fuse_mismatched_sizes_leaves_no_output(tmp_path, capsys):
    a = save_png(tmp_path / "a.png", to_uint8(smooth_image(0, 32)))
    b = save_png(tmp_path / "b.png", to_uint8(smooth_image(1, 32))[:, :30].copy())
    out = tmp_path / "f.png"
    assert main(["fuse", str(a), str(b), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: source sizes differ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [a, b] or sorted(tmp_path.iterdir()) == sorted([a, b])


def test_cli_fuse_needs_force_to_overwrite(tmp_path, capsys):
    a = save_png(tmp_path / "a.png", to_uint8(smooth_image(0)))
    b = save_png(tmp_path / "b.png", to_uint8(smooth_image(1)))
    out = tmp_path / "f.png"
    assert main(["fuse", str(a), str(b), "-o", str(out), "--method", "average"]) == 0
    before = out.read_bytes()
    assert main(["fuse", str(a), str(b), "-o", str(out), "--method", "max"]) == 2
    assert "already exists (use --force" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["fuse", str(a), str(b), "-o", str(out), "--method", "max", "--force"]) == 0
    assert out.read_bytes() != before


def test_cli_user_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", "no_such_suite"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown suite 'no_such_suite'") and "Traceback" not in proc.stderr


def test_cli_metrics_single_triple(tmp_path, capsys):
    paths = [save_png(tmp_path / f"{n}.png", to_uint8(smooth_image(i))) for i, n in enumerate("abf")]
    assert main(["metrics", *map(str, paths), "--json", "--metrics", "EN,SSIM"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"EN", "SSIM"} and 0 < scores["EN"] <= 8


def test_cli_metrics_on_images_too_small_for_ms_ssim_warns_in_one_line(tmp_path):
    # 64x64: MS_SSIM's five scales do not fit; the other metrics are still reported
    paths = [save_png(tmp_path / f"{n}.png", to_uint8(smooth_image(i, 64))) for i, n in enumerate("abf")]
    proc = subprocess.run([sys.executable, "-m", "bench", "metrics", *map(str, paths), "--json"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert scores["MS_SSIM"] is None and math.isfinite(scores["SSIM"])
    assert "warning: MS_SSIM is NaN: needs images larger than 160 pixels" in proc.stderr
    assert "registry.py" not in proc.stderr and "Traceback" not in proc.stderr


def test_single_threaded_torch_restores_the_thread_count_even_on_error():
    import torch
    from methods.registry import single_threaded_torch
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError):
            with single_threaded_torch():
                assert torch.get_num_threads() == 1
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_cli_list_names_every_registered_thing(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in list(methods.METHODS) + list(metrics.METRICS) + ["mrgad_mrt2", "harvard_ct_mri", "quick"]:
        assert name in text
