"""Shared plumbing of the command-line tools: config names, distributed start-up, clean errors."""

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
from absl import flags

from jaxseg.data import DatasetNotPreparedError

CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"

flags.DEFINE_bool(
    "distributed", False, "Call jax.distributed.initialize() (multi-host); arguments below or "
    "the cluster's environment (SLURM, TPU pod, ...) say where the coordinator is."
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")


def resolve_config_argv(argv: Sequence[str], configs_dir: Path = CONFIGS_DIR) -> list[str]:
    """Rewrite `--config=NAME[:ARGS]` to the preset file `configs/NAME.py[:ARGS]`.

    Paths (anything ending in `.py` before the optional `:ARGS`) are left alone. An unknown
    name exits with the list of presets.
    """
    resolved = []
    for arg in argv:
        if arg.startswith("--config="):
            value = arg.split("=", 1)[1]
            name, sep, rest = value.partition(":")
            if not name.endswith(".py"):
                path = configs_dir / f"{name}.py"
                if not path.exists():
                    files = configs_dir.glob("*.py")
                    presets = sorted(p.stem for p in files if p.stem not in ("__init__", "base"))
                    sys.exit(
                        f"error: --config={value}: no preset {path}; "
                        f"presets: {', '.join(presets)}"
                    )
                arg = f"--config={path}{sep}{rest}"
        resolved.append(arg)
    return resolved


def initialize_distributed() -> None:
    """Join the multi-host job when `--distributed` is given; a no-op otherwise."""
    flag_values = flags.FLAGS
    if flag_values.distributed:
        # CPU processes need a collectives backend to form one global device mesh.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=flag_values.coordinator_address,
            num_processes=flag_values.num_processes,
            process_id=flag_values.process_id,
        )


def run_with_clean_errors(fn: Callable[[], object]) -> object:
    """Run `fn`; errors caused by the user's data or setup print one message, not a traceback.

    Set JAXSEG_TRACEBACK=1 to see the full traceback instead.
    """
    logging.getLogger("absl").setLevel(logging.WARNING)
    if os.environ.get("JAXSEG_TRACEBACK"):
        return fn()
    try:
        return fn()
    except (DatasetNotPreparedError, FileNotFoundError, ValueError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
