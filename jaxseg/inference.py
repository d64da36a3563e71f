"""Inference: test-time augmentation (scales, flip), sliding windows and image prediction.

`predict_probs` is the pure function evaluation jits over batches; `Predictor` serves single
images of any size, padding each to a size bucket so one compiled function serves every image
that falls in the same bucket.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.data import pipeline
from jaxseg.nn.resize import resize_bilinear

PAD_MULTIPLE = 128
"""Images are padded up to a multiple of this many pixels per side before prediction."""


def _window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows covering `size`, the last one flush with the end."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window, stride))
    return starts + [size - window]


def _sliding_window_logits(
    apply, images: jax.Array, window: int | tuple[int, int], stride: int | tuple[int, int]
) -> jax.Array:
    """Average the logits of overlapping windows (int: square; or (height, width)) of
    `images`; images smaller than a window are padded."""
    (window_h, window_w), (stride_h, stride_w) = pipeline.as_size(window), pipeline.as_size(stride)
    batch, height, width, _ = images.shape
    pad_h, pad_w = max(window_h - height, 0), max(window_w - width, 0)
    padded = jnp.pad(images, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    total, count = None, jnp.zeros(padded.shape[1:3], jnp.float32)
    for top in _window_starts(padded.shape[1], window_h, stride_h):
        for left in _window_starts(padded.shape[2], window_w, stride_w):
            crop = jax.lax.dynamic_slice_in_dim(padded, top, window_h, axis=1)
            crop = jax.lax.dynamic_slice_in_dim(crop, left, window_w, axis=2)
            logits = apply(crop).astype(jnp.float32)
            if total is None:
                total = jnp.zeros((batch, *padded.shape[1:3], logits.shape[-1]), jnp.float32)
            total = total.at[:, top : top + window_h, left : left + window_w].add(logits)
            count = count.at[top : top + window_h, left : left + window_w].add(1.0)
    return (total / count[None, :, :, None])[:, :height, :width]


def predict_probs(
    model,
    variables: dict,
    images: jax.Array,
    *,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    window: int | tuple[int, int] | None = None,
    window_stride: int | tuple[int, int] | None = None,
) -> jax.Array:
    """Class probabilities (B, H, W, K) averaged over `scales` and, with `flip`, mirror images.

    Each scale resizes the input bilinearly, predicts (whole image, or overlapping windows of
    size `window` when given) and resizes the logits back before the softmax.
    """
    height, width = images.shape[1:3]

    def apply(x):
        if window is None:
            return model.apply(variables, x, train=False)
        return _sliding_window_logits(
            lambda crop: model.apply(variables, crop, train=False), x, window, window_stride
        )

    probs = 0.0
    for scale in scales:
        size = (max(round(height * scale), 1), max(round(width * scale), 1))
        scaled = images if size == (height, width) else resize_bilinear(images, size, False)
        views = [(scaled, False)] + ([(scaled[:, :, ::-1], True)] if flip else [])
        for view, flipped in views:
            logits = apply(view).astype(jnp.float32)
            if flipped:
                logits = logits[:, :, ::-1]
            if logits.shape[1:3] != (height, width):
                logits = resize_bilinear(logits, (height, width), False)
            probs = probs + jax.nn.softmax(logits, axis=-1)
    return probs / (len(scales) * (2 if flip else 1))


def bucket_size(height: int, width: int, multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    """(height, width) rounded up to multiples of `multiple`."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


class Predictor:
    """Label maps for single RGB images with one model; compiles once per size bucket.

    Images are normalised and padded (with the mean colour, as evaluation pads) up to
    `bucket_size`, so a folder of photos of a few sizes compiles a few times at most.
    """

    def __init__(self, model, variables: dict, *, pad_multiple: int = PAD_MULTIPLE, **options):
        self.variables, self.pad_multiple = variables, pad_multiple
        self._labels = jax.jit(
            lambda v, x: jnp.argmax(predict_probs(model, v, x, **options), axis=-1)
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Label map (H, W) uint8 for an RGB uint8 image (H, W, 3)."""
        height, width = image.shape[:2]
        padded_h, padded_w = bucket_size(height, width, self.pad_multiple)
        canvas = np.zeros((1, padded_h, padded_w, 3), np.float32)
        canvas[0, :height, :width] = pipeline.normalize(image)
        labels = self._labels(self.variables, canvas)
        return np.asarray(labels[0, :height, :width], np.uint8)

    def compiled_shapes(self) -> int:
        """How many input shapes have been compiled so far."""
        return self._labels._cache_size()


def predict_image(model, variables: dict, image: np.ndarray, **options) -> np.ndarray:
    """Label map (H, W) uint8 for one RGB uint8 image at its own size; `options` as for
    `predict_probs`. For many images, keep a `Predictor` instead."""
    return Predictor(model, variables, pad_multiple=1, **options)(image)
