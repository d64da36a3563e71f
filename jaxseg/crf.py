"""Dense CRF post-processing (DeepLab v1/v2) in pure JAX, matching pydensecrf.

Mean-field inference in the fully connected CRF of Krähenbühl & Koltun, "Efficient Inference in
Fully Connected CRFs with Gaussian Edge Potentials" (NIPS 2011): a Potts model with a Gaussian
(position) kernel and a bilateral (position + colour) kernel, each filtered with the
permutohedral lattice of Adams, Baek & Davis (Eurographics 2010). Every numerical choice follows
Krähenbühl's C++ code as shipped in pydensecrf, so the marginals agree with it to float32
rounding: the same lattice embedding and rounding, the [1/2, 1, 1/2] blur along the d+1 lattice
axes in order (lattice points no pixel touched count as zero), the slice factor 1 / (1 + 2^-d),
NORMALIZE_SYMMETRIC (each kernel is applied as n * K(n * Q) with n = 1 / sqrt(K(1))), DIAG_KERNEL,
and the unary -log(max(p, 1e-5)) of `pydensecrf.utils.unary_from_softmax`.

Everything runs under `jit` with static shapes. The lattice depends only on the image, so it is
built once per call, before the mean-field loop: lattice keys are deduplicated with an
open-addressing hash table (scatter-min claims, linear probing in a `while_loop`), neighbours
along each lattice axis are found in the same table, and each iteration is then splat
(`segment_sum`), blur (gathers) and slice (gathers). The number of lattice points depends on the
image; arrays are sized by the smallest of a few static capacities that holds them, picked with
`lax.switch`, so the blur never runs over unused capacity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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

_EMPTY = np.int32(np.iinfo(np.int32).max)
_MIN_CAPACITY_LOG2 = 12
_CAPACITY_GROWTH_LOG2 = 2


class _Kernel(NamedTuple):
    """One pairwise term: per-pixel features (N, d) and its Potts weight."""

    features: jax.Array
    feature_max: tuple[float, ...]
    compat: float


def _scale_factors(d: int) -> np.ndarray:
    """Diagonal of the lattice embedding (Adams et al. p. 5), as float32 like the C++ code."""
    inv_std = np.float32(np.sqrt(2.0 / 3.0) * (d + 1))
    return np.array([1.0 / np.sqrt((i + 2) * (i + 1)) * float(inv_std) for i in range(d)], np.float32)


def _simplex_vertices(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Lattice keys (d+1, N, d) and barycentric weights (d+1, N) of each feature's simplex.

    Index 0 of the leading axis is the vertex of remainder 0, and so on: all coordinates of the
    remainder-r vertex are congruent to r modulo d+1.
    """
    n, d = features.shape
    scale = _scale_factors(d)
    down = np.float32(1.0 / (d + 1))
    up = np.float32(d + 1)
    elevated = [None] * (d + 1)
    running = jnp.zeros((n,), jnp.float32)
    for j in range(d, 0, -1):
        scaled = features[:, j - 1] * scale[j - 1]
        elevated[j] = running - np.float32(j) * scaled
        running = running + scaled
    elevated[0] = running
    elevated = jnp.stack(elevated, axis=1)

    rounded = jnp.round(elevated * down)
    rem0 = rounded * up
    excess = jnp.sum(rounded, axis=1, keepdims=True).astype(jnp.int32)
    diff = elevated - rem0
    less = diff[:, :, None] < diff[:, None, :]
    upper = np.triu(np.ones((d + 1, d + 1), bool), 1)
    rank = jnp.sum(less & upper, axis=2) + jnp.sum(~less & upper, axis=1)
    rank = rank + excess
    wrap = jnp.where(rank < 0, d + 1, 0) - jnp.where(rank > d, d + 1, 0)
    rank = rank + wrap
    rem0 = rem0.astype(jnp.int32) + wrap

    offsets = (elevated - rem0.astype(jnp.float32)) * down
    by_rank = jnp.sum(jax.nn.one_hot(rank, d + 1, dtype=jnp.float32) * offsets[:, :, None], axis=1)
    weights = [by_rank[:, d] + (1.0 + -by_rank[:, 0])]
    weights += [by_rank[:, d - p] - by_rank[:, d - p + 1] for p in range(1, d + 1)]
    weights = jnp.stack(weights, axis=0)

    remainder = np.arange(d + 1)[:, None, None]
    canonical = jnp.where(rank[None, :, :d] <= d - remainder, remainder, remainder - (d + 1))
    keys = rem0[None, :, :d] + canonical
    return keys.astype(jnp.int32), weights


def _key_ranges(feature_max: Sequence[float], d: int) -> list[tuple[int, int]]:
    """Static bounds (lo, hi) of the lattice-key coordinates for features in [0, feature_max],
    with room for the neighbour keys the blur looks up."""
    scaled = [m * s for m, s in zip(feature_max, _scale_factors(d).astype(float), strict=True)]
    margin = 4 * (d + 1)
    bounds = [(0.0, sum(scaled))]
    bounds += [(-j * scaled[j - 1], sum(scaled[j:])) for j in range(1, d)]
    return [(math.floor(lo) - margin, math.ceil(hi) + margin) for lo, hi in bounds]


class _KeyCodec(NamedTuple):
    """Exact packing of (kernel, remainder, key) into a few uint32 words.

    Coordinates are stored divided by d+1 (they are all congruent to the remainder) and shifted
    by a static per-kernel minimum, so equal words mean equal lattice points.
    """

    fields: tuple[tuple[int, int], ...]
    num_words: int
    key_min: np.ndarray
    dims: np.ndarray

    @classmethod
    def for_kernels(cls, kernels: Sequence[_Kernel]) -> _KeyCodec:
        """A codec whose field widths fit every kernel's static key bounds."""
        num_coords = max(kernel.features.shape[1] for kernel in kernels)
        key_min = np.zeros((len(kernels), num_coords), np.int32)
        span = np.ones((len(kernels), num_coords), np.int64)
        for k, kernel in enumerate(kernels):
            d = kernel.features.shape[1]
            for i, (lo, hi) in enumerate(_key_ranges(kernel.feature_max, d)):
                key_min[k, i] = lo // (d + 1)
                span[k, i] = hi // (d + 1) - lo // (d + 1) + 1
        widths = [max(len(kernels) - 1, 1).bit_length(), max(num_coords, 1).bit_length()]
        widths += [int(s).bit_length() for s in span.max(axis=0)]
        fields, word, shift = [], 0, 0
        for width in widths:
            if shift + width > 32:
                word, shift = word + 1, 0
            fields.append((word, shift))
            shift += width
        dims = np.array([kernel.features.shape[1] for kernel in kernels], np.int32)
        return cls(tuple(fields), word + 1, key_min, dims)

    def encode(self, kernel: jax.Array, remainder: jax.Array, keys: jax.Array) -> jax.Array:
        """Words (num_words, ...) for kernel ids (...), remainders (...) and keys (..., C)."""
        dplus1 = jnp.asarray(self.dims + 1)[kernel]
        quotient = (keys - remainder[..., None]) // dplus1[..., None]
        coords = quotient - jnp.asarray(self.key_min)[kernel]
        coords = jnp.where(jnp.arange(keys.shape[-1]) < dplus1[..., None] - 1, coords, 0)
        values = [kernel, remainder] + [coords[..., i] for i in range(keys.shape[-1])]
        words = [jnp.zeros(kernel.shape, jnp.uint32) for _ in range(self.num_words)]
        for value, (word, shift) in zip(values, self.fields, strict=True):
            words[word] = words[word] | (value.astype(jnp.uint32) << shift)
        return jnp.stack(words)


def _hash(words: jax.Array, table_bits: int) -> jax.Array:
    """Well-mixed slot index in [0, 2**table_bits) of packed keys (num_words, ...)."""
    h = jnp.zeros(words.shape[1:], jnp.uint32)
    for w in words:
        h = (h ^ w) * np.uint32(0x9E3779B1)
        h = h ^ (h >> 15)
    h = (h ^ (h >> 16)) * np.uint32(0x85EBCA6B)
    h = (h ^ (h >> 13)) * np.uint32(0xC2B2AE35)
    h = h ^ (h >> 16)
    return (h >> (32 - table_bits)).astype(jnp.int32)


def _insert(words: jax.Array, table_bits: int) -> tuple[jax.Array, jax.Array]:
    """Deduplicate keys: returns the hash table and, per key, the index of its first copy.

    Every round, unplaced keys claim their slot with a scatter-min of their index; a slot
    owned by another key sends them one slot further (linear probing). Occupied slots hold
    -(owner + 1), so later claims never displace them.
    """
    size = 1 << table_bits
    ids = jnp.arange(words.shape[1], dtype=jnp.int32)
    table = jnp.full((size + 1,), _EMPTY, jnp.int32)
    owner = jnp.full(ids.shape, -1, jnp.int32)

    def unplaced(state):
        return jnp.any(state[2] < 0)

    def probe(state):
        table, slot, owner = state
        active = owner < 0
        target = jnp.where(active, slot, size)
        table = table.at[target].min(ids)
        held = table[slot]
        claimant = jnp.where(held >= 0, held, -held - 1)
        table = table.at[target].set(-claimant - 1)
        same = jnp.all(words[:, claimant] == words, axis=0)
        owner = jnp.where(active & same, claimant, owner)
        slot = jnp.where(active & ~same, (slot + 1) & (size - 1), slot)
        return table, slot, owner

    table, _, owner = lax.while_loop(unplaced, probe, (table, _hash(words, table_bits), owner))
    return table, owner


def _lookup(table: jax.Array, words: jax.Array, queries: jax.Array) -> jax.Array:
    """Index of the stored key equal to each query (num_words, Q), or -1 where there is none."""
    size = table.shape[0] - 1
    table_bits = size.bit_length() - 1
    result = jnp.full(queries.shape[1:], -2, jnp.int32)

    def pending(state):
        return jnp.any(state[1] == -2)

    def probe(state):
        slot, result = state
        held = table[slot]
        empty = held == _EMPTY
        owner = jnp.where(empty, 0, -held - 1)
        same = jnp.all(words[:, owner] == queries, axis=0) & ~empty
        waiting = result == -2
        result = jnp.where(waiting & empty, -1, jnp.where(waiting & same, owner, result))
        slot = jnp.where(waiting & ~empty & ~same, (slot + 1) & (size - 1), slot)
        return slot, result

    return lax.while_loop(pending, probe, (_hash(queries, table_bits), result))[1]


def _capacities(num_entries: int) -> list[int]:
    """Static lattice capacities: powers of 4 from 4096 up to the number of (pixel, vertex)
    entries, which bounds the number of lattice points."""
    caps, log2 = [], _MIN_CAPACITY_LOG2
    while not caps or caps[-1] < num_entries:
        caps.append(min(1 << log2, num_entries))
        log2 += _CAPACITY_GROWTH_LOG2
    return caps


class _Entries(NamedTuple):
    """Every (pixel, simplex vertex) pair of every kernel, deduplicated into lattice points.

    Entries are laid out group-major: group g = (kernel, remainder) holds one vertex per pixel,
    so entry e belongs to pixel e % N and group e // N. Lattice points are numbered in order of
    their first entry, so each group's points are contiguous.
    """

    keys: jax.Array
    weight: jax.Array
    words: jax.Array
    table: jax.Array
    first: jax.Array
    point: jax.Array
    num_points: jax.Array


def _groups(dims: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Kernel index and remainder of each (kernel, remainder) group."""
    kernel = np.concatenate([np.full(d + 1, k) for k, d in enumerate(dims)]).astype(np.int32)
    remainder = np.concatenate([np.arange(d + 1) for d in dims]).astype(np.int32)
    return kernel, remainder


def _entries(features: Sequence[jax.Array], codec: _KeyCodec) -> _Entries:
    """Lattice vertices of every pixel for every kernel, deduplicated with a hash table."""
    num_coords = codec.key_min.shape[1]
    keys, weights = [], []
    for f in features:
        k, w = _simplex_vertices(f)
        keys.append(jnp.pad(k, ((0, 0), (0, 0), (0, num_coords - k.shape[2]))))
        weights.append(w)
    keys = jnp.concatenate(keys).reshape(-1, num_coords)
    n = features[0].shape[0]
    group_kernel, group_remainder = _groups(codec.dims.tolist())
    group = jnp.arange(keys.shape[0], dtype=jnp.int32) // n
    words = codec.encode(jnp.asarray(group_kernel)[group], jnp.asarray(group_remainder)[group], keys)
    table_bits = (2 * keys.shape[0] - 1).bit_length()
    table, owner = _insert(words, table_bits)
    first = owner == jnp.arange(owner.shape[0])
    numbering = jnp.cumsum(first, dtype=jnp.int32) - 1
    return _Entries(
        keys, jnp.concatenate(weights), words, table, first, numbering[owner], numbering[-1] + 1
    )


def _neighbours(entries: _Entries, codec: _KeyCodec, n: int, capacity: int) -> jax.Array:
    """(D, 2, capacity + 1) indices of each lattice point's two neighbours along each of the D
    lattice axes; `capacity` marks a missing neighbour (and pads the table)."""
    num_entries = entries.point.shape[0]
    slot = jnp.where(entries.first, entries.point, capacity)
    first = jnp.zeros((capacity + 1,), jnp.int32).at[slot].set(jnp.arange(num_entries))
    first = first[:capacity]
    group_kernel, group_remainder = _groups(codec.dims.tolist())
    kernel = jnp.asarray(group_kernel)[first // n]
    remainder = jnp.asarray(group_remainder)[first // n]
    key = entries.keys[first]
    dims = jnp.asarray(codec.dims)[kernel]
    exists = jnp.arange(capacity) < entries.num_points
    num_axes = int(codec.dims.max()) + 1
    queries, remainders, valid = [], [], []
    for axis in range(num_axes):
        step = (dims + 1)[:, None] * (jnp.arange(key.shape[1]) == axis)
        for sign in (-1, 1):
            queries.append(key + sign * (1 - step))
            remainders.append((remainder + sign) % (dims + 1))
            valid.append(exists & (axis <= dims))
    words = codec.encode(
        jnp.tile(kernel, 2 * num_axes), jnp.concatenate(remainders), jnp.concatenate(queries)
    )
    found = _lookup(entries.table, entries.words, words)
    neighbour = jnp.where((found >= 0) & jnp.concatenate(valid), entries.point[found], capacity)
    neighbour = neighbour.reshape(num_axes, 2, capacity)
    return jnp.pad(neighbour, ((0, 0), (0, 0), (0, 1)), constant_values=capacity)


def _splat_blur(point: jax.Array, neighbours: jax.Array, values, splat_w) -> jax.Array:
    """Splat `values` (N, C) with weights `splat_w` (G, N) onto the lattice, then blur with
    [1/2, 1, 1/2] along each lattice axis in turn."""
    groups, n = point.shape
    updates = (values[None] * splat_w[..., None]).reshape(groups * n, -1)
    grid = jax.ops.segment_sum(updates, point.reshape(-1), num_segments=neighbours.shape[-1])
    for axis in neighbours:
        grid = grid + 0.5 * (grid[axis[0]] + grid[axis[1]])
    return grid


def _slice(point: jax.Array, grid: jax.Array, slice_w: jax.Array) -> jax.Array:
    """Interpolate the lattice back at every pixel: sum over groups of weight * grid value."""
    return sum(slice_w[g][:, None] * grid[point[g]] for g in range(point.shape[0]))


def _mean_field(
    unary: jax.Array, entries: _Entries, codec: _KeyCodec, compat, iterations: int, capacity: int
) -> jax.Array:
    """Mean-field marginals (N, K) on a lattice of at most `capacity` points."""
    n = unary.shape[0]
    neighbours = _neighbours(entries, codec, n, capacity)
    point = entries.point.reshape(-1, n)
    weight = entries.weight
    group_kernel, _ = _groups(codec.dims.tolist())
    alpha = np.float32(1.0) / (1.0 + np.exp2(-codec.dims.astype(np.float32)))
    ones = _splat_blur(point, neighbours, jnp.ones((n, 1), jnp.float32), weight)
    norm = [
        _slice(point, ones, weight * (alpha[k] * (group_kernel == k))[:, None])[:, 0]
        for k in range(len(compat))
    ]
    norm = jnp.stack([1.0 / jnp.sqrt(v + 1e-20) for v in norm])[group_kernel]
    splat_w = weight * norm
    slice_w = splat_w * (np.asarray(compat, np.float32) * alpha)[group_kernel][:, None]

    def step(_, q):
        message = _slice(point, _splat_blur(point, neighbours, q, splat_w), slice_w)
        return jax.nn.softmax(message - unary, axis=-1)

    return lax.fori_loop(0, iterations, step, jax.nn.softmax(-unary, axis=-1))


def _dense_crf(image, probs, iterations, gaussian, bilateral):
    """Marginals (H, W, K) for one image; `gaussian` = (sxy, compat), `bilateral` =
    (sxy, srgb, compat), all Python numbers."""
    height, width, num_labels = probs.shape
    kernels = [
        _Kernel(*_features(image, gaussian[0], None), gaussian[1]),
        _Kernel(*_features(image, bilateral[0], bilateral[1]), bilateral[2]),
    ]
    codec = _KeyCodec.for_kernels(kernels)
    entries = _entries([k.features for k in kernels], codec)
    unary = -jnp.log(jnp.clip(probs.reshape(-1, num_labels).astype(jnp.float32), UNARY_CLIP, 1.0))
    compat = [k.compat for k in kernels]
    caps = _capacities(entries.point.shape[0])
    branches = [
        lambda u, e, c=c: _mean_field(u, e, codec, compat, iterations, c) for c in caps
    ]
    which = jnp.searchsorted(jnp.asarray(caps), entries.num_points)
    return lax.switch(which, branches, unary, entries).reshape(height, width, num_labels)


def _features(image: jax.Array, sxy: float, srgb: float | None):
    """pydensecrf's DenseCRF2D features (x / sxy, y / sxy[, r / srgb, g / srgb, b / srgb]) as
    (N, d), with their static upper bounds."""
    height, width = image.shape[:2]
    y, x = jnp.meshgrid(jnp.arange(height), jnp.arange(width), indexing="ij")
    columns = [x.astype(jnp.float32) / np.float32(sxy), y.astype(jnp.float32) / np.float32(sxy)]
    feature_max = [(width - 1) / sxy, (height - 1) / sxy]
    if srgb is not None:
        columns += [image[..., c].astype(jnp.float32) / np.float32(srgb) for c in range(3)]
        feature_max += [255.0 / srgb] * 3
    return jnp.stack(columns, axis=-1).reshape(height * width, -1), tuple(feature_max)
