"""Orbax checkpoints of the train state together with the grain iterator position.

Saving is asynchronous and atomic (orbax writes to a temporary folder and renames it), so a
run killed mid-save leaves the previous checkpoint intact and a rerun resumes from it.
"""

import json
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp

STATE = "state"
DATA = "data"
MODEL_SPEC = "model.json"


def make_manager(directory: str | Path, *, keep: int = 3, async_save: bool = True):
    """A `CheckpointManager` for `directory` keeping the `keep` most recent steps."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save
    )
    return ocp.CheckpointManager(
        Path(directory).absolute(), options=options, item_handlers=_item_handlers()
    )


def _item_handlers() -> dict:
    """How each item of a checkpoint is read and written: arrays, and grain's iterator state."""
    return {STATE: ocp.StandardCheckpointHandler(), DATA: grain.checkpoint.CheckpointHandler()}


def save(manager, step: int, state: Any, data_iterator=None, *, force: bool = False) -> bool:
    """Save `state` (a pytree of arrays) and, if given, the data iterator's position."""
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None:
        items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
    return manager.save(step, args=ocp.args.Composite(**items), force=force)


def restore(manager, abstract_state: Any, data_iterator=None, step: int | None = None):
    """Restore the latest (or `step`) state into the shapes and shardings of `abstract_state`.

    The data iterator, when given and saved, is moved to the saved position in place.
    Returns the restored state, or None when the folder holds no checkpoint.
    """
    step = manager.latest_step() if step is None else step
    if step is None:
        return None
    items = {STATE: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None and DATA in _saved_items(manager, step):
        items[DATA] = grain.checkpoint.CheckpointRestore(data_iterator)
    return manager.restore(step, args=ocp.args.Composite(**items))[STATE]


def _saved_items(manager, step: int) -> set[str]:
    return {p.name for p in Path(manager.directory, str(step)).iterdir() if p.is_dir()}


def abstract_like(tree: Any) -> Any:
    """`ShapeDtypeStruct`s (with shardings) describing `tree`, as restore targets."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
        tree,
    )


def write_model_spec(workdir: str | Path, name: str, num_classes: int, kwargs: dict) -> None:
    """Record which registered model a checkpoint folder holds, so eval and predict rebuild it."""
    spec = {"name": name, "num_classes": num_classes, "kwargs": kwargs}
    path = Path(workdir) / MODEL_SPEC
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=2, sort_keys=True))


def read_model_spec(workdir: str | Path) -> dict | None:
    """The model spec written by `write_model_spec`, or None if the folder has none."""
    path = Path(workdir) / MODEL_SPEC
    return json.loads(path.read_text()) if path.exists() else None


def load_variables(
    workdir: str | Path, sharding=None, step: int | None = None, *, use_ema: bool = False
) -> dict:
    """`{"params", "batch_stats"}` of the latest (or `step`) checkpoint under `workdir`.

    Works for training folders and for folders written by `python -m jaxseg.convert`.
    Arrays are placed with `sharding` (replicated on the default device if None). With
    `use_ema`, the parameters are the moving average the checkpoint keeps, if it keeps one.
    """
    directory = Path(workdir) / "checkpoints"
    manager = (
        ocp.CheckpointManager(directory.absolute(), item_handlers=_item_handlers())
        if directory.is_dir()
        else None
    )
    step = None if manager is None else (manager.latest_step() if step is None else step)
    if step is None:
        raise FileNotFoundError(
            f"no checkpoint in {directory}: train first (python train.py --workdir={workdir}) "
            "or convert weights (python -m jaxseg.convert ... --out DIR)"
        )
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
        manager.item_metadata(step)[STATE],
    )
    restored = manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target))
    )
    manager.close()
    state = restored[STATE]
    params = state.get("ema_params") if use_ema and state.get("ema_params") else state["params"]
    return {"params": params, "batch_stats": state.get("batch_stats", {})}
