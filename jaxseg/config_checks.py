"""Checks of config values that would otherwise fail late or train wrongly without a word.

Each check raises ValueError naming the field and what to give instead, before anything is
written to the workdir.
"""

import math
from collections.abc import Sequence

from jax.sharding import Mesh
from ml_collections import ConfigDict

from jaxseg import sharding


def check_scales(scales: Sequence[float], field: str) -> None:
    """Every test-time scale must be a positive finite number."""
    bad = [s for s in scales if not (isinstance(s, int | float) and math.isfinite(s) and s > 0)]
    if not scales or bad:
        raise ValueError(f"{field}={tuple(scales)}: every scale must be a number above 0")


def check_eval_config(config: ConfigDict, mesh: Mesh) -> None:
    """Evaluation settings that would crash the first evaluation."""
    sharding.check_batch_divisible(config.eval.batch_size, mesh, "config.eval.batch_size")
    check_scales(config.eval.scales, "config.eval.scales")


def normalized_class_weights(config: ConfigDict, num_classes: int) -> tuple[float, ...] | None:
    """`config.class_weights` checked against the dataset's class count.

    `--config.class_weights=None` reaches the config as `(None,)`; it means no weights.
    """
    weights = config.class_weights
    if weights is None or all(w is None for w in weights):
        return None
    if len(weights) != num_classes:
        raise ValueError(
            f"config.class_weights has {len(weights)} values but dataset {config.dataset!r} has "
            f"{num_classes} classes; give one weight per class, in class order"
        )
    bad = [w for w in weights if not (isinstance(w, int | float) and math.isfinite(w) and w >= 0)]
    if bad or not any(weights):
        raise ValueError(
            f"config.class_weights={tuple(weights)}: weights must be finite, non-negative "
            "numbers, not all zero"
        )
    return tuple(float(w) for w in weights)


def check_training_config(config: ConfigDict, num_classes: int, mesh: Mesh) -> None:
    """Everything `train_and_evaluate` can check before it writes anything; a `class_weights`
    of `(None,)` is reset to None."""
    if config.num_steps < 1:
        raise ValueError(f"config.num_steps={config.num_steps}: give a positive number of steps")
    for field in ("log_every", "checkpoint_every", "keep_checkpoints"):
        if config[field] < 1:
            raise ValueError(f"config.{field}={config[field]}: give a positive number")
    sharding.check_batch_divisible(config.batch_size, mesh)
    if config.eval_every:
        check_eval_config(config, mesh)
    config.class_weights = normalized_class_weights(config, num_classes)
