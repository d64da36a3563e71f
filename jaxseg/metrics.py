"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU, pixel accuracy, fwIoU.

`confusion_matrix` is jit-able (fixed shapes, ignored pixels masked out) so it can be
accumulated on device batch after batch; the reductions work on numpy or jax arrays.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.data.labels import IGNORE_LABEL


def confusion_matrix(
    labels: jax.Array,
    preds: jax.Array,
    num_classes: int,
    ignore_index: int = IGNORE_LABEL,
    weights: jax.Array | None = None,
) -> jax.Array:
    """Counts `cm[true, pred]` over pixels whose label is not `ignore_index`.

    Labels outside `[0, num_classes)` other than `ignore_index` are ignored too. `weights`
    (broadcastable to `labels`) masks out pixels, e.g. padded examples. Returns int32
    (num_classes, num_classes).
    """
    labels = jnp.asarray(labels, jnp.int32)
    preds = jnp.asarray(preds, jnp.int32)
    valid = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
    valid &= (preds >= 0) & (preds < num_classes)
    if weights is not None:
        valid &= jnp.broadcast_to(jnp.asarray(weights), labels.shape).astype(bool)
    labels, preds, valid = labels.reshape(-1), preds.reshape(-1), valid.reshape(-1)
    index = jnp.where(valid, labels * num_classes + preds, 0)
    counts = jnp.bincount(index, weights=valid.astype(jnp.int32), length=num_classes**2)
    return counts.astype(jnp.int32).reshape(num_classes, num_classes)


def iou(cm) -> np.ndarray:
    """Per-class intersection over union; NaN for classes absent from both labels and preds."""
    cm = np.asarray(cm, dtype=np.float64)
    intersection = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_iou(cm) -> float:
    """Mean IoU over classes that occur in labels or predictions (the VOC protocol)."""
    return float(np.nanmean(iou(cm)))


def pixel_accuracy(cm) -> float:
    """Fraction of non-ignored pixels predicted correctly."""
    cm = np.asarray(cm, dtype=np.float64)
    return float(np.diag(cm).sum() / max(cm.sum(), 1.0))


def frequency_weighted_iou(cm) -> float:
    """IoU per class weighted by the class's share of labelled pixels."""
    cm = np.asarray(cm, dtype=np.float64)
    freq = cm.sum(1) / max(cm.sum(), 1.0)
    class_iou = np.nan_to_num(iou(cm))
    return float((freq * class_iou).sum())


def summarize(cm, class_names: list[str] | None = None) -> dict:
    """All metrics of a confusion matrix as a JSON-ready dict (NaN IoUs become None)."""
    per_class = iou(cm)
    names = class_names or [str(i) for i in range(len(per_class))]
    return {
        "mean_iou": mean_iou(cm),
        "pixel_accuracy": pixel_accuracy(cm),
        "frequency_weighted_iou": frequency_weighted_iou(cm),
        "per_class_iou": {
            name: (None if np.isnan(v) else float(v))
            for name, v in zip(names, per_class, strict=True)
        },
    }
