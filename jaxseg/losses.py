"""Segmentation losses that ignore label 255: cross-entropy, Dice, Lovasz-softmax, focal, OHEM.

Every loss takes logits (B, H, W, K) and integer labels (B, H, W) and returns a scalar; all are
jit-able with static shapes. `make_loss` combines a weighted list of them, as a config names it,
over the main and auxiliary heads.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from ml_collections import ConfigDict

from jaxseg.data.labels import IGNORE_LABEL


def split_outputs(outputs) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """Return `(logits, aux_logits)` from a model's output, which is logits or a tuple of them."""
    if isinstance(outputs, tuple | list):
        return outputs[0], tuple(outputs[1:])
    return outputs, ()


def _float32(logits: jax.Array) -> jax.Array:
    return logits.astype(jnp.promote_types(logits.dtype, jnp.float32))


def _one_hot_targets(labels: jax.Array, num_classes: int, ignore_index: int):
    """`(one_hot, valid)`: one-hot targets (zero rows where ignored) and the valid-pixel mask."""
    valid = labels != ignore_index
    one_hot = jax.nn.one_hot(jnp.where(valid, labels, 0), num_classes) * valid[..., None]
    return one_hot, valid


def _pixel_nll(logits: jax.Array, labels: jax.Array, ignore_index: int):
    """Per-pixel negative log-likelihood (0 where ignored) and the valid-pixel mask."""
    one_hot, valid = _one_hot_targets(labels, logits.shape[-1], ignore_index)
    # A one-hot product, not a gather: its gradient is dense, not a scatter-add.
    return -jnp.sum(jax.nn.log_softmax(_float32(logits), axis=-1) * one_hot, axis=-1), valid


def _weighted_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """Weighted mean, 0 when every weight is 0."""
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1e-12)


def _weighted_pixel_nll(
    logits: jax.Array,
    labels: jax.Array,
    ignore_index: int,
    class_weights: Sequence[float] | None,
    kept: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Per-pixel negative log-likelihood and its weight: the pixel's class weight (1 without
    `class_weights`) on the non-ignored pixels, or only on the `kept` ones, else 0."""
    nll, valid = _pixel_nll(logits, labels, ignore_index)
    mask = valid if kept is None else kept
    weights = mask.astype(jnp.float32)
    if class_weights is not None:
        weights = weights * jnp.asarray(class_weights, jnp.float32)[jnp.where(mask, labels, 0)]
    return nll, weights


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
    return _weighted_mean(*_weighted_pixel_nll(logits, labels, ignore_label, class_weights))


def dice_loss(
    logits: jax.Array,
    labels: jax.Array,
    *,
    ignore_index: int = IGNORE_LABEL,
    smooth: float = 0.0,
    eps: float = 1e-7,
) -> jax.Array:
    """Soft Dice loss of the softmax, averaged over classes; classes absent from `labels` add 0.

    As `segmentation_models_pytorch.losses.DiceLoss(mode="multiclass")`: intersections and
    cardinalities are summed over the whole batch.
    """
    probs = jax.nn.softmax(_float32(logits), axis=-1)
    one_hot, valid = _one_hot_targets(labels, logits.shape[-1], ignore_index)
    probs = probs * valid[..., None]
    axes = tuple(range(labels.ndim))
    intersection = jnp.sum(probs * one_hot, axis=axes)
    cardinality = jnp.sum(probs + one_hot, axis=axes)
    score = (2.0 * intersection + smooth) / jnp.maximum(cardinality + smooth, eps)
    present = jnp.sum(one_hot, axis=axes) > 0
    return jnp.mean((1.0 - score) * present)


def focal_loss(
    logits: jax.Array,
    labels: jax.Array,
    *,
    ignore_index: int = IGNORE_LABEL,
    gamma: float = 2.0,
    alpha: float | None = None,
) -> jax.Array:
    """Focal loss (arXiv 1708.02002) of each class's sigmoid, averaged over classes.

    As `segmentation_models_pytorch.losses.FocalLoss(mode="multiclass")`: per class, the mean
    over non-ignored pixels of `(1 - p_t) ** gamma * BCE`, optionally weighted by `alpha`.
    """
    logits = _float32(logits)
    one_hot, valid = _one_hot_targets(labels, logits.shape[-1], ignore_index)
    bce = jnp.maximum(logits, 0) - logits * one_hot + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    loss = (1.0 - jnp.exp(-bce)) ** gamma * bce
    if alpha is not None:
        loss = loss * (alpha * one_hot + (1.0 - alpha) * (1.0 - one_hot))
    return jnp.sum(loss * valid[..., None]) / jnp.maximum(jnp.sum(valid) * logits.shape[-1], 1)


def _lovasz_grad(fg_sorted: jax.Array) -> jax.Array:
    """Gradient of the Lovasz extension of the Jaccard loss at errors sorted descending (per
    column)."""
    total = jnp.sum(fg_sorted, axis=0)
    intersection = total - jnp.cumsum(fg_sorted, axis=0)
    union = total + jnp.cumsum(1.0 - fg_sorted, axis=0)
    jaccard = 1.0 - intersection / union
    return jnp.concatenate([jaccard[:1], jnp.diff(jaccard, axis=0)], axis=0)


def lovasz_softmax_loss(
    logits: jax.Array, labels: jax.Array, *, ignore_index: int = IGNORE_LABEL
) -> jax.Array:
    """Lovasz-softmax loss (arXiv 1705.08790) over the whole batch, averaged over present classes.

    As `segmentation_models_pytorch.losses.LovaszLoss(mode="multiclass")`. Ignored pixels are
    sorted after every valid one with zero error, so they change neither value nor gradient.
    """
    num_classes = logits.shape[-1]
    probs = jax.nn.softmax(_float32(logits), axis=-1).reshape(-1, num_classes)
    one_hot, valid = _one_hot_targets(labels.reshape(-1), num_classes, ignore_index)
    errors = jnp.abs(one_hot - probs) * valid[:, None]
    sort_key = jnp.where(valid[:, None], jax.lax.stop_gradient(errors), -1.0)
    order = jnp.argsort(-sort_key, axis=0)
    errors_sorted = jnp.take_along_axis(errors, order, axis=0)
    fg_sorted = jnp.take_along_axis(one_hot, order, axis=0)
    per_class = jnp.sum(errors_sorted * _lovasz_grad(fg_sorted), axis=0)
    present = jnp.sum(one_hot, axis=0) > 0
    return jnp.sum(per_class * present) / jnp.maximum(jnp.sum(present), 1)


def ohem_keep_mask(
    logits: jax.Array,
    labels: jax.Array,
    *,
    ignore_index: int = IGNORE_LABEL,
    thresh: float = 0.7,
    min_kept: int = 100_000,
) -> jax.Array:
    """Pixels mmsegmentation's `OHEMPixelSampler` keeps: target probability below `thresh`, or
    below the `min_kept * batch`-th smallest one if that is higher. Boolean (B, H, W)."""
    one_hot, valid = _one_hot_targets(labels, logits.shape[-1], ignore_index)
    probs = jax.nn.softmax(jax.lax.stop_gradient(_float32(logits)), axis=-1)
    target_prob = jnp.sum(probs * one_hot, axis=-1)
    sorted_probs = jnp.sort(jnp.where(valid, target_prob, jnp.inf).reshape(-1))
    num_valid = jnp.sum(valid)
    index = jnp.clip(jnp.minimum(min_kept * labels.shape[0], num_valid - 1), 0)
    min_threshold = jnp.where(num_valid > 0, sorted_probs[index], 0.0)
    return valid & (target_prob < jnp.maximum(min_threshold, thresh))


def ohem_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    ignore_index: int = IGNORE_LABEL,
    thresh: float = 0.7,
    min_kept: int = 100_000,
    class_weights: Sequence[float] | None = None,
) -> jax.Array:
    """Cross-entropy averaged over the hard pixels `ohem_keep_mask` selects (PSPNet/OCNet's OHEM).

    0 when no pixel is kept.
    """
    kept = ohem_keep_mask(
        logits, labels, ignore_index=ignore_index, thresh=thresh, min_kept=min_kept
    )
    return _weighted_mean(*_weighted_pixel_nll(logits, labels, ignore_index, class_weights, kept))


def top_k_cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    ignore_index: int = IGNORE_LABEL,
    top_k_percent: float = 0.25,
    class_weights: Sequence[float] | None = None,
) -> jax.Array:
    """TF DeepLab's `top_k_percent_pixels` hard-example mining: the mean of the largest
    `top_k_percent` of the batch's per-pixel losses (ignored pixels count as 0), over the
    nonzero ones among them."""
    if not 0.0 < top_k_percent <= 1.0:
        raise ValueError(f"top_k_percent={top_k_percent}: expected a fraction in (0, 1]")
    nll, weights = _weighted_pixel_nll(logits, labels, ignore_index, class_weights)
    pixel_losses = (nll * weights).reshape(-1)
    k = max(int(top_k_percent * pixel_losses.size), 1)
    top = jax.lax.top_k(pixel_losses, k)[0]
    return jnp.sum(top) / jnp.maximum(jnp.sum(top != 0.0), 1)


# `config.loss_options` field -> keyword argument, for the losses that take one.
_OPTIONS = {
    "dice_loss": {"dice_smooth": "smooth"},
    "focal_loss": {"focal_gamma": "gamma"},
    "ohem_cross_entropy": {"ohem_thresh": "thresh", "ohem_min_kept": "min_kept"},
    "top_k_cross_entropy": {"top_k_percent": "top_k_percent"},
}
LOSSES: dict[str, Callable] = {
    fn.__name__: fn
    for fn in (
        cross_entropy,
        dice_loss,
        lovasz_softmax_loss,
        focal_loss,
        ohem_cross_entropy,
        top_k_cross_entropy,
    )
}
_TAKES_CLASS_WEIGHTS = ("cross_entropy", "ohem_cross_entropy", "top_k_cross_entropy")


def pixel_loss_from_config(config: ConfigDict) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """`(logits, labels) -> scalar`: the weighted sum of `config.losses` `(name, weight)` pairs.

    `config.loss_options` holds each loss's settings; `config.class_weights` weights the
    cross-entropy forms.
    """
    terms = []
    for entry in config.losses:
        if len(entry) != 2 or entry[0] not in LOSSES:
            raise ValueError(
                f"config.losses entry {entry!r}: expected (name, weight) with name one of "
                f"{', '.join(LOSSES)}"
            )
        name, weight = entry
        options = _OPTIONS.get(name, {})
        kwargs = {arg: config.loss_options[field] for field, arg in options.items()}
        if name in _TAKES_CLASS_WEIGHTS and config.class_weights is not None:
            kwargs["class_weights"] = tuple(config.class_weights)
        terms.append((float(weight), LOSSES[name], kwargs))
    if not terms:
        raise ValueError("config.losses is empty: name at least one (name, weight) pair")

    def pixel_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
        return sum(weight * fn(logits, labels, **kwargs) for weight, fn, kwargs in terms)

    return pixel_loss


def segmentation_loss(
    outputs,
    labels: jax.Array,
    *,
    aux_weight: float = 0.4,
    ignore_label: int = IGNORE_LABEL,
    class_weights: Sequence[float] | None = None,
    pixel_loss: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Main head's loss plus `aux_weight` times each auxiliary head's (PSPNet uses 0.4).

    `pixel_loss` (default: cross-entropy with `class_weights`) scores each head. Returns the
    total loss and a dict of its parts for logging.
    """
    if pixel_loss is None:

        def pixel_loss(logits, labels):
            return cross_entropy(
                logits, labels, ignore_label=ignore_label, class_weights=class_weights
            )

    logits, aux = split_outputs(outputs)
    main = pixel_loss(logits, labels)
    parts = {"loss_main": main}
    total = main
    for i, aux_logits in enumerate(aux):
        aux_loss = pixel_loss(aux_logits, labels)
        parts[f"loss_aux{i}"] = aux_loss
        total = total + aux_weight * aux_loss
    return total, parts
