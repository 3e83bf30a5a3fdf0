"""Command-line options of ``bench train``, without importing torch.

``bench/cli.py`` builds its parser on every call; keeping these options in a torch-free module keeps
``python -m bench list`` and friends fast.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``bench train`` (all but --method, which the caller adds)."""
    parser.add_argument("--config", type=Path, help="config YAML (default methods/configs/<method>.yaml)")
    parser.add_argument("--profile", default="cpu", help="profile in the config: cpu (default) or paper")
    parser.add_argument("--dataset", help="training dataset(s), comma-separated (overrides data.datasets)")
    parser.add_argument("--epochs", type=int, help="number of epochs (overrides train.epochs)")
    parser.add_argument("--out", type=Path, help="run folder (default runs/<method>-<profile>)")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    parser.add_argument("--data-root", type=Path,
                        help="folder holding harvard/ etc. (default $FUSION_DATA_ROOT, then ../shared/data)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config value, e.g. --set data.patch_size=96 (repeatable)")
    return parser
