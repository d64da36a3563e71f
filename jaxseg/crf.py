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

import functools
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
    return np.array(
        [1.0 / np.sqrt((i + 2) * (i + 1)) * float(inv_std) for i in range(d)], np.float32
    )


def _materialize(*columns: list[jax.Array]) -> list[list[jax.Array]]:
    """Lists of (N,) columns, computed once: stops XLA from fusing them into every consumer,
    where they would be recomputed per use."""
    stacked = lax.optimization_barrier([jnp.stack(c) for c in columns])
    return [list(s) for s in stacked]


def _simplex_vertices(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Lattice keys (d+1, N, d) and barycentric weights (d+1, N) of each feature's simplex.

    Index r of the leading axis is the vertex of remainder r: all its coordinates are congruent
    to r modulo d+1. Written column by column (d is at most 5): XLA handles these elementwise
    chains far better than reductions over tiny axes.
    """
    d = features.shape[1]
    scale = _scale_factors(d)
    down = np.float32(1.0 / (d + 1))
    elevated = [None] * (d + 1)
    running = jnp.zeros(features.shape[:1], jnp.float32)
    for j in range(d, 0, -1):
        scaled = features[:, j - 1] * scale[j - 1]
        elevated[j] = running - np.float32(j) * scaled
        running = running + scaled
    elevated[0] = running
    (elevated,) = _materialize(elevated)

    rounded = [lax.round(e * down, lax.RoundingMethod.TO_NEAREST_EVEN) for e in elevated]
    rem0 = [(r * np.float32(d + 1)).astype(jnp.int32) for r in rounded]
    excess = sum(rounded).astype(jnp.int32)
    diff = [e - r.astype(jnp.float32) for e, r in zip(elevated, rem0, strict=True)]
    diff, rem0, (excess,) = _materialize(diff, rem0, [excess])
    rank = [excess] * (d + 1)
    for i in range(d + 1):
        for j in range(i + 1, d + 1):
            before = (diff[i] < diff[j]).astype(jnp.int32)
            rank[i] = rank[i] + before
            rank[j] = rank[j] + 1 - before
    wrap = [jnp.where(r < 0, d + 1, 0) - jnp.where(r > d, d + 1, 0) for r in rank]
    rank = [r + w for r, w in zip(rank, wrap, strict=True)]
    rem0 = [r + w for r, w in zip(rem0, wrap, strict=True)]
    elevated, rank, rem0 = _materialize(elevated, rank, rem0)

    offset = [(e - r.astype(jnp.float32)) * down for e, r in zip(elevated, rem0, strict=True)]
    by_rank = [
        sum(jnp.where(rank[i] == k, offset[i], 0.0) for i in range(d + 1)) for k in range(d + 1)
    ]
    (by_rank,) = _materialize(by_rank)
    weights = [by_rank[d] + (1.0 + -by_rank[0])]
    weights += [by_rank[d - p] - by_rank[d - p + 1] for p in range(1, d + 1)]

    keys = [
        jnp.stack(
            [rem0[i] + jnp.where(rank[i] <= d - r, r, r - (d + 1)) for i in range(d)], axis=-1
        )
        for r in range(d + 1)
    ]
    return jnp.stack(keys), jnp.stack(weights)


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

    def encode(self, kernel, remainder, keys: jax.Array) -> jax.Array:
        """Words (num_words, ...) for keys (..., C) of one group (`kernel` and `remainder` ints,
        so the divisions are by constants) or of mixed groups (int arrays of shape (...))."""
        if isinstance(kernel, int):
            d = int(self.dims[kernel])
            coords = (keys[..., :d] - remainder) // (d + 1) - self.key_min[kernel, :d]
            mask = None
        else:
            dplus1 = jnp.asarray(self.dims + 1)[kernel][..., None]
            coords = (keys - remainder[..., None]) // dplus1 - jnp.asarray(self.key_min)[kernel]
            mask = jnp.arange(keys.shape[-1]) < dplus1 - 1
            coords = jnp.where(mask, coords, 0)
        values = [kernel, remainder] + [coords[..., i] for i in range(coords.shape[-1])]
        words = [jnp.zeros(keys.shape[:-1], jnp.uint32) for _ in range(self.num_words)]
        for value, (word, shift) in zip(values, self.fields, strict=False):
            words[word] = words[word] | (jnp.asarray(value).astype(jnp.uint32) << shift)
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


def _insert(words: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Deduplicate keys (num_words, E) in an open-addressing hash table of 2**b >= 2E slots.

    Returns the table and, per key, the index of the copy that owns its slot (-1 if probing
    ran out of rounds, which needs a probe sequence of over (2**31 / E) slots). In round r every
    unplaced key claims its slot with a scatter-min of r * E + index, so an earlier owner is
    never displaced; a slot owned by a different key sends it one slot further.
    """
    num_keys = words.shape[1]
    table_bits = (2 * num_keys - 1).bit_length()
    size = 1 << table_bits
    max_rounds = int(_EMPTY) // num_keys - 1
    ids = jnp.arange(num_keys, dtype=jnp.int32)

    def unplaced(state):
        rounds, _, _, owner = state
        return (rounds < max_rounds) & jnp.any(owner < 0)

    def probe(state):
        rounds, table, slot, owner = state
        active = owner < 0
        table = table.at[jnp.where(active, slot, size)].min(rounds * num_keys + ids)
        claimant = table[slot] % num_keys
        same = jnp.all(words[:, claimant] == words, axis=0)
        owner = jnp.where(active & same, claimant, owner)
        slot = jnp.where(active & ~same, (slot + 1) & (size - 1), slot)
        return rounds + 1, table, slot, owner

    table = jnp.full((size + 1,), _EMPTY, jnp.int32)
    owner = jnp.full((num_keys,), -1, jnp.int32)
    state = (jnp.int32(0), table, _hash(words, table_bits), owner)
    _, table, _, owner = lax.while_loop(unplaced, probe, state)
    return table[:size], owner


def _lookup(table: jax.Array, words: jax.Array, queries: jax.Array) -> jax.Array:
    """Index of the stored key equal to each query (num_words, Q), or -1 where there is none."""
    size = table.shape[0]
    num_keys = words.shape[1]
    result = jnp.full(queries.shape[1:], -2, jnp.int32)

    def pending(state):
        return jnp.any(state[1] == -2)

    def probe(state):
        slot, result = state
        held = table[slot]
        empty = held == _EMPTY
        owner = jnp.where(empty, 0, held % num_keys)
        same = jnp.all(words[:, owner] == queries, axis=0) & ~empty
        waiting = result == -2
        result = jnp.where(waiting & empty, -1, jnp.where(waiting & same, owner, result))
        slot = jnp.where(waiting & ~empty & ~same, (slot + 1) & (size - 1), slot)
        return slot, result

    state = (_hash(queries, size.bit_length() - 1), result)
    return lax.while_loop(pending, probe, state)[1]


def _groups(dims: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Kernel index and remainder of each (kernel, remainder) group, kernels in order."""
    kernel = np.concatenate([np.full(d + 1, k) for k, d in enumerate(dims)]).astype(np.int32)
    remainder = np.concatenate([np.arange(d + 1) for d in dims]).astype(np.int32)
    return kernel, remainder


class _Entries(NamedTuple):
    """Every (pixel, simplex vertex) pair of every kernel, deduplicated into lattice points.

    Entries are laid out group-major: group g = (kernel, remainder) holds one vertex per pixel,
    so entry e is pixel e % N of group e // N. Points are numbered in order of their first
    entry, so each group's points are contiguous and start at the point of its pixel 0.
    """

    keys: jax.Array
    weight: jax.Array
    words: jax.Array
    table: jax.Array
    first: jax.Array
    point: jax.Array
    num_points: jax.Array


def _entries(kernels: Sequence[_Kernel], codec: _KeyCodec) -> _Entries:
    """Lattice vertices of every pixel for every kernel, deduplicated with a hash table.

    `num_points` is -1 if the hash table could not place every key (see `_insert`).
    """
    num_coords = codec.key_min.shape[1]
    keys, weights, words = [], [], []
    for k, kernel in enumerate(kernels):
        vertex_keys, vertex_weights = _simplex_vertices(kernel.features)
        words += [codec.encode(k, r, key) for r, key in enumerate(vertex_keys)]
        pad = num_coords - vertex_keys.shape[2]
        keys.append(jnp.pad(vertex_keys, ((0, 0), (0, 0), (0, pad))))
        weights.append(vertex_weights)
    words = jnp.concatenate(words, axis=1)
    table, owner = _insert(words)
    first = owner == jnp.arange(owner.shape[0])
    numbering = jnp.cumsum(first, dtype=jnp.int32) - 1
    num_points = jnp.where(jnp.all(owner >= 0), numbering[-1] + 1, -1)
    n = kernels[0].features.shape[0]
    point = numbering[jnp.maximum(owner, 0)].reshape(-1, n)
    keys = jnp.concatenate(keys).reshape(-1, num_coords)
    return _Entries(keys, jnp.concatenate(weights), words, table, first, point, num_points)


def _neighbours(entries: _Entries, codec: _KeyCodec, capacity: int) -> jax.Array:
    """(D, 2, capacity + 1) indices of each lattice point's two neighbours along each of the D
    lattice axes; `capacity` stands for a missing neighbour (a zero row of the lattice)."""
    num_entries = entries.keys.shape[0]
    n = entries.point.shape[1]
    slot = jnp.where(entries.first, entries.point.reshape(-1), capacity)
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
    point = entries.point.reshape(-1)[jnp.maximum(found, 0)]
    neighbour = jnp.where((found >= 0) & jnp.concatenate(valid), point, capacity)
    neighbour = neighbour.reshape(num_axes, 2, capacity)
    return jnp.pad(neighbour, ((0, 0), (0, 0), (0, 1)), constant_values=capacity)


_SPLAT_TILE = 4096


def _splat(point: jax.Array, weight: jax.Array, values: jax.Array, capacity: int) -> jax.Array:
    """Lattice values (capacity + 1, C): each point's sum of weight (G, N) * values (N, C).

    A scatter-add over tiles of pixels, so each tile's weighted copies of the values are
    written to cache and summed into the (small) lattice rather than written out in full.
    """
    groups, n = point.shape
    tile = min(_SPLAT_TILE, n)
    lanes = jnp.arange(tile)

    def add_tile(i, grid):
        start = jnp.minimum(i * tile, n - tile)
        fresh = (start + lanes >= i * tile)[None, :, None]
        tile_values = lax.dynamic_slice_in_dim(values, start, tile)
        tile_point = lax.dynamic_slice_in_dim(point, start, tile, axis=1)
        tile_weight = lax.dynamic_slice_in_dim(weight, start, tile, axis=1)
        updates = jnp.where(fresh, tile_weight[..., None] * tile_values[None], 0.0)
        return grid.at[tile_point.reshape(-1)].add(updates.reshape(groups * tile, -1))

    grid = jnp.zeros((capacity + 1, values.shape[1]), values.dtype)
    return lax.fori_loop(0, -(-n // tile), add_tile, grid)


def _blur(grid: jax.Array, neighbours: jax.Array) -> jax.Array:
    """[1/2, 1, 1/2] along each lattice axis in turn; missing neighbours count as zero.

    A loop, not an unrolled sequence: XLA would fuse consecutive axes and recompute each
    gathered value once per use."""

    def axis(j, grid):
        return grid + 0.5 * (grid[neighbours[j, 0]] + grid[neighbours[j, 1]])

    return lax.fori_loop(0, neighbours.shape[0], axis, grid)


def _slice(point: jax.Array, grid: jax.Array, weight: jax.Array) -> jax.Array:
    """Values at the pixels (N, C): the sum over groups of weight (G, N) * lattice value."""
    return sum(weight[g][:, None] * grid[point[g]] for g in range(point.shape[0]))


def _mean_field(
    unary: jax.Array,
    entries: _Entries,
    codec: _KeyCodec,
    compat: Sequence[float],
    iterations: int,
    capacity: int,
) -> jax.Array:
    """Mean-field marginals (N, K) on a lattice of at most `capacity` points."""
    n = unary.shape[0]
    neighbours = _neighbours(entries, codec, capacity)
    group_kernel, _ = _groups(codec.dims.tolist())
    alpha = 1.0 / (1.0 + np.exp2(-codec.dims.astype(np.float32)))
    ones = jnp.ones((n, 1), jnp.float32)
    ones = _blur(_splat(entries.point, entries.weight, ones, capacity), neighbours)
    norm = [
        _slice(entries.point, ones, entries.weight * (alpha[k] * (group_kernel == k))[:, None])
        for k in range(len(compat))
    ]
    norm = (1.0 / jnp.sqrt(jnp.concatenate(norm, axis=1) + 1e-20)).T[group_kernel]
    splat_w = entries.weight * norm
    slice_w = splat_w * (np.asarray(compat, np.float32) * alpha)[group_kernel][:, None]

    def step(_, logits):
        grid = _blur(_splat(entries.point, splat_w, jax.nn.softmax(logits), capacity), neighbours)
        return _slice(entries.point, grid, slice_w) - unary

    # The loop carries the logits, not the marginals: the loop boundary keeps XLA from fusing
    # the slice's gathers into the softmax, where they would be recomputed per reduction.
    q = jax.nn.softmax(lax.fori_loop(0, iterations, step, -unary))
    return jnp.where(entries.num_points >= 0, q, jnp.nan)


def _features(image: jax.Array, sxy: float, srgb: float | None) -> tuple[jax.Array, tuple]:
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


class _Settings(NamedTuple):
    """Static CRF settings, with pydensecrf's meanings."""

    iterations: int
    gaussian_sxy: float
    gaussian_compat: float
    bilateral_sxy: float
    bilateral_srgb: float
    bilateral_compat: float

    def kernels(self, image: jax.Array) -> list[_Kernel]:
        """The Gaussian and bilateral pairwise terms for one (H, W, 3) image."""
        gaussian = _features(image, self.gaussian_sxy, None)
        bilateral = _features(image, self.bilateral_sxy, self.bilateral_srgb)
        return [
            _Kernel(*gaussian, self.gaussian_compat),
            _Kernel(*bilateral, self.bilateral_compat),
        ]


@functools.partial(jax.jit, static_argnames="settings")
def _lattice(image: jax.Array, settings: _Settings) -> _Entries:
    """The image's lattice entries, deduplicated (the capacity-independent part)."""
    kernels = settings.kernels(image)
    return _entries(kernels, _KeyCodec.for_kernels(kernels))


@functools.partial(jax.jit, static_argnames=("settings", "capacity"))
def _infer(image, probs, entries: _Entries, settings: _Settings, capacity: int) -> jax.Array:
    """Mean-field marginals (H, W, K) given the image's lattice entries."""
    kernels = settings.kernels(image)
    codec = _KeyCodec.for_kernels(kernels)
    unary = -jnp.log(jnp.clip(probs.astype(jnp.float32), UNARY_CLIP, 1.0))
    compat = [kernel.compat for kernel in kernels]
    q = _mean_field(
        unary.reshape(-1, probs.shape[-1]), entries, codec, compat, settings.iterations, capacity
    )
    return q.reshape(probs.shape)


def _capacity(num_points: jax.Array, num_entries: int) -> int:
    """Smallest power of two (at least 4096) holding `num_points` lattice points, or the
    number of entries (their upper bound) when `num_points` is only known at run time."""
    if isinstance(num_points, jax.core.Tracer):
        return num_entries
    most = int(np.max(num_points))
    if int(np.min(num_points)) < 0:
        raise RuntimeError("dense CRF: the lattice hash table could not place every key")
    return min(1 << max(most - 1, (1 << _MIN_CAPACITY_LOG2) - 1).bit_length(), num_entries)


def _check_inputs(image, probs, batched: bool) -> None:
    """Clear errors for malformed inputs. Shapes and dtypes are checked always; that `probs`
    holds probabilities summing to 1 only when it is a concrete array (not under `jit`)."""
    lead = "(B, H, W, " if batched else "(H, W, "
    image_shape, probs_shape = np.shape(image), np.shape(probs)
    if len(image_shape) != len(lead.split(",")) or image_shape[-1] != 3:
        raise ValueError(f"dense CRF: image must be {lead}3), got shape {image_shape}")
    if jnp.result_type(image) != jnp.uint8:
        raise TypeError(
            f"dense CRF: image must be uint8 RGB (0-255, as pydensecrf), got {jnp.result_type(image)}"
        )
    if len(probs_shape) != len(image_shape) or probs_shape[:-1] != image_shape[:-1]:
        raise ValueError(
            f"dense CRF: probs must be {lead}K) matching image {image_shape}, got {probs_shape}"
        )
    if not jnp.issubdtype(jnp.result_type(probs), jnp.floating):
        raise TypeError(f"dense CRF: probs must be floating point, got {jnp.result_type(probs)}")
    if isinstance(probs, jax.core.Tracer):
        return
    values = np.asarray(probs, np.float32)
    if not np.all(np.isfinite(values)) or values.min(initial=0.0) < 0.0:
        raise ValueError("dense CRF: probs must be finite and non-negative (softmax output)")
    worst = np.abs(values.sum(axis=-1) - 1.0).max(initial=0.0)
    if worst > 1e-3:
        raise ValueError(
            f"dense CRF: probs must sum to 1 over the last axis (softmax output); "
            f"found a pixel summing to 1 {'+' if worst > 0 else ''}{worst:.3g} off"
        )


def _settings(
    iterations, gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat
) -> _Settings:
    """Validated static settings."""
    if (
        isinstance(iterations, bool)
        or not isinstance(iterations, int | np.integer)
        or iterations < 0
    ):
        raise ValueError(f"dense CRF: iterations must be a non-negative int, got {iterations!r}")
    scales = {
        "gaussian_sxy": gaussian_sxy,
        "bilateral_sxy": bilateral_sxy,
        "bilateral_srgb": bilateral_srgb,
    }
    for name, value in scales.items():
        if not isinstance(value, int | float | np.number) or not value > 0:
            raise ValueError(f"dense CRF: {name} must be a positive number, got {value!r}")
    for name, value in {
        "gaussian_compat": gaussian_compat,
        "bilateral_compat": bilateral_compat,
    }.items():
        if not isinstance(value, int | float | np.number):
            raise ValueError(f"dense CRF: {name} must be a number, got {value!r}")
    return _Settings(
        int(iterations),
        float(gaussian_sxy),
        float(gaussian_compat),
        float(bilateral_sxy),
        float(bilateral_srgb),
        float(bilateral_compat),
    )


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
    """Dense-CRF marginals (H, W, K) for a uint8 RGB `image` (H, W, 3) and softmax `probs`.

    The settings mean what pydensecrf's `addPairwiseGaussian(sxy, compat)` and
    `addPairwiseBilateral(sxy, srgb, rgbim, compat)` mean and must be Python numbers.
    Called on concrete arrays, the lattice is built first and the inference compiled for the
    capacity it needs (a power of two); under `jit` the capacity is the worst case, 9 * H * W,
    which is correct but slower on CPU.
    """
    _check_inputs(image, probs, batched=False)
    settings = _settings(
        iterations, gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat
    )
    entries = _lattice(image, settings)
    capacity = _capacity(entries.num_points, entries.keys.shape[0])
    return _infer(image, probs, entries, settings, capacity)


def dense_crf_batch(
    images: jax.Array,
    probs: jax.Array,
    *,
    iterations: int = 10,
    gaussian_sxy: float = 3.0,
    gaussian_compat: float = 3.0,
    bilateral_sxy: float = 80.0,
    bilateral_srgb: float = 13.0,
    bilateral_compat: float = 10.0,
) -> jax.Array:
    """`dense_crf` over a batch: uint8 `images` (B, H, W, 3), `probs` (B, H, W, K).

    Images are processed one after another (`lax.map`) with one shared lattice capacity, so
    memory stays that of a single image.
    """
    _check_inputs(images, probs, batched=True)
    settings = _settings(
        iterations, gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat
    )
    entries = jax.vmap(functools.partial(_lattice, settings=settings))(images)
    capacity = _capacity(entries.num_points, entries.keys.shape[1])

    def one(args):
        return _infer(*args, settings=settings, capacity=capacity)

    return lax.map(one, (images, probs, entries))
