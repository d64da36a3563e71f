"""Class weights for `config.class_weights` from a split's pixel counts.

Median frequency balancing (SegNet, arXiv 1511.00561, after Eigen & Fergus, arXiv 1411.4734)
and inverse log frequency (ENet, arXiv 1606.02147). Only labelled pixels count: label 255 (and
any value outside the classes) is what the loss ignores, so it is left out here too. A class
with no pixels in the split gets weight 0: no loss term on that split could use its weight.
"""

import dataclasses
from collections.abc import Iterable

import numpy as np

METHODS = ("median_frequency", "inverse_log_frequency")
ENET_C = 1.02
"""ENet's constant: it caps a weight at 1 / ln(1.02), about 50."""


@dataclasses.dataclass(frozen=True)
class PixelCounts:
    """Per class c: `pixels[c]`, its labelled pixels over the split, and `image_pixels[c]`,
    the labelled pixels of the images in which c occurs."""

    pixels: np.ndarray
    image_pixels: np.ndarray

    @property
    def absent(self) -> np.ndarray:
        """Indices of the classes with no pixels in the split."""
        return np.flatnonzero(self.pixels == 0)


def count_pixels(masks: Iterable[np.ndarray], num_classes: int) -> PixelCounts:
    """Counts labelled pixels per class over `masks` (class indices; 255 ignored)."""
    pixels = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    for mask in masks:
        labels = np.asarray(mask).ravel()
        per_class = np.bincount(labels[labels < num_classes], minlength=num_classes)
        pixels += per_class
        image_pixels += np.where(per_class > 0, per_class.sum(), 0)
    return PixelCounts(pixels, image_pixels)


def median_frequency(counts: PixelCounts) -> np.ndarray:
    """median(freq) / freq(c) with freq(c) = pixels[c] / image_pixels[c]; the median is over
    the classes present, absent classes get 0."""
    present = counts.pixels > 0
    freq = np.zeros(len(counts.pixels))
    freq[present] = counts.pixels[present] / counts.image_pixels[present]
    weights = np.zeros_like(freq)
    weights[present] = np.median(freq[present]) / freq[present]
    return weights


def inverse_log_frequency(counts: PixelCounts) -> np.ndarray:
    """1 / ln(1.02 + p(c)) with p(c) the class's share of all labelled pixels; absent 0."""
    share = counts.pixels / max(int(counts.pixels.sum()), 1)
    return np.where(counts.pixels > 0, 1.0 / np.log(ENET_C + share), 0.0)


def class_weights(counts: PixelCounts, method: str) -> np.ndarray:
    """The weights `method` ("median_frequency" or "inverse_log_frequency") gives `counts`."""
    if method == "median_frequency":
        return median_frequency(counts)
    if method == "inverse_log_frequency":
        return inverse_log_frequency(counts)
    raise ValueError(f"unknown class-weight method {method!r}; use one of {', '.join(METHODS)}")


def config_override(weights: Iterable[float]) -> str:
    """`--config.class_weights='(w0, w1, ...)'`, four significant digits per weight."""
    return "--config.class_weights='(" + ", ".join(f"{w:.4g}" for w in weights) + ")'"
