"""Training: train state, the jit-compiled step over a device mesh, and the resumable loop.

The loop reads top to bottom: set up (model, optimizer, mesh, data), restore (state and data
position from the latest checkpoint), loop (step, log, evaluate, checkpoint), save. Rerunning
the same command after a crash or a kill continues from the last checkpoint at the same
step and data position; on CPU the result equals an uninterrupted run bit for bit. A stop
signal saves the step reached, on every process together, and raises `StoppedEarlyError`.
"""

import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from ml_collections import ConfigDict
from tqdm import tqdm

from jaxseg import checkpoint, data, losses, optim, sharding
from jaxseg.build import build_model
from jaxseg.config_checks import check_training_config
from jaxseg.data import pipeline
from jaxseg.data.labels import IGNORE_LABEL
from jaxseg.errors import StoppedEarlyError
from jaxseg.evaluate import EvalOptions, Evaluator
from jaxseg.models import ModelSpec
from jaxseg.nn import norm
from jaxseg.pretrained import load_initial_weights
from jaxseg.summary import SummaryWriter

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; nothing from that step on is saved."""


@flax.struct.dataclass
class TrainState:
    """Everything a resumed run needs besides the data position."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    ema_params: Any  # exponential moving average of `params`; {} when config.ema_decay is 0

    @property
    def variables(self) -> dict:
        """The model variables in the form `module.apply` takes."""
        return {"params": self.params, "batch_stats": self.batch_stats}

    def eval_variables(self, use_ema: bool) -> dict:
        """The variables to evaluate: with `use_ema`, the averaged parameters when kept."""
        params = self.ema_params if use_ema and self.ema_params else self.params
        return {"params": params, "batch_stats": self.batch_stats}


def create_train_state(
    model, tx: optax.GradientTransformation, config: ConfigDict, mesh
) -> tuple[TrainState, Any]:
    """Initialise parameters, BatchNorm statistics and optimizer state, replicated on `mesh`.

    Shapes come from `jax.eval_shape`, then a jitted init writes them straight into their
    shardings. Returns the state and its shardings (the train step keeps them).
    """
    dummy = jnp.zeros((1, *pipeline.as_size(config.crop_size), 3), jnp.float32)

    def init(rng: jax.Array) -> TrainState:
        param_rng, state_rng = jax.random.split(rng)
        variables = model.init({"params": param_rng, "dropout": param_rng}, dummy, train=False)
        params = variables["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
            rng=state_rng,
            ema_params=params if config.ema_decay > 0 else {},
        )

    rng = jax.random.PRNGKey(config.seed)
    abstract = jax.eval_shape(init, rng)
    shardings = jax.tree.map(lambda _: sharding.replicated(mesh), abstract)
    return jax.jit(init, out_shardings=shardings)(rng), shardings


def make_train_step(
    model, tx: optax.GradientTransformation, schedule: optax.Schedule, config: ConfigDict,
    state_shardings: Any, mesh,
) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    """A jitted SGD step on a global batch; the incoming state's buffers are donated."""
    pixel_loss = losses.pixel_loss_from_config(config)

    def step_fn(state: TrainState, batch: dict) -> tuple[TrainState, dict]:
        dropout_rng = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params):
            with norm.frozen_statistics(not config.train_batch_norm):
                outputs, updates = model.apply(
                    {"params": params, "batch_stats": state.batch_stats},
                    batch["image"],
                    train=True,
                    mutable=["batch_stats"],
                    rngs={"dropout": dropout_rng},
                )
            loss, parts = losses.segmentation_loss(
                outputs, batch["label"], aux_weight=config.aux_weight, pixel_loss=pixel_loss
            )
            logits, _ = losses.split_outputs(outputs)
            return loss, (parts, updates.get("batch_stats", {}), logits)

        (loss, (parts, batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema_params = state.ema_params
        if config.ema_decay > 0:  # ema = decay * ema + (1 - decay) * params
            ema_params = optax.incremental_update(params, ema_params, 1.0 - config.ema_decay)
        labelled = batch["label"] != IGNORE_LABEL
        correct = (jnp.argmax(logits, -1) == batch["label"]) & labelled
        metrics = {
            "loss": loss,
            **parts,
            "lr": schedule(state.step),
            "grad_norm": optax.tree.norm(grads),
            "pixel_accuracy": correct.sum() / jnp.maximum(labelled.sum(), 1),
        }
        new_state = state.replace(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state,
            ema_params=ema_params,
        )
        return new_state, metrics

    return jax.jit(
        step_fn,
        in_shardings=(state_shardings, sharding.batch_sharded(mesh)),
        out_shardings=(state_shardings, sharding.replicated(mesh)),
        donate_argnums=0,
    )


class _StopRequest:
    """Records SIGTERM/SIGINT so the loop can checkpoint and exit cleanly between steps.

    With several processes the flag is all-gathered at sync points (log, save and evaluation
    steps), so every process stops, and saves, at the same step.
    """

    def __init__(self):
        self.signum = 0
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        log.warning("received signal %d: saving a checkpoint and stopping", signum)
        self.signum = signum

    def agreed(self, sync_point: bool) -> int:
        """The signal any process received (0 for none), the same on every process."""
        if jax.process_count() == 1:
            return self.signum
        if not sync_point:
            return 0
        return int(np.max(multihost_utils.process_allgather(np.int32(self.signum))))

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@jax.jit
def _first_non_finite(first: jax.Array, loss: jax.Array, params: Any, step: jax.Array):
    finite = jnp.isfinite(loss) & jnp.all(
        jnp.stack([jnp.isfinite(leaf).all() for leaf in jax.tree.leaves(params)])
    )
    return jnp.where((first < 0) & ~finite, step, first)


class _FiniteWatch:
    """Notes on device the first step whose loss or updated parameters are not finite: every
    step is checked without waiting for the device; the host reads the result only before
    logging or saving."""

    def __init__(self):
        self.first = -1

    def update(self, loss: jax.Array, params: Any, step: int) -> None:
        self.first = _first_non_finite(self.first, loss, params, step)

    def check(self, manager) -> None:
        first = int(jax.device_get(self.first))
        if first < 0:
            return
        saved = manager.latest_step()
        where = (
            f"the last good checkpoint, step {saved} in {manager.directory}, predates it"
            if saved is not None
            else "no checkpoint was saved before it"
        )
        then = "resume" if saved is not None else "start again"
        raise NonFiniteLossError(
            f"the loss or the parameters became NaN or infinite at step {first}; nothing from "
            f"that step on was saved and {where}. Lower config.lr or set "
            f"config.grad_clip_norm, then rerun the same command to {then}."
        )


@contextlib.contextmanager
def _closing(manager, writer: SummaryWriter):
    """Wait for the pending save and close on the way out, errors included, so the last step
    saved is on disk before an error is reported; not after a lost peer, which would never
    join the save."""
    peer_lost = False
    try:
        yield
    except jax.errors.JaxRuntimeError:
        peer_lost = jax.process_count() > 1
        raise
    finally:
        if not peer_lost:
            manager.wait_until_finished()
            manager.close()
            writer.close()


def train_and_evaluate(config: ConfigDict, workdir: str | Path) -> dict:
    """Train `config` in `workdir`, resuming from its newest intact checkpoint; returns final
    metrics. Raises `StoppedEarlyError` after saving when a stop signal arrives."""
    workdir = Path(workdir)
    is_main = jax.process_index() == 0

    # Set up; nothing is written to the workdir until the config and data have been checked.
    num_classes, class_names = data.dataset_info(config.dataset)
    mesh = sharding.make_mesh(config.num_devices)
    check_training_config(config, num_classes, mesh)
    train_source = data.load_source(config.dataset, config.train_split, config.data_dir)
    eval_source = None
    if config.eval_every:
        eval_source = data.load_source(config.dataset, config.eval_split, config.data_dir)
    model = build_model(config, num_classes)
    tx, schedule = optim.make_optimizer(config)
    state, state_shardings = create_train_state(model, tx, config, mesh)
    train_step = make_train_step(model, tx, schedule, config, state_shardings, mesh)
    dataset = pipeline.train_dataset(
        train_source,
        global_batch_size=config.batch_size,
        crop_size=config.crop_size,
        scale_range=tuple(config.scale_range),
        flip=config.flip,
        photometric=config.photometric,
        cat_max_ratio=config.cat_max_ratio,
        seed=config.seed,
        num_workers=config.num_workers,
    )
    data_iter = iter(dataset)
    workdir.mkdir(parents=True, exist_ok=True)
    if is_main:
        checkpoint.write_model_spec(workdir, ModelSpec.from_config(config, num_classes))
    manager = checkpoint.make_manager(workdir / "checkpoints", keep=config.keep_checkpoints)

    # Restore, or start from pretrained weights.
    restored = checkpoint.restore(manager, checkpoint.abstract_like(state), data_iter)
    if restored is not None:
        state = restored
        log.info("resumed from step %d", int(state.step))
    else:
        state = load_initial_weights(state, config)
    start = int(state.step)

    evaluator = None
    if eval_source is not None:
        options = EvalOptions.from_config(config)
        evaluator = Evaluator(model, options, mesh, eval_source, class_names)
    writer = SummaryWriter(workdir / "tensorboard", enabled=is_main)

    # Loop. Each step is saved before it is evaluated, so a failing evaluation loses nothing.
    history, stopped, finite = {}, 0, _FiniteWatch()
    with _closing(manager, writer), _StopRequest() as stop, tqdm(
        total=config.num_steps, initial=start, desc="train", unit="step", disable=not is_main
    ) as progress:
        for step in range(start + 1, config.num_steps + 1):
            batch = sharding.to_global(next(data_iter), mesh)
            state, metrics = train_step(state, batch)
            finite.update(metrics["loss"], state.params, step)
            progress.update(1)
            last = step == config.num_steps
            log_now = step % config.log_every == 0 or last
            eval_now = evaluator is not None and (step % config.eval_every == 0 or last)
            periodic_save = step % config.checkpoint_every == 0 or last
            # A stop at the last step changes nothing: the run is finishing anyway.
            stopped = 0 if last else stop.agreed(sync_point=log_now or periodic_save or eval_now)
            if log_now or periodic_save or stopped:
                finite.check(manager)
            if log_now:
                # Fetched only here, so the host prepares the next batch while the device
                # is still computing this step.
                metrics = jax.device_get(metrics)
                progress.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}")
                writer.scalars(step, {f"train/{k}": v for k, v in metrics.items()})
            if periodic_save or stopped:
                checkpoint.save(manager, step, state, data_iter)
            if eval_now and not stopped:
                history = evaluator.run(state.eval_variables(config.eval.use_ema))
                writer.evaluation(step, history, evaluator.panels)
                stopped = 0 if last else stop.agreed(sync_point=True)
                if stopped and not periodic_save:
                    checkpoint.save(manager, step, state, data_iter)
            if stopped:
                break
    if stopped:
        raise StoppedEarlyError(stopped, int(state.step), manager.directory)
    return {"step": int(state.step), **history}
