"""Start-up stays light: importing the registries and the command line pulls in no torch and no
scipy.signal (they load when a method first needs them), so ``bench list`` and ``--help`` start fast."""
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("module", ["methods", "metrics", "bench.cli"])
def test_import_loads_no_heavy_library(module):
    code = (f"import sys, {module}\n"
            "heavy = sorted(m for m in ('torch', 'scipy.signal', 'matplotlib.pyplot') if m in sys.modules)\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {module} loaded {out.stdout.strip()}"


def test_listing_methods_loads_no_torch():
    code = "import sys\nfrom bench.cli import main\nmain(['list', 'methods'])\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
