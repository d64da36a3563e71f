"""Training: a real step and config/CLI errors (stops and resumes: tests/faults)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from configs import quickstart
from jaxseg import checkpoint, data, sharding
from jaxseg.data import pipeline
from tests.as_user import run_script
from tests.models.harness import class_entropy, training_pieces

REPO = Path(__file__).resolve().parents[1]
# The quick-start model shrunk for tests of the training machinery: narrow and one block per
# stage, which compiles in about two thirds of the time of the full-depth narrow one.
TINY_MODEL = {"width": 4, "head_features": 8, "stage_sizes": (1, 1, 1, 1)}
TINY_MODEL_FLAGS = [f"--config.model_kwargs.{name}={value}" for name, value in TINY_MODEL.items()]
TINY = [
    *TINY_MODEL_FLAGS,
    "--config.dataset=shapes/tiny",
    "--config.crop_size=48",
    "--config.batch_size=2",
    "--config.eval_every=0",
    "--config.log_every=1",
]


def _tiny_config():
    config = quickstart.get_config()
    config.model_kwargs.update(TINY_MODEL)
    config.dataset, config.crop_size, config.batch_size, config.num_steps = "shapes/tiny", 48, 2, 10
    return config


def fixed_batch_training(config):
    """`harness.training_pieces` for `config`'s dataset, with one host batch of its train split
    and that batch on the mesh: (model, initial state, jitted step, host batch, global batch)."""
    model, state, step, mesh = training_pieces(config, data.dataset_info(config.dataset)[0])
    source = data.load_source(config.dataset, "train")
    batch = next(iter(pipeline.train_dataset(
        source, global_batch_size=config.batch_size, crop_size=config.crop_size
    )))  # fmt: skip
    return model, state, step, batch, sharding.to_global(batch, mesh)


def test_train_steps_fit_a_fixed_batch_beyond_its_class_prior():
    """Thirty real steps on one batch bring the loss below the batch's class entropy, the
    least any prediction blind to the pixels can reach; the step reports every metric."""
    config = _tiny_config()
    config.num_steps, config.lr = 30, 0.05
    _, state, step, host_batch, batch = fixed_batch_training(config)
    losses = []
    for _ in range(config.num_steps):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss_main"]))
    assert int(state.step) == config.num_steps
    assert np.isfinite(losses).all()
    assert min(losses) < class_entropy(np.asarray(host_batch["label"])) < losses[0], losses
    assert {"loss_main", "loss_aux0", "lr", "grad_norm", "pixel_accuracy"} <= set(metrics)


def _train_command(workdir: Path, steps: int, data_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(REPO / "train.py"),
        "--config=quickstart",
        f"--workdir={workdir}",
        f"--config.num_steps={steps}",
        "--config.checkpoint_every=3",
        f"--config.data_dir={data_dir}",
        *TINY,
    ]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _flat_params(workdir: Path) -> dict:
    variables = checkpoint.load_variables(workdir)
    return {
        jax.tree_util.keystr(k): np.asarray(v)
        for k, v in jax.tree_util.tree_leaves_with_path(variables)
    }


def test_config_typo_is_an_error(tmp_path):
    result = run_script(
        "train.py", "--config=quickstart", f"--workdir={tmp_path}", "--config.learning_rate=0.1"
    )
    assert result.returncode != 0 and "learning_rate" in result.stderr


def test_unknown_preset_lists_the_presets(tmp_path):
    result = run_script("train.py", "--config=pspnett", f"--workdir={tmp_path}")
    assert result.returncode != 0
    assert "pspnett" in result.stderr and "quickstart" in result.stderr


def test_missing_voc_stops_with_preparation_instructions(tmp_path):
    env = {**os.environ, "JAXSEG_DATA_DIR": str(tmp_path / "empty")}
    result = run_script("train.py", "--config=pspnet", f"--workdir={tmp_path / 'run'}", env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "prepare" in result.stderr and "VOCtrainval_11-May-2012.tar" in result.stderr


def test_diverging_run_stops_and_keeps_only_finite_checkpoints(tmp_path):
    from jaxseg.train import NonFiniteLossError, train_and_evaluate

    config = _tiny_config()
    config.lr, config.num_steps, config.checkpoint_every, config.log_every = 1e9, 8, 1, 4
    config.eval_every = 0
    with pytest.raises(NonFiniteLossError, match=r"became NaN or infinite at step (\d+)") as error:
        train_and_evaluate(config, tmp_path)
    first_bad = int(re.search(r"at step (\d+)", str(error.value)).group(1))
    manager = checkpoint.make_manager(tmp_path / "checkpoints", async_save=False)
    steps = manager.all_steps()
    manager.close()
    # Every step is checked and saved, so exactly the newest good steps are kept.
    assert 1 < first_bad < config.num_steps, first_bad
    assert sorted(steps) == list(range(max(1, first_bad - config.keep_checkpoints), first_bad))
    variables = checkpoint.load_variables(tmp_path)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(variables))
