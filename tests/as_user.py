"""What a user does, for the tests that check what a user sees: run one of the repository's
scripts, or prepare a dataset through TFDS's standard call."""

import subprocess
import sys
from pathlib import Path

import tensorflow_datasets as tfds

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python *args` from the repository root, finished within 120 s, output captured as text."""
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env
    )


def prepare_with_tfds(
    name: str, data_dir: Path, manual_dir: Path | None
) -> tfds.core.DatasetBuilder:
    """Dataset `name` prepared in `data_dir` from the archives in `manual_dir` by the standard
    TFDS call, as a user would make it."""
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder
