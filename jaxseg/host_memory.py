"""Keeps freed host memory in the process, so XLA's CPU backend stops page-faulting it back.

Each CPU execution allocates its temporaries as one block (about 1 GiB for a ResNet-50 train
step at batch 2, 256x256). glibc serves blocks that large with a fresh `mmap` and unmaps them
on free, so every step touches a gigabyte of new pages: 250k+ page faults, a fifth of the
step (and VGG-16's FCNs need 5 GiB). With one malloc arena, no `mmap` for allocations and no
trimming of the heap, the block is reused from the heap instead; the process keeps its peak
footprint, as a training job does anyway. It must run before the first jax computation starts XLA's
threads (glibc fixes the arena limit when a second thread first allocates).
"""

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_NEVER = -1  # mallopt's int converts to glibc's size_t threshold: SIZE_MAX, never trim


def keep_freed_memory() -> bool:
    """Tunes glibc's malloc as above; False (and no change) off glibc, e.g. macOS or musl."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _NEVER))
    return all(mallopt(option, value) == 1 for option, value in settings)
