"""``python -m bench.studies.peers_parity``: the deep peers against the authors' own outputs in ``../shared/peers``.

For each method and Harvard task, fuses the test pairs through ``methods.fuse`` (as a suite does), quantises
as ``write_image`` does and compares with ``../shared/peers/outputs/<method>/<task>/<name>.png``: the share of
pixels within one grey level (the issue's bar: 99.9 %), the largest difference and the lowest per-pair
PSNR (GeSeNet's bar: 40 dB). The weights are read from ``../shared/peers/weights`` through the same cache
loader a user's copy goes through. ``--pairs N`` takes the first N pairs per task.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError, report_user_error

SHARED = Path(os.environ.get("FUSION_SHARED", Path(__file__).resolve().parents[3] / "shared"))
TASKS = {"CT-MRI": "CT", "PET-MRI": "PET", "SPECT-MRI": "SPECT"}
METHODS = ("ifcnn", "densefuse", "matr", "gesenet")


@dataclass
class Parity:
    pairs: int
    within_one: float        # share of pixel values within one grey level
    worst: int               # largest difference, grey levels
    lowest_psnr: float       # dB, lowest over pairs (inf: identical)


def parity(method: str, task: str, limit: int | None = None, shared: Path = SHARED, **params) -> Parity:
    """Our ``method`` against the authors' outputs on the first ``limit`` (default all) test pairs of ``task``."""
    import methods
    from common.io import read_image, to_uint8

    folder = shared / "peers" / "outputs" / method / task
    if not folder.is_dir():
        raise UserError(f"authors' outputs not found at {folder}")
    refs = sorted(folder.glob("*.png"))[:limit]
    harvard = shared / "data" / "harvard" / task / "test"
    close = total = worst = 0
    lowest = np.inf
    for ref in refs:
        a, b = read_image(harvard / TASKS[task] / ref.name), read_image(harvard / "MRI" / ref.name)
        diff = np.abs(to_uint8(methods.fuse(a, b, method, **params)).astype(int) - to_uint8(read_image(ref)))
        close += int((diff <= 1).sum())
        total += diff.size
        worst = max(worst, int(diff.max()))
        mse = float(np.mean(diff.astype(float) ** 2))
        lowest = min(lowest, 10 * np.log10(255 ** 2 / mse) if mse else np.inf)
    return Parity(len(refs), close / total, worst, lowest)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.peers_parity", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--pairs", type=int, default=None, help="first N pairs per task (default: all 24)")
    args = parser.parse_args(argv)
    from methods.pretrained import CACHE_ENV
    os.environ[CACHE_ENV] = str(SHARED / "peers" / "weights")
    try:
        print(f"{'method':<10} {'task':<10} {'pairs':>5} {'within 1':>9} {'max diff':>8} {'min PSNR dB':>11}")
        for method in args.methods.split(","):
            for task in TASKS:
                p = parity(method, task, args.pairs)
                print(f"{method:<10} {task:<10} {p.pairs:>5} {100 * p.within_one:>8.3f}% {p.worst:>8} "
                      f"{p.lowest_psnr:>11.1f}", flush=True)
    except UserError as exc:
        return report_user_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
