"""Optimizers and learning-rate schedules used by the segmentation papers."""

import optax
from ml_collections import ConfigDict


def poly_schedule(
    base_lr: float, total_steps: int, power: float = 0.9, warmup_steps: int = 0
) -> optax.Schedule:
    """`base_lr * (1 - step / total_steps) ** power` (DeepLab's and PSPNet's "poly" policy).

    An optional linear warm-up over the first `warmup_steps` steps.
    """
    decay_steps = max(total_steps - warmup_steps, 1)
    poly = optax.polynomial_schedule(base_lr, 0.0, power, decay_steps)
    if warmup_steps <= 0:
        return poly
    warmup = optax.linear_schedule(0.0, base_lr, warmup_steps)
    return optax.join_schedules([warmup, poly], [warmup_steps])


def make_optimizer(config: ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """SGD with momentum and L2 weight decay folded into the gradient, as PyTorch's SGD does.

    Reads `config.optimizer` (`sgd` or `adamw`), `lr`, `momentum`, `weight_decay`,
    `lr_power`, `warmup_steps`, `num_steps`, `grad_clip_norm` (0 disables).
    """
    schedule = poly_schedule(config.lr, config.num_steps, config.lr_power, config.warmup_steps)
    parts = []
    if config.grad_clip_norm > 0:
        parts.append(optax.clip_by_global_norm(config.grad_clip_norm))
    if config.optimizer == "sgd":
        if config.weight_decay > 0:
            parts.append(optax.add_decayed_weights(config.weight_decay))
        parts.append(optax.sgd(schedule, momentum=config.momentum or None))
    elif config.optimizer == "adamw":
        parts.append(optax.adamw(schedule, weight_decay=config.weight_decay))
    else:
        raise ValueError(f"config.optimizer={config.optimizer!r}: expected 'sgd' or 'adamw'")
    return optax.chain(*parts), schedule
