"""Optimizers, learning-rate schedules and parameter groups used by the segmentation papers.

Parameter groups give parameters whose path (e.g. `head/classifier/bias`) matches a pattern
their own learning-rate and weight-decay multipliers, as Caffe's `lr_mult`/`decay_mult` and
PyTorch's parameter groups do.
"""

import re
from typing import Any

import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict

SCHEDULES = ("poly", "cosine", "step", "constant")


def poly_schedule(
    base_lr: float, total_steps: int, power: float = 0.9, warmup_steps: int = 0
) -> optax.Schedule:
    """`base_lr * (1 - step / total_steps) ** power` (DeepLab's and PSPNet's "poly" policy).

    An optional linear warm-up over the first `warmup_steps` steps. The remaining fraction is
    clipped at 0: under jit XLA turns `step / total_steps` into a multiplication by the
    reciprocal, so at `total_steps` it can come out a hair below 0, and a negative base to a
    fractional power is NaN (optax's polynomial schedule has that NaN past its last step).
    """
    decay_steps = max(total_steps - warmup_steps, 1)

    def poly(step: jax.Array) -> jax.Array:
        remaining = jnp.clip(1.0 - step / decay_steps, 0.0, 1.0)
        return base_lr * remaining**power

    return with_warmup(poly, base_lr, warmup_steps)


def with_warmup(schedule: optax.Schedule, base_lr: float, warmup_steps: int) -> optax.Schedule:
    """`schedule` preceded by a linear warm-up from 0 to `base_lr` over `warmup_steps` steps."""
    if warmup_steps <= 0:
        return schedule
    warmup = optax.linear_schedule(0.0, base_lr, warmup_steps)
    return optax.join_schedules([warmup, schedule], [warmup_steps])


def make_schedule(config: ConfigDict) -> optax.Schedule:
    """The schedule `config.lr_schedule` names, after `config.warmup_steps` of linear warm-up.

    `poly`: power `lr_power` to 0 at the last update; `cosine`: to 0 at the last update; `step`:
    times `lr_step_factor` every `lr_step_every` updates (Caffe's "step" policy); `constant`.
    Steps count optimizer updates: `num_steps // grad_accum_steps`.
    """
    lr, warmup = config.lr, config.warmup_steps
    total = config.num_steps // config.grad_accum_steps
    decay_steps = max(total - warmup, 1)
    if config.lr_schedule == "poly":
        return poly_schedule(lr, total, config.lr_power, warmup)
    if config.lr_schedule == "cosine":
        schedule = optax.cosine_decay_schedule(lr, decay_steps)
    elif config.lr_schedule == "step":
        if config.lr_step_every <= 0:
            raise ValueError("config.lr_schedule='step' needs config.lr_step_every > 0")
        schedule = optax.exponential_decay(
            lr, config.lr_step_every, config.lr_step_factor, staircase=True
        )
    elif config.lr_schedule == "constant":
        schedule = optax.constant_schedule(lr)
    else:
        raise ValueError(
            f"config.lr_schedule={config.lr_schedule!r}: expected one of {', '.join(SCHEDULES)}"
        )
    return with_warmup(schedule, lr, warmup)


def parameter_path(path) -> str:
    """`a/b/kernel` for a pytree key path, the form `config.param_groups` patterns match."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def group_labels(
    params: Any, groups: tuple, decay_norm_and_bias: bool = True, frozen: tuple = ()
) -> Any:
    """Label each parameter with the name of its group (its pattern, `default` or `frozen`).

    `groups` are `(pattern, lr_multiplier, weight_decay_multiplier)`; the first pattern found
    (`re.search`) in a parameter's path wins, others get `(1, 1)`. Without
    `decay_norm_and_bias`, parameters with fewer than 2 dimensions (biases, BatchNorm scales)
    get no weight decay. Parameters matching a `frozen` pattern are labelled `frozen`. A
    pattern that matches no parameter is an error.
    """
    frozen_patterns = [re.compile(pattern) for pattern in frozen]
    compiled = [re.compile(pattern) for pattern, _, _ in groups]
    used = set()

    def label(path, leaf) -> str:
        name = parameter_path(path)
        for pattern in frozen_patterns:
            if pattern.search(name):
                used.add(pattern.pattern)
                return "frozen"
        group = "default"
        for pattern in compiled:
            if pattern.search(name):
                group = pattern.pattern
                used.add(group)
                break
        if not decay_norm_and_bias and len(leaf.shape) < 2:
            group = f"{group} (no decay)"
        return group

    labels = jax.tree_util.tree_map_with_path(label, params)
    for pattern in frozen_patterns + compiled:
        if pattern.pattern not in used:
            example = parameter_path(jax.tree_util.tree_flatten_with_path(params)[0][0][0])
            raise ValueError(
                f"config.param_groups/frozen_params pattern {pattern.pattern!r} matches no "
                "parameter; "
                f"paths look like {example!r}"
            )
    return labels


def _base_optimizer(
    config: ConfigDict, schedule: optax.Schedule, lr_mult: float, decay_mult: float
) -> optax.GradientTransformation:
    """`config.optimizer` at `lr_mult` times `schedule` and `decay_mult` times the decay."""
    lr = schedule if lr_mult == 1.0 else (lambda step: lr_mult * schedule(step))
    weight_decay = config.weight_decay * decay_mult
    if config.optimizer == "sgd":
        parts = [optax.add_decayed_weights(weight_decay)] if weight_decay > 0 else []
        return optax.chain(*parts, optax.sgd(lr, momentum=config.momentum or None))
    if config.optimizer == "adamw":
        return optax.adamw(lr, weight_decay=weight_decay)
    raise ValueError(f"config.optimizer={config.optimizer!r}: expected 'sgd' or 'adamw'")


def make_optimizer(config: ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """SGD with momentum and L2 weight decay folded into the gradient, as PyTorch's SGD does,
    or AdamW; per parameter group (`config.param_groups`, `decay_norm_and_bias`) when set.

    Reads `config.optimizer` (`sgd` or `adamw`), `lr`, `momentum`, `weight_decay`, the schedule
    fields (`make_schedule`), `grad_clip_norm` (0 disables), `frozen_params` (patterns of
    parameters never updated) and `grad_accum_steps`: with k > 1, `optax.MultiSteps` averages
    the gradients of k consecutive steps and updates once, so a batch of `batch_size` per step
    trains as a global batch of k * `batch_size`. BatchNorm statistics are still those of
    each micro-batch (and running statistics move every micro-step). The partial sum lives in
    the optimizer state, so a checkpoint taken mid-cycle resumes exactly.
    """
    schedule = make_schedule(config)
    parts = []
    if config.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
    groups, frozen = tuple(config.param_groups), tuple(config.frozen_params)
    if not groups and not frozen and config.decay_norm_and_bias:
        parts.append(_base_optimizer(config, schedule, 1.0, 1.0))
    else:

        def labels(params):
            return group_labels(params, groups, config.decay_norm_and_bias, frozen)

        # Every label that could occur, so `multi_transform` has a transform for each.
        transforms = {}
        for group, lr_mult, decay_mult in [("default", 1.0, 1.0), *groups]:
            transforms[group] = _base_optimizer(config, schedule, lr_mult, decay_mult)
            transforms[f"{group} (no decay)"] = _base_optimizer(config, schedule, lr_mult, 0.0)
        transforms["frozen"] = optax.set_to_zero()
        parts.append(optax.multi_transform(transforms, labels))
    tx = optax.chain(*parts)
    if config.grad_accum_steps > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=config.grad_accum_steps)
        tx = tx.gradient_transformation()
    return tx, schedule
