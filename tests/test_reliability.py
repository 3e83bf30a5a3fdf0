"""What a careful new user runs into (issue 16): killed runs, bad parameters, strict JSON, ambiguous folders,
one-line errors for bad files. Each test feeds the case and checks the outcome."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import methods
from bench.datasets import Registry
from common.errors import UserError
from bench.runner import CELLS_FILE, read_cells, run_suite

REPO = Path(__file__).resolve().parents[1]


def phantom_registry(tmp_path, methods_list, *, pairs=2, size=64, metrics=("EN",)):
    spec = {"datasets": {"ph": {"kind": "phantom", "modalities": ["CT", "MR-T2"], "pairs": pairs, "size": size,
                                "seed": 0, "description": "small phantom"}},
            "suites": {"s": {"datasets": ["ph"], "methods": methods_list, "metrics": list(metrics)}}}
    path = tmp_path / "datasets.yaml"
    path.write_text(json.dumps(spec))  # JSON is valid YAML
    return Registry(path)


# --- a killed run ------------------------------------------------------------------------------------------

def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (forkserver, resource tracker, pool workers), from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, todo = [], [pid]
    while todo:
        pid = todo.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        found += children
        todo += children
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _files(folder: Path) -> dict:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the workers")
def test_killed_run_takes_its_workers_with_it_and_loses_at_most_the_cells_in_progress(tmp_path):
    jobs = 2
    phantom_registry(tmp_path, ["dwt", "lp", "gff", "llf_ioi"], pairs=8, size=96)
    out = tmp_path / "run"
    code = ("import sys; from pathlib import Path; from bench.datasets import Registry; "
            "from bench.runner import run_suite; "
            f"run_suite('s', out=Path(sys.argv[1]), registry=Registry(Path(sys.argv[2])), jobs={jobs})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code, str(out), str(tmp_path / "datasets.yaml")], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers = []
    try:
        deadline = time.monotonic() + 60
        # kill once the workers have fused a few images (the first pair's cells are then in flight)
        while len(list(out.glob("fused/*/*/*.png"))) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run wrote no fused image within 60 s"
            time.sleep(0.05)
        workers = _descendants(proc.pid)
        assert len(workers) >= jobs
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 4
        while (survivors := [pid for pid in workers if _running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert survivors == [], f"processes of the killed run still running 4 s later: {survivors}"
        before = _files(out)
        time.sleep(1)
        assert _files(out) == before, "files in the run folder changed after the run was killed"
    finally:
        proc.kill()
        for pid in workers:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
    recorded = {c["fused"] for c in read_cells(out)}
    on_disk = {p.relative_to(out).as_posix() for p in out.glob("fused/*/*/*.png")}
    assert len(on_disk - recorded) <= jobs  # only a cell in progress per worker may lack its record


def test_a_failing_method_names_dataset_pair_and_method_and_keeps_the_pairs_cells(tmp_path, monkeypatch):
    def failing(a, b):
        raise UserError("cannot fuse these")
    monkeypatch.setitem(methods.METHODS, "failing_for_test",
                        methods.Method("failing_for_test", failing, "test", "always fails"))
    registry = phantom_registry(tmp_path, ["average", "failing_for_test", "max"])
    with pytest.raises(UserError, match=r"^ph/slice00, method failing_for_test: cannot fuse these$"):
        run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    assert [c["key"] for c in read_cells(tmp_path / "run")] == ["ph/slice00/average"]


def test_a_method_raising_a_bug_keeps_its_traceback_with_the_cell_named(tmp_path, monkeypatch):
    def broken(a, b):
        raise ZeroDivisionError("division by zero")
    monkeypatch.setitem(methods.METHODS, "broken_for_test",
                        methods.Method("broken_for_test", broken, "test", "a bug"))
    registry = phantom_registry(tmp_path, ["average", "broken_for_test"])
    with pytest.raises(ZeroDivisionError) as caught:
        run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    assert caught.value.__notes__ == ["(while running ph/slice00, method broken_for_test)"]


def test_resume_removes_temporary_files_of_interrupted_writes(tmp_path):
    registry = phantom_registry(tmp_path, ["average"], pairs=1)
    out = run_suite("s", out=tmp_path / "run", registry=registry, jobs=1)
    stale = out / "fused" / "ph" / "average" / ".slice00.png.abc123.tmp"
    stale.write_bytes(b"half a png")
    run_suite("s", out=out, registry=registry, jobs=1, resume=True)
    assert not stale.exists()


def test_a_method_failing_in_a_worker_is_named_and_the_pairs_finished_cells_are_kept(tmp_path):
    bad = tmp_path / "objects.npz"
    np.savez(bad, D=np.array([{"not": "numbers"}], dtype=object))
    registry = phantom_registry(tmp_path, ["average", {"method": "sr", "params": {"dictionary": str(bad)}}])
    with pytest.raises(UserError) as caught:
        run_suite("s", out=tmp_path / "run", registry=registry, jobs=2)
    message = str(caught.value)
    assert message.startswith(("ph/slice00, method sr: ", "ph/slice01, method sr: ")), message
    assert "object array" in message and "\n" not in message
    failed_pair = message.split(",")[0]
    assert f"{failed_pair}/average" in {c["key"] for c in read_cells(tmp_path / "run")}


# --- parameters: checked from the signature before any work -------------------------------------------------

def _has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


BAD_PARAMS = [  # method, NAME=VALUE, what the message must say is allowed
    ("dwt", "level=abc", "an integer from 1 to 10"),
    ("dwt", "level=2.5", "an integer from 1 to 10"),
    ("nsct", "levels=abc", "a comma-separated list of integers"),
    ("dwt", "wavelet=nosuch", "one of"),
    ("densegan", "device=cuda:99" if _has_cuda() else "device=cuda", "a torch device available here"),
    ("dwt", "level=-1", "from 1 to 10"),
    ("dwt", "level=0", "from 1 to 10"),
    ("dwt", "level=50", "from 1 to 10"),
    ("gff", "r1=-5", ">= 1"),
    ("nsct_pcnn", "iterations=0", ">= 1"),
    ("dwt", "input_scale=0", "a number > 0"),
    ("llf_ioi", "alpha=nan", "a number > 0"),
    ("nsst_papcnn", "pyramid=nosuch", "one of maxflat"),
]


@pytest.mark.parametrize("method,assignment,allowed", BAD_PARAMS)
def test_fuse_refuses_a_bad_parameter_in_one_line_before_reading_anything(tmp_path, capsys, method, assignment,
                                                                          allowed):
    from bench.cli import main

    out = tmp_path / "f.png"
    # the sources do not exist: the parameter must be refused before they are read
    code = main(["fuse", str(tmp_path / "no_a.png"), str(tmp_path / "no_b.png"), "-o", str(out),
                 "--method", method, "--param", assignment])
    err = capsys.readouterr().err
    name, value = assignment.split("=")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: method {method!r}: parameter {name}={value!r} is not allowed; expected "), err
    assert allowed in err
    assert not out.exists()


def test_parameter_text_is_converted_to_the_signatures_types():
    check = lambda name, **p: methods.get_method(name).check_params(p)  # noqa: E731
    assert check("nsct", levels="2,3,3,4", input_scale="255") == {"levels": (2, 3, 3, 4), "input_scale": 255.0}
    assert check("nsct", levels=[2, 3]) == {"levels": (2, 3)}                  # a YAML list
    assert check("sr", dictionary="none", overlap="6") == {"dictionary": None, "overlap": 6}
    assert check("dwt", wavelet="db2", level=3) == {"wavelet": "db2", "level": 3}
    with pytest.raises(UserError, match=r"parameter level=True is not allowed"):
        check("dwt", level=True)                                              # a bool is not an integer


def test_every_parameter_of_every_method_has_a_type_and_every_number_a_declared_range():
    for method in methods.METHODS.values():
        assert set(method.specs) == set(method.params), method.name
        for spec in method.specs.values():
            assert spec.kind is not None, f"{method.name}.{spec.name}: no type (annotate it)"
            if spec.kind in (int, float) or (spec.kind is tuple and spec.item in (int, float)):
                assert spec.allowed is not None, f"{method.name}.{spec.name}: no allowed range declared"
            assert spec.convert(spec.default) == spec.default, f"{method.name}.{spec.name}: default refused"


def test_a_bad_grid_value_is_refused_before_a_run_folder_exists(tmp_path):
    registry = phantom_registry(tmp_path, ["average", {"method": "dwt", "grid": {"level": [2, 50]}}])
    out = tmp_path / "run"
    with pytest.raises(UserError, match=r"^suite 's': method 'dwt': parameter level=50 is not allowed; expected an "
                                        r"integer from 1 to 10$"):
        run_suite("s", out=out, registry=registry, jobs=1)
    assert not out.exists()


# --- outputs a program reads: metrics ----------------------------------------------------------------------

def _png(path, arr8):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr8, dtype=np.uint8)).save(path)
    return path


def _gradient(seed, size=32):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    return np.clip(4 * x + 3 * y + rng.integers(0, 20, (size, size)), 0, 255)


def test_metrics_json_writes_null_for_nan_and_parses_strictly(tmp_path, capsys):
    from bench.cli import main

    a, b = _png(tmp_path / "a.png", _gradient(0)), _png(tmp_path / "b.png", _gradient(1))
    f = _png(tmp_path / "f.png", np.full((32, 32), 7))          # constant: SD/CC-type metrics are 0/0 = NaN
    assert main(["metrics", str(a), str(b), str(f), "--json", "--metrics", "EN,CC"]) == 0
    out = capsys.readouterr().out
    scores = json.loads(out, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert scores["CC"] is None and isinstance(scores["EN"], float)


def test_folder_mode_refuses_two_files_with_one_stem(tmp_path, capsys):
    from bench.cli import main

    for d, seed in (("A", 0), ("B", 1), ("F", 2)):
        _png(tmp_path / d / "p0.png", _gradient(seed))
    _png(tmp_path / "F" / "p0.tif", _gradient(3))
    code = main(["metrics", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--f", str(tmp_path / "F")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "p0.png and p0.tif have the same name stem" in err, err


def _triple(tmp_path):
    return [str(_png(tmp_path / f"{n}.png", _gradient(i))) for i, n in enumerate("abf")]


def test_metrics_output_is_honoured_for_one_triple(tmp_path, capsys):
    from bench.cli import main

    out = tmp_path / "scores.csv"
    assert main(["metrics", *_triple(tmp_path), "--metrics", "EN,SSIM", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "name,EN,SSIM" and lines[1].startswith("f,") and len(lines) == 2
    out_json = tmp_path / "scores.json"
    assert main(["metrics", *_triple(tmp_path), "--metrics", "EN", "--json", "-o", str(out_json)]) == 0
    assert set(json.loads(out_json.read_text())) == {"EN"}


def test_metrics_folder_mode_honours_json(tmp_path, capsys):
    from bench.cli import main

    for d, seed in (("A", 0), ("B", 1), ("F", 2)):
        _png(tmp_path / d / "p0.png", _gradient(seed))
    assert main(["metrics", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--f", str(tmp_path / "F"),
                 "--metrics", "EN", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["p0"]) == {"EN"}


def test_metrics_refuses_images_and_folders_together(tmp_path, capsys):
    from bench.cli import main

    a, b, f = _triple(tmp_path)
    assert main(["metrics", a, b, f, "--a", str(tmp_path), "--b", str(tmp_path), "--f", str(tmp_path)]) == 2
    assert "not both" in capsys.readouterr().err


def test_metrics_refuses_an_existing_output_before_scoring(tmp_path, capsys):
    from bench.cli import main

    out = tmp_path / "scores.csv"
    out.write_text("mine\n")
    # the sources do not exist: the output must be refused before anything is read or scored
    assert main(["metrics", "--a", str(tmp_path / "A"), "--b", str(tmp_path / "B"), "--f", str(tmp_path / "F"),
                 "-o", str(out)]) == 2
    assert "already exists (use --force" in capsys.readouterr().err and out.read_text() == "mine\n"


# --- one-line errors for bad files and paths ----------------------------------------------------------------

def test_fuse_into_an_existing_folder_with_force_is_one_line(tmp_path, capsys):
    from bench.cli import main

    a, b, _ = _triple(tmp_path)
    (tmp_path / "outdir").mkdir()
    assert main(["fuse", a, b, "-o", str(tmp_path / "outdir"), "--force", "--method", "average"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder" in err


def test_run_out_naming_a_file_is_one_line(tmp_path):
    registry = phantom_registry(tmp_path, ["average"])
    out = tmp_path / "results.txt"
    out.write_text("mine\n")
    with pytest.raises(UserError, match="is a file, not a run folder"):
        run_suite("s", out=out, registry=registry, jobs=1)
    assert out.read_text() == "mine\n"


def test_npz_holding_an_object_array_is_one_line(tmp_path):
    from methods.sr import load_dictionary

    bad = tmp_path / "d.npz"
    np.savez(bad, D=np.array([None, 1], dtype=object))
    with pytest.raises(UserError, match=r"d\.npz: holds an object array"):
        load_dictionary(bad)


@pytest.mark.parametrize("text,message", [
    ("- a\n- b\n", "must be a mapping of names to entries at the top level, not a list"),
    ("datasets:\n  x: [1\nsuites: {}\n", r"not valid YAML at line 3, column 7: expected .,. or .\]."),
])
def test_datasets_yaml_errors_are_one_line_with_the_place(tmp_path, text, message):
    path = tmp_path / "datasets.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as caught:
        Registry(path)
    assert "\n" not in str(caught.value)


def _weights_file(tmp_path, metadata):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "g.safetensors"
    save_file({"w": torch.zeros(64, 64)}, str(path), metadata=metadata)
    return path


def test_truncated_safetensors_is_reported_as_truncated_not_pickled(tmp_path):
    from methods.densegan.checkpoint import load_weights

    path = _weights_file(tmp_path, {"generator_config": "{}"})
    whole = path.read_bytes()
    for keep in (len(whole) - 100, 20):           # cut in the data, cut in the header
        path.write_bytes(whole[:keep])
        with pytest.raises(UserError, match="truncated safetensors file") as caught:
            load_weights(path)
        assert "pickled" not in str(caught.value)


def test_safetensors_metadata_that_is_not_json_is_one_line(tmp_path):
    from methods.densegan.checkpoint import load_generator

    path = _weights_file(tmp_path, {"generator_config": "{not json"})
    with pytest.raises(UserError, match="generator_config in the safetensors metadata is not valid JSON"):
        load_generator(path)


# --- integer depths ----------------------------------------------------------------------------------------

def test_32_bit_integer_tiff_is_refused_and_16_bit_is_divided_by_65535(tmp_path):
    from PIL import Image

    from common.io import read_image

    dark = np.full((8, 8), 200, dtype=np.uint16)
    dark[0, 0] = 100
    Image.fromarray(dark).save(tmp_path / "d16.tif")
    assert read_image(tmp_path / "d16.tif").max() == pytest.approx(200 / 65535)   # not 200/255
    Image.fromarray(dark.astype(np.int32)).save(tmp_path / "d32.tif")
    with pytest.raises(UserError, match="32-bit integer image; save it as 8- or 16-bit"):
        read_image(tmp_path / "d32.tif")
