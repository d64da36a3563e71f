"""Device mesh and shardings for data-parallel training on one CPU, many GPUs or a TPU pod.

The batch is split over the mesh's `data` axis and parameters are replicated; under `jit`
BatchNorm statistics are then reduced over the global batch (synchronised BN) with no
collective written by hand. Axes are `Auto` so XLA propagates shardings through reshapes and
einsums inside models without per-op annotations.
"""

from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices (all of them by default)."""
    devices = jax.devices()
    count = len(devices) if num_devices is None else num_devices
    if not 1 <= count <= len(devices):
        raise ValueError(f"num_devices={num_devices} but {len(devices)} devices are available")
    return Mesh(np.asarray(devices[:count]), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy on every device (parameters, optimizer state)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding that splits the leading (batch) dimension over the `data` axis."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_divisible(
    global_batch_size: int, mesh: Mesh, field: str = "config.batch_size"
) -> None:
    """Fail early, naming the config `field`, when the batch does not split over devices."""
    devices, processes = mesh.size, jax.process_count()
    if global_batch_size < 1 or global_batch_size % devices or global_batch_size % processes:
        raise ValueError(
            f"{field}={global_batch_size} must be a positive multiple of the number of devices "
            f"({devices}) and of processes ({processes})"
        )


def to_global(batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble each process's local batch into global arrays sharded over `data`."""
    sharding = batch_sharded(mesh)
    return {
        key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
        for key, value in batch.items()
    }
