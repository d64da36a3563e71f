"""Initial weights for training: a converted or earlier checkpoint, or an ImageNet backbone."""

import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from ml_collections import ConfigDict

from jaxseg import checkpoint
from jaxseg.convert import load_backbone

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


def _merge_variables(params: dict, stats: dict, source: dict, where: str) -> tuple[dict, dict]:
    """Copy matching params and BatchNorm statistics of `source`; warn about what was kept."""
    params, kept = merge_matching(params, source["params"], where=where)
    if source["batch_stats"]:
        stats, kept_stats = merge_matching(stats, source["batch_stats"], where=where)
        kept += kept_stats
    if kept:
        log.warning("kept initial values for %d weights not in %s (missing or another shape): "
                    "%s", len(kept), where, ", ".join(kept[:5]))
    return params, stats


def load_initial_weights(state: Any, config: ConfigDict) -> Any:
    """Apply `config.init_from` (checkpoint folder) or `config.backbone_init` (PyTorch file)."""
    if config.init_from:
        variables = checkpoint.load_variables(config.init_from)
        params, stats = _merge_variables(state.params, state.batch_stats, variables,
                                         config.init_from)
        state = state.replace(params=params, batch_stats=stats)
    if config.backbone_init:
        params, stats = _merge_variables(
            state.params["backbone"], state.batch_stats["backbone"],
            load_backbone(config.backbone_init), config.backbone_init,
        )
        state = state.replace(
            params={**state.params, "backbone": params},
            batch_stats={**state.batch_stats, "backbone": stats},
        )
    if state.ema_params:  # the average starts from the loaded weights (a copy: no aliasing)
        state = state.replace(ema_params=jax.tree.map(jnp.copy, state.params))
    return state
