"""Input pipelines on grain: shuffled, augmented training batches and fixed-shape eval batches.

Training: per-process shard -> shuffle (new order every epoch) -> decode -> random scale ->
pad (mean colour, label 255) -> random crop -> flip -> normalise -> batch. Every random choice
is a function of (seed, example position), so the iterator's saved state reproduces the exact
batches after a resume. Evaluation pads every image to one size (label 255, a `valid` flag
per example) so the jitted predictor compiles once, and every process yields the same number
of batches; an image larger than that size is resized to fit, keeping its aspect ratio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from PIL import Image

from jaxseg.data.labels import IGNORE_LABEL

MEAN_RGB = np.array([0.485, 0.456, 0.406], np.float32)
STD_RGB = np.array([0.229, 0.224, 0.225], np.float32)
"""ImageNet statistics (of pixel / 255) that torchvision's pretrained backbones expect."""
MEAN_PIXEL = np.round(MEAN_RGB * 255).astype(np.uint8)
"""Padding colour of training crops: the mean, about 0 once normalised."""


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> float32 standardised with the ImageNet mean and std."""
    return (np.asarray(image, np.float32) / 255.0 - MEAN_RGB) / STD_RGB


def denormalize(images: Any) -> Any:
    """Inverse of `normalize`, rounded to uint8; works on numpy arrays and under jit."""
    xp = jnp if isinstance(images, jax.Array) else np
    pixels = (images * STD_RGB + MEAN_RGB) * 255.0
    return xp.clip(xp.round(pixels), 0, 255).astype(xp.uint8)


def as_size(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) of a size given as one int (a square) or as a pair."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _resize(array: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    """Resize an (H, W) or (H, W, 3) uint8 array to (height, width) with PIL."""
    height, width = size
    return np.asarray(Image.fromarray(array).resize((width, height), resample))


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation (each +-25%) on a uint8 image, in random order."""
    pixels = image.astype(np.float32)
    for op in rng.permutation(3):
        factor = rng.uniform(0.75, 1.25)
        if op == 0:
            pixels = pixels * factor
        elif op == 1:
            pixels = (pixels - pixels.mean()) * factor + pixels.mean()
        else:
            grey = pixels.mean(axis=-1, keepdims=True)
            pixels = (pixels - grey) * factor + grey
    return np.clip(pixels, 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class TrainAugment:
    """Random scale, pad, crop, flip and optional photometric distortion of one example.

    `crop_size` is an int (square) or (height, width). With `cat_max_ratio` < 1 a crop in which
    one class covers more than that share of the labelled pixels is drawn again, up to 10
    times (mmsegmentation's class-balanced `RandomCrop`).
    """

    crop_size: int | tuple[int, int]
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    photometric: bool = False
    cat_max_ratio: float = 1.0

    def __call__(self, example: dict[str, Any], rng: np.random.Generator) -> dict[str, np.ndarray]:
        image, mask = example["image"], example["segmentation_mask"]
        crop_h, crop_w = as_size(self.crop_size)
        scale = rng.uniform(*self.scale_range)
        size = (max(round(image.shape[0] * scale), 1), max(round(image.shape[1] * scale), 1))
        image = _resize(image, size, Image.Resampling.BILINEAR)
        mask = _resize(mask, size, Image.Resampling.NEAREST)
        if self.photometric:
            image = _photometric(image, rng)
        pad_h, pad_w = max(crop_h - size[0], 0), max(crop_w - size[1], 0)
        image = np.stack(
            [np.pad(image[..., c], ((0, pad_h), (0, pad_w)), constant_values=MEAN_PIXEL[c])
             for c in range(3)], axis=-1)
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_LABEL)
        window = self._crop_window(mask, (crop_h, crop_w), rng)
        image, mask = image[window], mask[window]
        if self.flip and rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        return {"image": normalize(image), "label": mask.astype(np.int32)}

    def _crop_window(
        self, mask: np.ndarray, crop: tuple[int, int], rng: np.random.Generator
    ) -> tuple[slice, slice]:
        """A random crop window, re-drawn while one class dominates it (`cat_max_ratio`)."""
        for attempt in range(11 if self.cat_max_ratio < 1.0 else 1):
            top = rng.integers(0, mask.shape[0] - crop[0] + 1)
            left = rng.integers(0, mask.shape[1] - crop[1] + 1)
            window = np.s_[top : top + crop[0], left : left + crop[1]]
            if attempt == 10 or self.cat_max_ratio >= 1.0:
                break
            counts = np.bincount(mask[window].ravel(), minlength=256)[:IGNORE_LABEL]
            counts = counts[counts > 0]
            if len(counts) > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                break
        return window


def local_batch_size(global_batch_size: int) -> int:
    """This process's share of a global batch (an error names the field if it does not split)."""
    processes = jax.process_count()
    if global_batch_size % processes:
        raise ValueError(
            f"batch size {global_batch_size} does not split over {processes} processes"
        )
    return global_batch_size // processes


def train_dataset(
    source: Sequence,
    *,
    global_batch_size: int,
    crop_size: int | tuple[int, int],
    scale_range: tuple[float, float] = (0.5, 2.0),
    flip: bool = True,
    photometric: bool = False,
    cat_max_ratio: float = 1.0,
    seed: int = 0,
    num_workers: int = 0,
) -> grain.IterDataset:
    """Endless training batches of this process: {"image": (b, crop_h, crop_w, 3) float32,
    "label": (b, crop_h, crop_w) int32}, b = global batch / processes.

    `num_workers` > 0 decodes and augments in that many worker processes.
    """
    dataset = (
        grain.MapDataset.source(source)[jax.process_index() :: jax.process_count()]
        .shuffle(seed=seed)
        .repeat()
        .random_map(
            TrainAugment(crop_size, tuple(scale_range), flip, photometric, cat_max_ratio),
            seed=seed,
        )
        .batch(local_batch_size(global_batch_size), drop_remainder=True)
        .to_iter_dataset()
    )
    if num_workers > 0:
        if not flags.FLAGS.is_parsed():  # grain's workers read absl flags; outside app.run
            flags.FLAGS.mark_as_parsed()  # (notebooks, tests) take their defaults
        dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=num_workers))
    return dataset


def eval_size(
    height: int, width: int, pad_size: tuple[int, int], short_side: int = 0
) -> tuple[int, int]:
    """The size an image is evaluated at, keeping its aspect ratio: its short side scaled to
    `short_side` (0: kept), then shrunk further where needed to fit in `pad_size`."""
    scale = short_side / min(height, width) if short_side else 1.0
    scale = min(scale, pad_size[0] / height, pad_size[1] / width)
    if scale == 1.0:
        return height, width
    return (
        min(max(int(height * scale + 0.5), 1), pad_size[0]),
        min(max(int(width * scale + 0.5), 1), pad_size[1]),
    )


@dataclasses.dataclass(frozen=True)
class EvalPad:
    """Loads example `index` (or a blank one for -1) padded to `pad_size` with label 255.

    Images are resized as `eval_size` says (image bilinear, label nearest), so an image larger
    than `pad_size` is evaluated smaller rather than refused.
    """

    source: Sequence
    pad_size: tuple[int, int]
    short_side: int = 0

    def __call__(self, index: int) -> dict[str, Any]:
        pad_h, pad_w = self.pad_size
        image = np.zeros((pad_h, pad_w, 3), np.float32)
        label = np.full((pad_h, pad_w), IGNORE_LABEL, np.int32)
        if index < 0:
            return {"image": image, "label": label, "valid": np.bool_(False), "height": 0,
                    "width": 0, "file_name": ""}
        example = self.source[int(index)]
        pixels, mask = example["image"], example["segmentation_mask"]
        size = eval_size(*mask.shape, self.pad_size, self.short_side)
        if size != mask.shape:
            pixels = _resize(pixels, size, Image.Resampling.BILINEAR)
            mask = _resize(mask, size, Image.Resampling.NEAREST)
        height, width = size
        image[:height, :width] = normalize(pixels)
        label[:height, :width] = mask
        return {"image": image, "label": label, "valid": np.bool_(True), "height": height,
                "width": width, "file_name": example["file_name"]}


def eval_indices(num_examples: int, global_batch_size: int) -> np.ndarray:
    """This process's example indices, padded with -1 so every process has whole batches and
    the same number of them."""
    processes, local = jax.process_count(), local_batch_size(global_batch_size)
    per_process = -(-num_examples // (processes * local)) * local
    indices = np.full(per_process * processes, -1, np.int64)
    indices[:num_examples] = np.arange(num_examples)
    return indices[jax.process_index() :: processes]


def eval_dataset(
    source: Sequence,
    *,
    batch_size: int,
    pad_size: tuple[int, int],
    max_examples: int | None = None,
    short_side: int = 0,
) -> grain.MapDataset:
    """Fixed-shape evaluation batches of this process: image, label, valid, height, width,
    file_name; `batch_size` is global. `max_examples` limits the split (quick evaluations);
    `short_side` resizes each image's short side to it first (see `eval_size`)."""
    count = len(source) if not max_examples else min(max_examples, len(source))
    indices = eval_indices(count, batch_size)
    return (
        grain.MapDataset.source(indices)
        .map(EvalPad(source, tuple(pad_size), short_side))
        .batch(local_batch_size(batch_size), drop_remainder=True)
    )
