"""Mean-field inference in the fully connected CRF of Krähenbühl & Koltun (NIPS 2011), as
pydensecrf's DenseCRF2D runs it: `dense_crf` and its batched form `dense_crf_batch`.

A Potts model with a Gaussian (position) kernel and a bilateral (position + colour) kernel,
each filtered on its own permutohedral lattice (`lattice`) built before the mean-field loop.
As in pydensecrf: the slice factor 1 / (1 + 2^-d), NORMALIZE_SYMMETRIC (each kernel is applied
as n * K(n * Q) with n = 1 / sqrt(K(1))), DIAG_KERNEL, and the unary -log(max(p, 1e-5)) of
`pydensecrf.utils.unary_from_softmax`. The Gaussian kernel's lattice depends only on the image
size: it is built once per size and kept.
"""

import functools
import inspect
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxseg.crf.lattice import (
    Entries,
    Lattice,
    build_lattice,
    filter_values,
    finish_lattice,
    lattice_capacity,
    lattice_entries,
)

DEEPLAB_VOC_CRF = {
    "gaussian_sxy": 1.0,
    "gaussian_compat": 3.0,
    "bilateral_sxy": 67.0,
    "bilateral_srgb": 3.0,
    "bilateral_compat": 4.0,
}
"""DeepLab v2 (ResNet-101) settings for PASCAL VOC: pos_xy_std=1, pos_w=3, bi_xy_std=67,
bi_rgb_std=3, bi_w=4, 10 iterations. Chen et al., "DeepLab: Semantic Image Segmentation with Deep
Convolutional Nets, Atrous Convolution, and Fully Connected CRFs", TPAMI 2018, Sec. 4.1 (w2 = 3 and
sigma_gamma = 3 by default, the bilateral terms found by cross-validation; DeepLab v1's
LargeFOV model used w1 = 4, sigma_alpha = 121, sigma_beta = 5); the ResNet-101 values as published
with the DeepLab v2 models and reused by kazuto1011/deeplab-pytorch (configs/voc12.yaml)."""


UNARY_CLIP = 1e-5
"""Probabilities are clipped from below before -log, as `pydensecrf.utils.unary_from_softmax`."""


def _position_features(height: int, width: int, sxy: float) -> jax.Array:
    """pydensecrf's DenseCRF2D position features (x / sxy, y / sxy), (N, 2)."""
    y, x = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    xy = jnp.stack([x.astype(jnp.float32), y.astype(jnp.float32)], axis=-1) / np.float32(sxy)
    return xy.reshape(-1, 2)


def _bilateral_features(image: jax.Array, sxy: float, srgb: float) -> jax.Array:
    """pydensecrf's bilateral features (x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)."""
    xy = _position_features(image.shape[0], image.shape[1], sxy)
    rgb = image.reshape(-1, 3).astype(jnp.float32) / np.float32(srgb)
    return jnp.concatenate([xy, rgb], axis=1)


def _feature_max(height: int, width: int, sxy: float, srgb: float | None = None) -> tuple:
    """Static upper bounds of the position (and colour) features; all are at least 0."""
    bounds = ((width - 1) / sxy, (height - 1) / sxy)
    return bounds if srgb is None else bounds + (255.0 / srgb,) * 3


@functools.lru_cache(maxsize=8)
def _gaussian_lattice(height: int, width: int, sxy: float) -> Lattice:
    """The Gaussian kernel's lattice, which depends only on the image size: built once per
    size, with concrete values (so its exact size), also when called while tracing."""
    with jax.ensure_compile_time_eval():
        features = _position_features(height, width, sxy)
        return build_lattice(features, _feature_max(height, width, sxy))


def _mean_field(
    unary: jax.Array, lattices: Sequence[Lattice], compat: jax.Array, iterations: jax.Array
) -> jax.Array:
    """Mean-field marginals (N, K) of the Potts CRF with one pairwise term per lattice, of
    weight `compat` (one per lattice); `iterations` may be a traced int."""
    ones = jnp.ones((unary.shape[0], 1), jnp.float32)
    splat_w, slice_w = [], []
    for k, lattice in enumerate(lattices):
        alpha = np.float32(1.0 / (1.0 + 2.0 ** -(lattice.point.shape[0] - 1)))
        norm = filter_values(lattice, ones, lattice.weight, lattice.weight * alpha)[:, 0]
        normalized = lattice.weight * (1.0 / jnp.sqrt(norm + 1e-20))
        splat_w.append(normalized)
        slice_w.append(normalized * (compat[k] * alpha))

    def step(_, logits):
        q = jax.nn.softmax(logits)
        message = sum(
            filter_values(lattice, q, a, b)
            for lattice, a, b in zip(lattices, splat_w, slice_w, strict=True)
        )
        return message - unary

    # The loop carries the logits, not the marginals: the loop boundary keeps XLA from fusing
    # the slice's gathers into the softmax, where they would be recomputed per reduction.
    return jax.nn.softmax(lax.fori_loop(0, iterations, step, -unary))


class _Scales(NamedTuple):
    """The kernels' feature scales (static: they shape the lattices), as in pydensecrf."""

    gaussian_sxy: float
    bilateral_sxy: float
    bilateral_srgb: float

    def bilateral_max(self, height: int, width: int) -> tuple:
        """Static bounds of the bilateral features of an (height, width) image."""
        return _feature_max(height, width, self.bilateral_sxy, self.bilateral_srgb)


@functools.partial(jax.jit, static_argnames="scales")
def _bilateral_entries(image: jax.Array, scales: _Scales) -> Entries:
    """The bilateral kernel's deduplicated lattice entries for one image."""
    features = _bilateral_features(image, scales.bilateral_sxy, scales.bilateral_srgb)
    return lattice_entries(features, scales.bilateral_max(*image.shape[:2]))


@functools.partial(jax.jit, static_argnames=("scales", "capacity"))
def _infer(probs, entries: Entries, gaussian: Lattice, compat, iterations, scales, capacity):
    """Mean-field marginals (H, W, K) from the bilateral kernel's entries (for at most
    `capacity` lattice points) and the Gaussian kernel's lattice; `compat` = (gaussian,
    bilateral) weights. NaN if the hash table failed (only possible while tracing: concrete
    inputs raise instead)."""
    height, width, num_labels = probs.shape
    bilateral = finish_lattice(entries, scales.bilateral_max(height, width), capacity)
    unary = -jnp.log(jnp.clip(probs.reshape(-1, num_labels).astype(jnp.float32), UNARY_CLIP, 1.0))
    q = _mean_field(unary, (gaussian, bilateral), compat, iterations)
    return jnp.where(entries.num_points >= 0, q, jnp.nan).reshape(probs.shape)


@functools.partial(jax.jit, static_argnames="scales")
def _bilateral_entries_batch(images: jax.Array, scales: _Scales) -> Entries:
    """`_bilateral_entries` of each image of a batch."""
    return jax.vmap(functools.partial(_bilateral_entries, scales=scales))(images)


@functools.partial(jax.jit, static_argnames=("scales", "capacity"))
def _infer_batch(
    probs, bilateral: Entries, gaussian: Lattice, compat, iterations, scales, capacity
):
    """`_infer` of each image of a batch, one after another."""

    def one(args):
        return _infer(*args, gaussian, compat, iterations, scales, capacity)

    return lax.map(one, (probs, bilateral))


def _check_inputs(image, probs, batched: bool) -> None:
    """Clear errors for malformed inputs. Shapes and dtypes are always checked; that `probs`
    are probabilities summing to 1 only for concrete arrays (not while tracing under `jit`)."""
    lead = "(B, H, W, " if batched else "(H, W, "
    image_shape, probs_shape = tuple(np.shape(image)), tuple(np.shape(probs))
    if len(image_shape) != (4 if batched else 3) or image_shape[-1] != 3:
        raise ValueError(f"dense CRF: image must have shape {lead}3), got {image_shape}")
    if jnp.result_type(image) != jnp.uint8:
        raise TypeError(
            f"dense CRF: image must be uint8 RGB like pydensecrf's, got {jnp.result_type(image)}"
        )
    if len(probs_shape) != len(image_shape) or probs_shape[:-1] != image_shape[:-1]:
        raise ValueError(
            f"dense CRF: probs must have shape {lead}K) matching image {image_shape}, "
            f"got {probs_shape}"
        )
    if not jnp.issubdtype(jnp.result_type(probs), jnp.floating):
        raise TypeError(f"dense CRF: probs must be floating point, got {jnp.result_type(probs)}")
    if isinstance(probs, jax.core.Tracer):
        return
    values = jnp.asarray(probs, jnp.float32)
    if not bool(jnp.all(jnp.isfinite(values) & (values >= 0.0))):
        raise ValueError("dense CRF: probs must be finite and non-negative (a softmax output)")
    worst = float(jnp.max(jnp.abs(jnp.sum(values, axis=-1) - 1.0)))
    if worst > 1e-3:
        raise ValueError(
            "dense CRF: probs must sum to 1 over the last axis (a softmax output); "
            f"some pixel's sum is off by {worst:.3g}"
        )


def _settings(
    iterations, gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat
) -> tuple[_Scales, jax.Array, jax.Array]:
    """Validated settings: static scales, and the (gaussian, bilateral) weights and iteration
    count as arrays (changing them does not recompile). A clear error names a bad one."""
    if isinstance(iterations, bool) or not isinstance(iterations, int | np.integer):
        raise TypeError(f"dense CRF: iterations must be an int, got {iterations!r}")
    if iterations < 0:
        raise ValueError(f"dense CRF: iterations must be >= 0, got {iterations}")
    numbers = {
        "gaussian_sxy": gaussian_sxy,
        "gaussian_compat": gaussian_compat,
        "bilateral_sxy": bilateral_sxy,
        "bilateral_srgb": bilateral_srgb,
        "bilateral_compat": bilateral_compat,
    }
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise TypeError(f"dense CRF: {name} must be a Python number, got {value!r}")
        if name.endswith(("sxy", "srgb")) and not value > 0:
            raise ValueError(f"dense CRF: {name} must be positive, got {value!r}")
    scales = _Scales(float(gaussian_sxy), float(bilateral_sxy), float(bilateral_srgb))
    compat = jnp.asarray([gaussian_compat, bilateral_compat], jnp.float32)
    return scales, compat, jnp.asarray(iterations, jnp.int32)


def dense_crf(
    image: jax.Array,
    probs: jax.Array,
    *,
    iterations: int = 10,
    gaussian_sxy: float = 3.0,
    gaussian_compat: float = 3.0,
    bilateral_sxy: float = 80.0,
    bilateral_srgb: float = 13.0,
    bilateral_compat: float = 10.0,
) -> jax.Array:
    """Dense-CRF marginals (H, W, K) of a uint8 RGB `image` (H, W, 3) and softmax `probs`.

    The settings are Python numbers meaning what they mean to pydensecrf's
    `addPairwiseGaussian(sxy, compat)` and `addPairwiseBilateral(sxy, srgb, rgbim, compat)`.
    On concrete arrays the bilateral lattice is built first and the inference compiled for its
    size; under `jit` it is sized for the worst case (every pixel-vertex its own lattice point),
    which gives the same result but is slower, mostly on CPU (3.5x for a 375x500 image).

    Raises TypeError / ValueError naming the problem for a non-uint8 or non-RGB image, probs
    whose shape does not match it, and bad settings; for concrete `probs` also when they are
    not finite, negative or do not sum to 1 (within 1e-3) at some pixel, which cannot be
    checked while tracing.
    """
    _check_inputs(image, probs, batched=False)
    scales, compat, iterations = _settings(
        iterations, gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat
    )
    gaussian = _gaussian_lattice(image.shape[0], image.shape[1], scales.gaussian_sxy)
    entries = _bilateral_entries(image, scales)
    capacity = lattice_capacity(entries.num_points, entries.first.shape[0])
    return _infer(probs, entries, gaussian, compat, iterations, scales, capacity)


def dense_crf_batch(images: jax.Array, probs: jax.Array, **settings: float) -> jax.Array:
    """`dense_crf` of a batch: uint8 `images` (B, H, W, 3) and `probs` (B, H, W, K), with the
    same keyword settings (and defaults) as `dense_crf`.

    The images go through inference one after another (`lax.map`), sharing one lattice size,
    so memory stays that of one image.
    """
    _check_inputs(images, probs, batched=True)
    parameters = inspect.signature(dense_crf).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(settings.keys() - defaults.keys())
    if unknown:
        raise TypeError(f"dense CRF: unknown settings {unknown}; known: {sorted(defaults)}")
    scales, compat, iterations = _settings(**(defaults | settings))
    gaussian = _gaussian_lattice(images.shape[1], images.shape[2], scales.gaussian_sxy)
    entries = _bilateral_entries_batch(images, scales)
    capacity = lattice_capacity(entries.num_points, entries.first.shape[1])
    return _infer_batch(probs, entries, gaussian, compat, iterations, scales, capacity)
