"""Render the phantom contact sheet: rows are slice indices, columns the six modalities.

Usage: ``python -m bench.make_contact_sheet [-o PATH] [--indices 0 1 2] [--seed 0] [--size 256]``
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from common.io import write_bytes

from bench.phantom import MODALITIES, phantom_anatomy, render

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "reports" / "figures" / "phantom_contact_sheet.png"


def make_contact_sheet(path: Path, indices=(0, 1, 2), *, seed: int = 0, size: int = 256) -> Path:
    """Draw ``len(indices)`` rows by six modality columns to ``path`` (PNG) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(indices), len(MODALITIES), figsize=(2.0 * len(MODALITIES), 2.1 * len(indices)),
                             squeeze=False, facecolor="black")
    for row, index in enumerate(indices):
        fractions = phantom_anatomy(index, seed=seed, size=size)
        for col, modality in enumerate(MODALITIES):
            image = render(modality, fractions, seed=seed, index=index)
            ax = axes[row, col]
            ax.imshow(image if image.ndim == 3 else np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"{modality}  #{index}", color="white", fontsize=8, pad=2)
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.95, wspace=0.02, hspace=0.12)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, facecolor="black")
    plt.close(fig)
    # A 256-colour palette keeps the committed PNG small (noise defeats lossless compression).
    buffer.seek(0)
    with Image.open(buffer) as sheet:
        quantised = sheet.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    quantised.save(out, format="PNG", optimize=True)
    write_bytes(path, out.getvalue())
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="PNG to write")
    parser.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2], help="slice indices (rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    print(make_contact_sheet(args.output, tuple(args.indices), seed=args.seed, size=args.size))


if __name__ == "__main__":
    main()
