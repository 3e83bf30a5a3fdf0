"""The README's figure: the first pair of a run's figure grid, scaled to 1400 px wide.

    python -m bench run --suite mrgad_mrt2 && python -m bench.readme_figure reports/mrgad_mrt2
"""
from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

import pandas as pd
from PIL import Image

from common.io import write_bytes
from bench.report import GRID_PAIRS

WIDTH = 1400


def readme_figure(run_dir: Path, out: Path = Path("reports/figures/example_grid.png")) -> Path:
    grid = sorted(Path(run_dir).glob("figures/grid_*.png"))
    if not grid:
        raise SystemExit(f"error: no figures/grid_*.png in {run_dir}")
    image = Image.open(grid[0]).convert("RGB")
    w, h = image.size
    dataset = grid[0].stem.removeprefix("grid_")
    results = pd.read_csv(Path(run_dir) / "results.csv")
    # the grid stacks one block of equal height per pair, at most GRID_PAIRS of them
    pairs = min(GRID_PAIRS, results.loc[results["dataset"] == dataset, "pair"].nunique())
    first = image.crop((0, 0, w, round(h / pairs)))
    first = first.resize((WIDTH, round(first.size[1] * WIDTH / w)), Image.LANCZOS)
    buffer = BytesIO()
    first.save(buffer, format="PNG", optimize=True)
    return write_bytes(out, buffer.getvalue())


if __name__ == "__main__":
    print(readme_figure(Path(sys.argv[1] if len(sys.argv) > 1 else "reports/mrgad_mrt2")))
