"""Shared plumbing of the command-line tools: flag parsing with one-line override errors and
multi-host start-up."""

import difflib
import sys
import threading
from collections.abc import Callable, Sequence

import jax
from absl import app, flags
from ml_collections import config_flags

from jaxseg import errors, host_memory

flags.DEFINE_bool(
    "distributed",
    False,
    "Call jax.distributed.initialize() (multi-host); arguments below or "
    "the cluster's environment (SLURM, TPU pod, ...) say where the coordinator is.",
)
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (with --distributed).")
flags.DEFINE_integer("num_processes", None, "Number of processes (with --distributed).")
flags.DEFINE_integer("process_id", None, "This process's index (with --distributed).")
flags.DEFINE_integer(
    "initialization_timeout", 300, "Seconds to wait for every process to join (--distributed)."
)
flags.DEFINE_integer(
    "heartbeat_timeout", 100, "Seconds without a heartbeat before a process counts as dead."
)


def run(main: Callable[[list[str]], None], argv: Sequence[str]) -> None:
    """`absl.app.run(main)` on `argv` (preset names resolved by `configs.resolve_argv`) with a
    bad `--config.FIELD` override reported in one line; host memory is kept for reuse
    (`host_memory`) before the first computation starts XLA's threads."""
    host_memory.keep_freed_memory()
    app.run(main, argv=list(argv), flags_parser=_parse_flags)


def _parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.exit(f"error: {error}; see --help")
    except (AttributeError, KeyError, TypeError) as error:  # ml_collections: unknown field
        unknown = _unknown_override(argv, _preset_alone(argv))
        if unknown:
            sys.exit(f"error: bad --config override: {unknown}")
        detail = str(error.args[0] if error.args else error).replace("\n", " ").strip("'")
        sys.exit(f"error: bad --config override: {detail}")


def _preset_alone(argv: Sequence[str]) -> object:
    """The config `--config=` names, loaded without the overrides that failed to apply."""
    preset_argv = [argv[0], *(arg for arg in argv if arg.startswith("--config="))]
    fresh = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, flag_values=fresh, sys_argv=preset_argv)
    fresh(preset_argv)
    return fresh.config


def _unknown_override(argv: Sequence[str], config: object) -> str | None:
    """Names the first `--config.A.B=...` whose field the config lacks, and the valid fields."""
    if config is None:
        return None
    for arg in argv:
        if not arg.startswith("--config."):
            continue
        parent, prefix = config, "config"
        for key in arg.removeprefix("--config.").split("=")[0].split("."):
            if not hasattr(parent, "keys"):
                return f"{prefix} is a value, not a group of fields"
            if key not in parent:
                close = difflib.get_close_matches(key, list(parent.keys()), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                valid = ", ".join(sorted(parent.keys()))
                return f"{prefix} has no field {key!r}{hint}; its fields are: {valid}"
            parent, prefix = parent[key], f"{prefix}.{key}"
    return None


_ABORT_GRACE_S = 30
"""The coordination client aborts the process (no Python error) when joining times out; it
is given this much longer than our own timer, which exits first with a readable message."""


def initialize_distributed() -> None:
    """Join the multi-host job when `--distributed` is given; a no-op otherwise.

    A process that cannot reach every other one within `--initialization_timeout` exits
    with a message naming the coordinator.
    """
    flag_values = flags.FLAGS
    if not flag_values.distributed:
        return
    # CPU processes need a collectives backend to form one global device mesh.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    timeout = flag_values.initialization_timeout
    message = (
        f"error: process {flag_values.process_id} could not join the "
        f"{flag_values.num_processes} processes of coordinator {flag_values.coordinator_address} "
        f"within --initialization_timeout={timeout} s; start every process (same command, each "
        "with its --process_id), or check the address and port"
    )
    watchdog = threading.Timer(timeout, errors.exit_now, args=(message,))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(
            coordinator_address=flag_values.coordinator_address,
            num_processes=flag_values.num_processes,
            process_id=flag_values.process_id,
            initialization_timeout=timeout + _ABORT_GRACE_S,
            heartbeat_timeout_seconds=flag_values.heartbeat_timeout,
        )
    except Exception as error:  # e.g. an address that does not parse
        errors.exit_now(f"{message} ({errors.first_line(error)})")
    finally:
        watchdog.cancel()
