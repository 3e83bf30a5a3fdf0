"""Shared fixtures: where ``../shared`` is, and skips with a visible reason when it is absent."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FUSION_SHARED", REPO.parent / "shared"))
HARVARD = SHARED / "data" / "harvard"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def harvard_dir() -> Path:
    if not HARVARD.is_dir():
        pytest.skip(f"Harvard data not found at {HARVARD} (set FUSION_SHARED to the folder holding data/harvard)")
    return HARVARD


@pytest.fixture(scope="session")
def metric_reference_dir() -> Path:
    path = REFERENCE / "metrics"
    if not path.is_dir():
        pytest.skip(f"metric reference vectors not found at {path}")
    return path


@pytest.fixture(scope="session")
def baseline_reference_dir() -> Path:
    path = REFERENCE / "baselines"
    if not path.is_dir():
        pytest.skip(f"baseline reference outputs not found at {path}")
    return path
