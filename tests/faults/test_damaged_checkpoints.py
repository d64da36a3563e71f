"""Damaged checkpoint steps (truncated, emptied, missing metadata, silently altered) are moved
aside with a warning naming them; training and evaluation fall back to the newest intact step."""

import logging
import shutil

import jax
import numpy as np
import pytest

from jaxseg import checkpoint
from jaxseg.train import train_and_evaluate
from tests.faults.conftest import STEPS, assert_same_params, tiny_config


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A finished run with steps 2, 4 and 6 saved."""
    workdir = tmp_path_factory.mktemp("saved")
    train_and_evaluate(tiny_config(checkpoint_every=2, log_every=2), workdir)
    return workdir


def _largest_data_file(step_dir):
    return max(
        (p for p in (step_dir / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )


def _truncate(step_dir):
    path = _largest_data_file(step_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(step_dir):
    shutil.rmtree(step_dir)
    step_dir.mkdir()


def _drop_metadata(step_dir):
    (step_dir / "state" / "_METADATA").unlink()


def _flip_4kb(step_dir):
    path = _largest_data_file(step_dir)
    data = bytearray(path.read_bytes())
    start = max(len(data) // 2 - 2048, 0)
    for i in range(start, min(start + 4096, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {"truncated": _truncate, "emptied": _empty, "no_metadata": _drop_metadata,
           "bit_flipped": _flip_4kb}  # fmt: skip


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def _damaged_copy(saved_run, tmp_path, damage):
    workdir = tmp_path / "run"
    shutil.copytree(saved_run, workdir)
    DAMAGES[damage](workdir / "checkpoints" / str(STEPS))
    return workdir


@pytest.mark.parametrize("damage", DAMAGES)
def test_training_resumes_from_the_newest_intact_step(
    saved_run, tmp_path, damage, caplog, reference_params
):
    workdir = _damaged_copy(saved_run, tmp_path, damage)
    with caplog.at_level(logging.WARNING, logger="jaxseg.checkpoint"):
        train_and_evaluate(tiny_config(checkpoint_every=2, log_every=2), workdir)
    moved = workdir / checkpoint.DAMAGED_DIR / str(STEPS)
    assert moved.is_dir(), "the damaged step must be kept, out of the way"
    assert str(workdir / "checkpoints" / str(STEPS)) in caplog.text and str(moved) in caplog.text
    assert (workdir / "checkpoints" / str(STEPS) / checkpoint.CHECKSUMS).is_file()
    assert_same_params(workdir, reference_params)


@pytest.mark.parametrize("damage", ["bit_flipped", "emptied"])
def test_evaluation_loads_the_newest_intact_step(saved_run, tmp_path, damage, caplog):
    workdir = _damaged_copy(saved_run, tmp_path, damage)
    with caplog.at_level(logging.WARNING, logger="jaxseg.checkpoint"):
        variables = checkpoint.load_variables(workdir)
    expected = checkpoint.load_variables(saved_run, step=STEPS - 2)
    for got, want in zip(_leaves(variables), _leaves(expected), strict=True):
        np.testing.assert_array_equal(got, want)
    assert f"checkpoints/{STEPS} is damaged" in caplog.text
    assert (workdir / checkpoint.DAMAGED_DIR / str(STEPS)).is_dir()


def test_intact_steps_pass_their_checksums(saved_run):
    for step in (2, 4, 6):
        assert checkpoint.damage(saved_run / "checkpoints" / str(step)) is None
