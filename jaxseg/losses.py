"""Segmentation losses: pixel-wise cross-entropy that ignores label 255, plus auxiliary heads."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

IGNORE_LABEL = 255


def split_outputs(outputs) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Return `(logits, aux_logits)` from a model's output, which is logits or a tuple of them."""
    if isinstance(outputs, tuple | list):
        return outputs[0], tuple(outputs[1:])
    return outputs, ()


def cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    ignore_label: int = IGNORE_LABEL,
    class_weights: Sequence[float] | None = None,
) -> jax.Array:
    """Mean cross-entropy over non-ignored pixels, as `torch.nn.CrossEntropyLoss(ignore_index=...)`.

    With `class_weights` the mean is weighted by the weight of each pixel's class, as PyTorch
    does. Returns 0 when every pixel is ignored.
    """
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    valid = labels != ignore_label
    safe_labels = jnp.where(valid, labels, 0)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    # A one-hot product, not a gather: its gradient is dense, not a scatter-add.
    nll = -jnp.sum(log_probs * jax.nn.one_hot(safe_labels, logits.shape[-1]), axis=-1)
    weights = valid.astype(jnp.float32)
    if class_weights is not None:
        weights = weights * jnp.asarray(class_weights, jnp.float32)[safe_labels]
    return jnp.sum(nll * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def segmentation_loss(
    outputs,
    labels: jax.Array,
    *,
    aux_weight: float = 0.4,
    ignore_label: int = IGNORE_LABEL,
    class_weights: Sequence[float] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Main cross-entropy plus `aux_weight` times each auxiliary head's (PSPNet uses 0.4).

    Returns the total loss and a dict of its parts for logging.
    """
    logits, aux = split_outputs(outputs)
    main = cross_entropy(logits, labels, ignore_label=ignore_label, class_weights=class_weights)
    parts = {"loss_main": main}
    total = main
    for i, aux_logits in enumerate(aux):
        aux_loss = cross_entropy(
            aux_logits, labels, ignore_label=ignore_label, class_weights=class_weights
        )
        parts[f"loss_aux{i}"] = aux_loss
        total = total + aux_weight * aux_loss
    return total, parts
