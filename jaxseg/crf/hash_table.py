"""An open-addressing hash table of packed integer keys, built and queried with array ops.

The lattice uses it to deduplicate (pixel, vertex) keys into lattice points and to find each
point's neighbours. Both directions are `while_loop`s of vectorized probes, so they jit with
static shapes: inserting is scatter-min claims with linear probing, looking up is gathers.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

_EMPTY = np.int32(np.iinfo(np.int32).max)


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


def insert(words: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Deduplicate keys (num_words, E) in an open-addressing hash table of 2**b >= 2E slots.

    Returns the table and, per key, the index of the copy that owns its slot (-1 if probing
    ran out of rounds, which needs a probe sequence of over 2**31 / E slots). In round r every
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
        claims = jnp.where(active, slot, size)  # placed keys are dropped: cheaper than a dummy
        table = table.at[claims].min(rounds * num_keys + ids, mode="drop")
        claimant = table[slot] % num_keys
        same = jnp.all(words[:, claimant] == words, axis=0)
        owner = jnp.where(active & same, claimant, owner)
        slot = jnp.where(active & ~same, (slot + 1) & (size - 1), slot)
        return rounds + 1, table, slot, owner

    table = jnp.full((size,), _EMPTY, jnp.int32)
    owner = jnp.full((num_keys,), -1, jnp.int32)
    state = (jnp.int32(0), table, _hash(words, table_bits), owner)
    _, table, _, owner = lax.while_loop(unplaced, probe, state)
    return table, owner


def lookup(table: jax.Array, words: jax.Array, queries: jax.Array) -> jax.Array:
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
