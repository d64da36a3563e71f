"""The permutohedral lattice of Adams, Baek & Davis (Eurographics 2010): Gaussian filtering in
a d-dimensional feature space by splatting onto a lattice, blurring along it and slicing back.

Every numerical choice follows Krähenbühl's C++ code as shipped in pydensecrf: the same lattice
embedding and rounding, the [1/2, 1, 1/2] blur along the d+1 lattice axes in order, and lattice
points that no pixel touched counting as zero.

Everything is jit-able with static shapes. A lattice is built once per feature set: the
(pixel, vertex) keys are deduplicated in a hash table (`hash_table`), and each point's
neighbours along the d+1 lattice axes are looked up in the same table. Filtering is then a
splat (scatter-add over tiles of pixels), a blur (gathers) and a slice (gathers). The number of
lattice points depends on the features, and arrays must have static sizes: on concrete inputs
the keys are deduplicated first and the rest compiled for the size found (rounded up, so a few
sizes serve all images); while tracing under an outer `jit` the size is the worst case, every
(pixel, vertex) its own point, which is correct but slower, mostly on CPU.
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

from jaxseg.crf import hash_table

_SPLAT_TILE = 4096


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
    """Exact packing of a lattice point (remainder, key) of one kernel into uint32 words.

    Key coordinates are all congruent to the remainder modulo d+1, so they are stored divided
    by d+1 and shifted by a static minimum: equal words mean equal lattice points.
    """

    fields: tuple[tuple[int, int], ...]
    num_words: int
    key_min: np.ndarray

    @classmethod
    def for_features(cls, feature_max: Sequence[float]) -> _KeyCodec:
        """A codec whose field widths hold every key of features in [0, feature_max]."""
        d = len(feature_max)
        ranges = _key_ranges(feature_max, d)
        key_min = np.array([lo // (d + 1) for lo, _ in ranges], np.int32)
        widths = [d.bit_length()] + [
            (hi // (d + 1) - lo // (d + 1)).bit_length() for lo, hi in ranges
        ]
        fields, word, shift = [], 0, 0
        for width in widths:
            if shift + width > 32:
                word, shift = word + 1, 0
            fields.append((word, shift))
            shift += width
        return cls(tuple(fields), word + 1, key_min)

    def encode(self, remainder, keys: jax.Array) -> jax.Array:
        """Words (num_words, ...) of keys (..., d) with remainder an int or an array (...)."""
        d = keys.shape[-1]
        shifted = keys - (remainder if isinstance(remainder, int) else remainder[..., None])
        coords = shifted // (d + 1) - self.key_min
        values = [remainder] + [coords[..., i] for i in range(d)]
        words = [jnp.zeros(keys.shape[:-1], jnp.uint32) for _ in range(self.num_words)]
        for value, (word, shift) in zip(values, self.fields, strict=True):
            words[word] = words[word] | (jnp.asarray(value).astype(jnp.uint32) << shift)
        return jnp.stack(words)


class Entries(NamedTuple):
    """One kernel's (pixel, simplex vertex) pairs, deduplicated into lattice points.

    Leading axis r is the vertex of remainder r; entry e = r * N + pixel. `num_points` is -1
    if the hash table failed (see `hash_table.insert`).
    """

    keys: jax.Array
    weight: jax.Array
    words: jax.Array
    table: jax.Array
    first: jax.Array
    point: jax.Array
    num_points: jax.Array


@functools.partial(jax.jit, static_argnames="feature_max")
def lattice_entries(features: jax.Array, feature_max: tuple[float, ...]) -> Entries:
    """Lattice vertices of every pixel (features (N, d) in [0, feature_max]), deduplicated."""
    codec = _KeyCodec.for_features(feature_max)
    keys, weight = _simplex_vertices(features)
    words = jnp.concatenate([codec.encode(r, key) for r, key in enumerate(keys)], axis=1)
    table, owner = hash_table.insert(words)
    first = owner == jnp.arange(owner.shape[0])
    # Points are numbered pixel by pixel (all of a pixel's vertices, then the next pixel's), so
    # neighbouring points get nearby numbers and the blur's gathers stay local in memory.
    by_pixel = jnp.cumsum(first.reshape(weight.shape).T, dtype=jnp.int32) - 1
    numbering = by_pixel.reshape(weight.shape[::-1]).T.reshape(-1)
    num_points = jnp.where(jnp.all(owner >= 0), by_pixel[-1] + 1, -1)
    point = numbering[jnp.maximum(owner, 0)].reshape(weight.shape)
    return Entries(keys, weight, words, table, first, point, num_points)


def _neighbours(entries: Entries, feature_max: tuple[float, ...], capacity: int) -> jax.Array:
    """(d+1, 2, capacity + 1) indices of each lattice point's two neighbours along each of the
    d+1 lattice axes; `capacity` stands for a missing neighbour (a zero row of the lattice).

    Only the neighbours on one side are looked up: q is p's neighbour at -1 exactly when p is
    q's neighbour at +1, so the other side is that map inverted.
    """
    groups, n, d = entries.keys.shape
    slot = jnp.where(entries.first, entries.point.reshape(-1), capacity)
    first = jnp.zeros((capacity,), jnp.int32).at[slot].set(jnp.arange(groups * n), mode="drop")
    key = entries.keys.reshape(-1, d)[first]
    steps = 1 - np.where(np.arange(d + 1)[:, None] == np.arange(d), d + 1, 0)
    queries = key[None] - steps[:, None, :]
    remainders = jnp.broadcast_to((first // n - 1) % (d + 1), queries.shape[:2])
    codec = _KeyCodec.for_features(feature_max)
    found = hash_table.lookup(entries.table, entries.words, codec.encode(remainders, queries))
    exists = (found >= 0) & (jnp.arange(capacity) < entries.num_points)
    below = jnp.where(exists, entries.point.reshape(-1)[jnp.maximum(found, 0)], capacity)
    points = jnp.broadcast_to(jnp.arange(capacity, dtype=jnp.int32), below.shape)
    above = jnp.full((d + 1, capacity + 1), capacity, jnp.int32)
    above = above.at[jnp.arange(d + 1)[:, None], below].set(points)[:, :capacity]
    neighbour = jnp.stack([below, above], axis=1)
    return jnp.pad(neighbour, ((0, 0), (0, 0), (0, 1)), constant_values=capacity)


class Lattice(NamedTuple):
    """One kernel's lattice, ready for filtering: each pixel's d+1 lattice points and
    barycentric weights (d+1, N), and each point's neighbours (d+1, 2, capacity + 1)."""

    point: jax.Array
    weight: jax.Array
    neighbours: jax.Array


def lattice_capacity(num_points: jax.Array, num_entries: int) -> int:
    """Static number of lattice points to allocate: `num_points` rounded up (to 1/8 of its
    power of two, so a few sizes cover all images), or all entries when it is traced."""
    if isinstance(num_points, jax.core.Tracer):
        return num_entries
    if int(np.min(num_points)) < 0:
        raise RuntimeError("dense CRF: the lattice hash table could not place every key")
    most = max(int(np.max(num_points)), 1)
    step = 1 << max(most.bit_length() - 3, 10)
    return min(-(-most // step) * step, num_entries)


@functools.partial(jax.jit, static_argnames=("feature_max", "capacity"))
def finish_lattice(entries: Entries, feature_max: tuple[float, ...], capacity: int) -> Lattice:
    """The lattice of deduplicated entries, for at most `capacity` points."""
    return Lattice(entries.point, entries.weight, _neighbours(entries, feature_max, capacity))


def build_lattice(features: jax.Array, feature_max: tuple[float, ...]) -> Lattice:
    """A kernel's lattice: sized to its points for concrete features, to the worst case
    (every entry its own point) under `jit`."""
    entries = lattice_entries(features, feature_max)
    return finish_lattice(
        entries, feature_max, lattice_capacity(entries.num_points, entries.first.shape[0])
    )


def _splat(point: jax.Array, weight: jax.Array, values: jax.Array, capacity: int) -> jax.Array:
    """Lattice values (capacity + 1, C): each point's sum of weight (G, N) * values (N, C).

    A scatter-add over tiles of pixels, so each tile's weighted copies of the values stay in
    cache on their way into the (small) lattice instead of being written out in full.
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
    """Values at the pixels (N, C): the sum over vertices of weight (G, N) * lattice value."""
    return sum(weight[g][:, None] * grid[point[g]] for g in range(point.shape[0]))


def filter_values(
    lattice: Lattice, values: jax.Array, splat_w: jax.Array, slice_w: jax.Array
) -> jax.Array:
    """Permutohedral filtering of values (N, C): splat, blur, slice, with per-vertex weights
    (d+1, N) for the splat and the slice (the barycentric ones, scaled as the caller needs)."""
    capacity = lattice.neighbours.shape[-1] - 1
    grid = _splat(lattice.point, splat_w, values, capacity)
    return _slice(lattice.point, _blur(grid, lattice.neighbours), slice_w)
