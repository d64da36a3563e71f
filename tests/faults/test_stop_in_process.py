"""Stop signals and failures inside the training loop: the step reached is saved, the run
says it stopped early, and rerunning ends with the weights of an uninterrupted run."""

import signal

import jax
import numpy as np
import pytest

from jaxseg import checkpoint, train
from jaxseg.errors import StoppedEarlyError
from jaxseg.evaluate import Evaluator
from jaxseg.train import NonFiniteLossError, train_and_evaluate
from tests.faults.conftest import assert_same_params, tiny_config


def _saved_steps(workdir) -> list[int]:
    manager = checkpoint.make_manager(workdir / "checkpoints", async_save=False)
    steps = sorted(manager.all_steps())
    manager.close()
    return steps


def _signal_once(at_call: int):
    """A hook that raises SIGTERM in this process on its `at_call`-th call."""
    calls = []

    def hook():
        calls.append(None)
        if len(calls) == at_call:
            signal.raise_signal(signal.SIGTERM)

    return hook


def test_sigterm_at_a_log_step_saves_the_next_step(tmp_path, monkeypatch, reference_params):
    hook, scalars = _signal_once(2), train.SummaryWriter.scalars
    monkeypatch.setattr(
        train.SummaryWriter, "scalars", lambda self, *a: (hook(), scalars(self, *a))
    )
    with pytest.raises(StoppedEarlyError, match="stopped early at step 3 on signal 15") as stop:
        train_and_evaluate(tiny_config(checkpoint_every=100), tmp_path)
    assert stop.value.signum == signal.SIGTERM and "rerun the same command" in str(stop.value)
    assert _saved_steps(tmp_path) == [3]
    monkeypatch.undo()
    train_and_evaluate(tiny_config(checkpoint_every=100), tmp_path)
    assert_same_params(tmp_path, reference_params)


def test_sigterm_during_evaluation_saves_that_step(tmp_path, monkeypatch, reference_params):
    hook, run = _signal_once(1), Evaluator.run
    monkeypatch.setattr(Evaluator, "run", lambda self, *a, **k: (hook(), run(self, *a, **k))[1])
    with pytest.raises(StoppedEarlyError, match="at step 2 "):
        train_and_evaluate(tiny_config(eval_every=2, checkpoint_every=100), tmp_path)
    assert _saved_steps(tmp_path) == [2]
    monkeypatch.undo()
    train_and_evaluate(tiny_config(), tmp_path)
    assert_same_params(tmp_path, reference_params)


def test_sigterm_during_a_checkpoint_write_keeps_both_steps(
    tmp_path, monkeypatch, reference_params
):
    hook, save = _signal_once(1), checkpoint.save

    def save_then_signal(*args, **kwargs):
        saved = save(*args, **kwargs)  # the write goes on in the background
        hook()
        return saved

    monkeypatch.setattr(checkpoint, "save", save_then_signal)
    with pytest.raises(StoppedEarlyError, match="at step 4 "):
        train_and_evaluate(tiny_config(), tmp_path)
    assert _saved_steps(tmp_path) == [3, 4]
    monkeypatch.undo()
    train_and_evaluate(tiny_config(), tmp_path)
    assert_same_params(tmp_path, reference_params)


def test_failing_evaluation_keeps_the_step_it_evaluated(tmp_path, monkeypatch):
    def broken(self, *args, **kwargs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(Evaluator, "run", broken)
    with pytest.raises(RuntimeError, match="evaluation failed"):
        train_and_evaluate(tiny_config(eval_every=2, checkpoint_every=2), tmp_path)
    assert _saved_steps(tmp_path) == [2]


def _first_non_finite_step(config) -> int:
    """The first step whose loss or parameters are not finite, found by stepping by hand."""
    from jaxseg import data, optim, sharding
    from jaxseg.build import build_model
    from jaxseg.data import pipeline

    num_classes, _ = data.dataset_info(config.dataset)
    model, mesh = build_model(config, num_classes), sharding.make_mesh(1)
    tx, schedule = optim.make_optimizer(config)
    state, shardings = train.create_train_state(model, tx, config, mesh)
    step_fn = train.make_train_step(model, tx, schedule, config, shardings, mesh)
    batches = iter(pipeline.train_dataset(
        data.load_source(config.dataset, "train"), global_batch_size=config.batch_size,
        crop_size=config.crop_size, scale_range=tuple(config.scale_range), flip=config.flip,
        photometric=config.photometric, seed=config.seed,
    ))  # fmt: skip
    for step in range(1, config.num_steps + 1):
        state, metrics = step_fn(state, sharding.to_global(next(batches), mesh))
        leaves = [np.asarray(x) for x in jax.tree.leaves(state.params)]
        if not (np.isfinite(float(metrics["loss"])) and all(np.isfinite(x).all() for x in leaves)):
            return step
    raise AssertionError("the loss and the parameters stayed finite")


def test_non_finite_loss_names_its_step_and_what_was_saved(tmp_path):
    config = tiny_config(lr=1e9, log_every=100, checkpoint_every=100, num_steps=8)
    bad_step = _first_non_finite_step(config)
    with pytest.raises(NonFiniteLossError) as error:
        train_and_evaluate(config, tmp_path)
    assert f"at step {bad_step};" in str(error.value)
    assert "no checkpoint was saved before it" in str(error.value)
    assert _saved_steps(tmp_path) == []
