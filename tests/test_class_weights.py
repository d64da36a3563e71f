"""Class weights: SegNet's median frequency and ENet's inverse log frequency on hand-built
counts, and `python -m jaxseg.data class-weights` printing an override the config accepts."""

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

from configs import quickstart
from jaxseg import data
from jaxseg.config_checks import normalized_class_weights
from jaxseg.data import class_weights

REPO = Path(__file__).resolve().parents[1]

# Class 3 never occurs. Class 0 fills 600 of the 1000 labelled pixels of the images it is in,
# class 1 100 of 500, class 2 300 of 600; 1000 labelled pixels in all.
COUNTS = class_weights.PixelCounts(
    pixels=np.array([600, 100, 300, 0]), image_pixels=np.array([1000, 500, 600, 0])
)


def test_median_frequency_balancing():
    # freq = 0.6, 0.2, 0.5; median 0.5.
    weights = class_weights.median_frequency(COUNTS)
    np.testing.assert_allclose(weights, [0.5 / 0.6, 0.5 / 0.2, 1.0, 0.0])


def test_inverse_log_frequency():
    weights = class_weights.inverse_log_frequency(COUNTS)
    expected = [1 / np.log(1.02 + p) for p in (0.6, 0.1, 0.3)] + [0.0]
    np.testing.assert_allclose(weights, expected)


def test_counts_leave_out_ignored_pixels():
    first = np.array([[0, 0, 255], [1, 1, 255]], np.uint8)
    second = np.array([[0, 2, 2, 2]], np.uint8)
    counts = class_weights.count_pixels([first, second], num_classes=4)
    np.testing.assert_array_equal(counts.pixels, [3, 2, 3, 0])
    np.testing.assert_array_equal(counts.image_pixels, [8, 4, 4, 0])
    np.testing.assert_array_equal(counts.absent, [3])


def test_unknown_method_names_the_methods():
    with pytest.raises(ValueError, match="median_frequency, inverse_log_frequency"):
        class_weights.class_weights(COUNTS, "median")


def _accepted_by_the_config(override: str) -> tuple[float, ...]:
    """The weights of `override` as the shell hands it to `train.py`, parsed and checked."""
    argv = ["train.py", *shlex.split(override)]
    flag_values = flags.FlagValues()
    config_flags.DEFINE_config_dict(
        "config", quickstart.get_config(), flag_values=flag_values, sys_argv=argv
    )
    flag_values(argv)
    config = flag_values.config
    config.dataset = "shapes/tiny"
    return normalized_class_weights(config, data.dataset_info("shapes/tiny")[0])


def test_cli_prints_one_weight_per_class_as_a_config_override():
    command = [sys.executable, "-m", "jaxseg.data", "class-weights", "shapes/tiny"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()  # after TFDS's lines when it generates shapes
    header = next(i for i, line in enumerate(lines) if line.startswith("class "))
    *rows, override = lines[header + 1 :]
    source = data.load_source("shapes/tiny", "train")
    assert [row.split()[0] for row in rows] == list(source.class_names)
    counts = class_weights.count_pixels(source.masks(), source.num_classes)
    expected = class_weights.median_frequency(counts)
    np.testing.assert_allclose(_accepted_by_the_config(override), expected, rtol=1e-3)
