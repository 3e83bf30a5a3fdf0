"""The package as a wheel: built, installed into a fresh virtual environment, and used from another folder
(``bench list`` finds datasets.yaml, ``fuse`` runs a classical method and densegan with the shipped weights)."""
import site
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO


def sysconfig_paths() -> list[str]:
    return [p for p in site.getsitepackages() if Path(p).is_dir()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(REPO)], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{built.stderr[-2000:]}")
    wheel = next((tmp / "dist").glob("fusionbench-*.whl"))
    env = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    # the test environment's packages (torch, numpy, ...) are reused through a path entry (its .pth files,
    # the editable install of this checkout among them, are not run); the project itself comes from the wheel
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "test_environment.pth").write_text("\n".join(sysconfig_paths()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                    str(wheel)], check=True, capture_output=True)
    work = tmp / "elsewhere"
    work.mkdir()
    return python, work


def test_wheel_lists_and_fuses_from_another_folder(installed):
    python, work = installed
    where = subprocess.run([str(python), "-c", "import bench; print(bench.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True).stdout
    assert str(REPO) not in where and "site-packages" in where         # the installed copy, not the checkout
    listed = subprocess.run([str(python), "-m", "bench", "list", "suites"], cwd=work, capture_output=True,
                            text=True)
    assert listed.returncode == 0, listed.stderr
    assert "mrgad_mrt2" in listed.stdout
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)).save(work / name)
    for method in ("dwt", "densegan"):
        done = subprocess.run([str(python), "-m", "bench", "fuse", "a.png", "b.png", "-o", f"{method}.png",
                               "--method", method], cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        fused = np.asarray(Image.open(work / f"{method}.png"))
        assert fused.shape == (64, 64) and fused.std() > 1
