"""One-line errors instead of tracebacks for what the user's data, setup or signals cause."""

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax


class StoppedEarlyError(Exception):
    """Training stopped early on a signal, after saving the step it reached."""

    def __init__(self, signum: int, step: int, checkpoint_dir: str | Path):
        self.signum, self.step = signum, step
        super().__init__(
            f"stopped early at step {step} on signal {signum}; step {step} is saved in "
            f"{checkpoint_dir}: rerun the same command to resume"
        )


class UnknownOptionError(TypeError):
    """An option a registered model does not have: a typo in a config, spec or override."""


def first_line(error: BaseException) -> str:
    """The start of an error's message, for one-line reports."""
    return str(error).strip().split("\n", 1)[0][:300]


def exit_now(message: str, code: int = 1) -> None:
    """Print `message` and exit at once, skipping the multi-host shutdown barrier that would
    otherwise wait for processes that are gone."""
    print(message, file=sys.stderr, flush=True)
    logging.shutdown()
    os._exit(code)


def run_with_clean_errors(fn: Callable[[], object]) -> object:
    """Run `fn`; errors caused by the user's data or setup print one message, not a traceback.

    A run stopped by a signal exits with 128 + the signal's number, as a killed process
    would, so schedulers do not record it as finished. Set JAXSEG_TRACEBACK=1 to see the full
    traceback instead.
    """
    logging.getLogger("absl").setLevel(logging.WARNING)
    if os.environ.get("JAXSEG_TRACEBACK"):
        return fn()
    try:
        return fn()
    except StoppedEarlyError as error:
        print(f"stopped: {error}", file=sys.stderr)
        sys.exit(128 + error.signum)
    # FileNotFoundError includes jaxseg.data.DatasetNotPreparedError.
    except (FileNotFoundError, ValueError, FloatingPointError) as error:
        sys.exit(f"error: {error}")
    except OSError as error:
        sys.exit(f"error: {error}; choose a folder you can write to, or fix its permissions")
    except UnknownOptionError as error:
        sys.exit(f"error: config.model_kwargs: {error}")
    except jax.errors.JaxRuntimeError as error:
        if jax.process_count() == 1:
            raise
        exit_now(
            f"error: process {jax.process_index()} lost contact with another process "
            f"({first_line(error)}); the newest checkpoint is kept: restart every process "
            "with the same command to resume"
        )
