"""Train the perceptual loss's feature network: the dense-block GAN's encoder-decoder as an autoencoder.

    python -m bench.autoencoder [--steps 1000] [--lr 1e-4] [--threads 1] [--out methods/weights/densegan-autoencoder.safetensors]

DenseFuse's first stage on the Harvard case-wise train parts (``methods/densegan/perceptual.py``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.errors import UserError, report_user_error


def main(argv=None) -> int:
    from methods.densegan.perceptual import WEIGHTS

    parser = argparse.ArgumentParser(prog="python -m bench.autoencoder", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (DenseFuse's 1e-4)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.steps < 1:
            raise UserError(f"--steps must be at least 1, got {args.steps}")
        import torch

        from bench.training import registry_datasets
        from methods.densegan.perceptual import train_autoencoder
        torch.set_num_threads(args.threads)
        print(f"wrote {train_autoencoder(args.out, registry_datasets, args.steps, lr=args.lr)}")
    except UserError as exc:
        return report_user_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
