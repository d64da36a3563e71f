"""Shared pytest set-up: datasets in a throwaway folder, and the real reference data."""

import os
import shutil
import tempfile
from pathlib import Path

import jax
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


_RUN_DATA_DIR: list[str] = []


def pytest_configure(config):
    """Generated datasets go to a per-run folder, never the user's TFDS directory."""
    if "JAXSEG_DATA_DIR" not in os.environ:
        _RUN_DATA_DIR.append(tempfile.mkdtemp(prefix="jaxseg-tfds-"))
        os.environ["JAXSEG_DATA_DIR"] = _RUN_DATA_DIR[0]
    # The non-partitionable threefry compiles model initialisation several times faster on
    # CPU; tests need valid random weights, not the sharding-friendly stream.
    jax.config.update("jax_threefry_partitionable", False)


def pytest_unconfigure(config):
    """The per-run dataset folder goes when the run ends."""
    for path in _RUN_DATA_DIR:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The folder of genuine VOC/CamVid data and pydensecrf fixtures; tests skip without it."""
    path = Path(os.environ.get("JAXSEG_SHARED_DIR", REPO_ROOT.parent / "shared"))
    if not path.is_dir():
        pytest.skip(f"reference data folder {path} not found (set JAXSEG_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def torch():
    """PyTorch, for the tests that compare against it; they skip where it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def torchvision(torch):
    """torchvision, for the tests that compare against it; they skip where it is missing."""
    return pytest.importorskip("torchvision")


@pytest.fixture(scope="session")
def torch_reference(torch):
    """tests/torch_reference.py, which needs torch: tests that ask for it skip without."""
    from tests import torch_reference

    return torch_reference
