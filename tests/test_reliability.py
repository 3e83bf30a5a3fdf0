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
from bench.errors import UserError
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
    phantom_registry(tmp_path, ["dwt", "lp", "gff", "llf_ioi"], pairs=12, size=96)
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
        while len(list(out.glob("fused/*/*/*.png"))) < 3:
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
