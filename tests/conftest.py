"""Shared pytest fixtures: the location of the real reference data in `shared/`."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The folder of genuine VOC/CamVid data and pydensecrf fixtures; tests skip without it."""
    path = Path(os.environ.get("JAXSEG_SHARED_DIR", REPO_ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.skip(f"reference data folder {path} not found (set JAXSEG_SHARED_DIR)")
    return path
