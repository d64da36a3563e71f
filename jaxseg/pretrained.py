"""Initial weights for training: a converted or earlier checkpoint, or an ImageNet backbone."""

import logging
from typing import Any

import jax
import numpy as np
from flax import traverse_util
from ml_collections import ConfigDict

from jaxseg import checkpoint

log = logging.getLogger(__name__)


def merge_matching(target: dict, source: dict, *, where: str) -> tuple[dict, list[str]]:
    """Copy every leaf of `source` into `target` where the path and shape match.

    Leaves of `target` that `source` lacks or that differ in shape (e.g. a classifier for
    another number of classes) keep their initial values; their paths are returned. A source
    that matches nothing at all is an error naming `where`.
    """
    flat_target = traverse_util.flatten_dict(target, sep="/")
    flat_source = traverse_util.flatten_dict(source, sep="/")
    kept, copied = [], 0
    for path, value in flat_target.items():
        incoming = flat_source.get(path)
        if incoming is not None and np.shape(incoming) == np.shape(value):
            flat_target[path] = jax.device_put(
                np.asarray(incoming, dtype=value.dtype), value.sharding
            )
            copied += 1
        else:
            kept.append(path)
    if copied == 0:
        example = next(iter(flat_source), "<empty>")
        raise ValueError(
            f"{where}: no weight matches this model (first weight there: {example!r}); is it "
            "a checkpoint of another architecture?"
        )
    return traverse_util.unflatten_dict(flat_target, sep="/"), kept


def load_initial_weights(state: Any, config: ConfigDict, model) -> Any:
    """Apply `config.init_from` (checkpoint folder) or `config.backbone_init` (PyTorch file)."""
    if config.init_from:
        variables = checkpoint.load_variables(config.init_from)
        params, kept = merge_matching(state.params, variables["params"], where=config.init_from)
        stats, _ = merge_matching(
            state.batch_stats, variables["batch_stats"], where=config.init_from
        ) if variables["batch_stats"] else (state.batch_stats, [])
        if kept:
            log.warning("kept initial values for %d weights not in %s: %s", len(kept),
                        config.init_from, ", ".join(kept[:5]))
        state = state.replace(params=params, batch_stats=stats)
    if config.backbone_init:
        from jaxseg.convert import load_backbone

        backbone = load_backbone(config.backbone_init)
        params, _ = merge_matching(
            state.params["backbone"], backbone["params"], where=config.backbone_init
        )
        stats, _ = merge_matching(
            state.batch_stats["backbone"], backbone["batch_stats"], where=config.backbone_init
        )
        state = state.replace(
            params={**state.params, "backbone": params},
            batch_stats={**state.batch_stats, "backbone": stats},
        )
    return state
