"""Orbax checkpoints of the train state together with the grain iterator position.

Saving is asynchronous and atomic (orbax writes to a temporary folder and renames it), so a
run killed mid-save leaves the previous checkpoint intact and a rerun resumes from it. Each
step also records the SHA-256 of its files before the rename; restoring verifies them and
moves a damaged step aside (to `damaged_checkpoints/` beside the checkpoint folder), falling
back to the newest intact one.
"""

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import grain
import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from jaxseg.models.spec import ModelSpec

log = logging.getLogger(__name__)

STATE = "state"
DATA = "data"
MODEL_SPEC = "model.json"
CHECKSUMS = "checksums.json"
DAMAGED_DIR = "damaged_checkpoints"
_ORBAX_METADATA = "_CHECKPOINT_METADATA"
_TMP_SUFFIX = ".orbax-checkpoint-tmp"


class _ChecksumRecorder:
    """Called by orbax once a step's files are complete, before the folder is renamed into
    place, so the checksums commit atomically with the step."""

    def __init__(self, directory: Path):
        self.directory, self.step = directory, None

    def __call__(self) -> None:
        if jax.process_index() != 0 or self.step is None:
            return
        pending = self.directory / f"{self.step}{_TMP_SUFFIX}"
        write_checksums(pending if pending.is_dir() else self.directory / str(self.step))


class _Manager(ocp.CheckpointManager):
    """orbax's manager with a checksum recorder; `blocking` makes `save` wait for the disk."""

    def __init__(self, directory: Path, *, keep: int, blocking: bool):
        self.recorder, self.blocking = _ChecksumRecorder(directory), blocking
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=True,
            async_options=ocp.AsyncOptions(post_finalization_callback=self.recorder),
        )
        super().__init__(directory, options=options, item_handlers=_item_handlers())


def make_manager(directory: str | Path, *, keep: int = 3, async_save: bool = True):
    """A `CheckpointManager` for `directory` keeping the `keep` most recent steps; with
    `async_save=False`, `save` returns once the step is on disk."""
    return _Manager(Path(directory).absolute(), keep=keep, blocking=not async_save)


def _item_handlers() -> dict:
    """How each item of a checkpoint is read and written: arrays, and grain's iterator state."""
    return {STATE: ocp.StandardCheckpointHandler(), DATA: grain.checkpoint.CheckpointHandler()}


def save(manager, step: int, state: Any, data_iterator=None, *, force: bool = False) -> bool:
    """Save `state` (a pytree of arrays) and, if given, the data iterator's position."""
    items = {STATE: ocp.args.StandardSave(state)}
    if data_iterator is not None:
        items[DATA] = grain.checkpoint.CheckpointSave(data_iterator)
    manager.wait_until_finished()  # the recorder names one step at a time
    manager.recorder.step = step
    saved = manager.save(step, args=ocp.args.Composite(**items), force=force)
    if manager.blocking:
        manager.wait_until_finished()
    return saved


def _digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def write_checksums(step_dir: Path) -> None:
    """Record the SHA-256 of every file of the items in `step_dir`."""
    files = sorted(p for p in step_dir.rglob("*") if p.is_file() and p.parent != step_dir)
    sums = {str(p.relative_to(step_dir)): _digest(p) for p in files}
    (step_dir / CHECKSUMS).write_text(json.dumps(sums, indent=1, sort_keys=True))


def damage(step_dir: Path) -> str | None:
    """Why the saved step in `step_dir` cannot be trusted, or None when it is intact."""
    if not (step_dir / _ORBAX_METADATA).is_file():
        return f"{_ORBAX_METADATA} is missing (an empty or partial step folder)"
    try:
        sums = json.loads((step_dir / CHECKSUMS).read_text())
    except FileNotFoundError:
        return f"{CHECKSUMS} is missing (the save did not finish)"
    except ValueError:
        return f"{CHECKSUMS} is unreadable"
    for name, digest in sums.items():
        path = step_dir / name
        if not path.is_file():
            return f"{name} is missing"
        if _digest(path) != digest:
            return f"{name} does not match its recorded checksum (the file was altered)"
    return None


def _step_dirs(directory: Path) -> list[Path]:
    """Step folders under `directory`, newest first."""
    steps = [p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(steps, key=lambda p: int(p.name), reverse=True)


def _set_aside(step_dir: Path, reason: str) -> Path:
    """Move a damaged step out of the checkpoint folder (never deleting it) and say so."""
    target_dir = step_dir.parent.parent / DAMAGED_DIR
    target_dir.mkdir(exist_ok=True)
    target, copy = target_dir / step_dir.name, 1
    while target.exists():
        target, copy = target_dir / f"{step_dir.name}.{copy}", copy + 1
    step_dir.rename(target)
    log.warning(
        "checkpoint step %s is damaged: %s; moved it to %s and fell back to the newest intact step",
        step_dir,
        reason,
        target,
    )
    return target


def latest_intact_step(manager) -> int | None:
    """The newest step whose files pass `damage`; damaged newer steps are moved aside first.

    Folders whose steps carry no checksums at all (written before checksums were recorded)
    are trusted as they are. Every process checks; process 0 moves, then all re-read.
    """
    directory = Path(manager.directory)
    steps = _step_dirs(directory) if directory.is_dir() else []
    if not any((p / CHECKSUMS).is_file() for p in steps):
        return int(steps[0].name) if steps else None
    intact, damaged = None, []
    for step_dir in steps:
        reason = damage(step_dir)
        if reason is None:
            intact = int(step_dir.name)
            break
        damaged.append((step_dir, reason))
    if damaged:
        if jax.process_index() == 0:
            for step_dir, reason in damaged:
                _set_aside(step_dir, reason)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices("jaxseg: damaged checkpoints moved aside")
        manager.reload()
    return intact


def restore(manager, abstract_state: Any, data_iterator=None, step: int | None = None):
    """Restore the newest intact (or `step`) state into the shapes and shardings of
    `abstract_state`.

    The data iterator, when given and saved, is moved to the saved position in place.
    Returns the restored state, or None when the folder holds no checkpoint.
    """
    step = latest_intact_step(manager) if step is None else step
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


def write_model_spec(workdir: str | Path, spec: ModelSpec) -> None:
    """Record which registered model a checkpoint folder holds, so eval and predict rebuild it."""
    path = Path(workdir) / MODEL_SPEC
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec.to_json())


def read_model_spec(workdir: str | Path) -> ModelSpec:
    """The spec `write_model_spec` recorded; a missing one is a FileNotFoundError and an
    unreadable one a ValueError, each naming the file."""
    path = Path(workdir) / MODEL_SPEC
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: train into {workdir} first or convert weights into it "
            "(python -m jaxseg.convert ... --out DIR)"
        )
    try:
        return ModelSpec.from_json(path.read_text())
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path}: {error}") from error


def write_weights(workdir: str | Path, spec: ModelSpec, variables: dict) -> None:
    """Write `spec` and `variables` ({"params", "batch_stats"}) as step 0 of a new folder
    (what `jaxseg.convert` writes); a folder that holds checkpoints already is a ValueError."""
    directory = Path(workdir) / "checkpoints"
    if directory.exists() and any(directory.iterdir()):
        raise ValueError(f"{directory} already holds checkpoints; choose another folder")
    write_model_spec(workdir, spec)
    manager = make_manager(directory, keep=1, async_save=False)
    save(manager, 0, jax.device_put(variables), force=True)
    manager.wait_until_finished()
    manager.close()


def load_variables(
    workdir: str | Path, sharding=None, step: int | None = None, *, use_ema: bool = False
) -> dict:
    """`{"params", "batch_stats"}` of the newest intact (or `step`) checkpoint under `workdir`.

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
    step = None if manager is None else (latest_intact_step(manager) if step is None else step)
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
