"""keep_freed_memory makes a large block freed by a worker thread come back without page faults."""

import subprocess
import sys
import textwrap

import pytest

# A worker thread (as XLA's are) fills, frees and refills a 256 MiB block and reports the
# minor page faults of the refill: about 65k when glibc unmaps the block on free.
_REFILL_FAULTS = textwrap.dedent(
    """
    import ctypes, resource, sys, threading
    sys.path.insert(0, {root!r})
    if {keep}:
        from jaxseg import host_memory
        assert host_memory.keep_freed_memory()
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size, faults = 256 << 20, []

    def fill_twice():
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
        libc.free(block)

    worker = threading.Thread(target=fill_twice)
    worker.start()
    worker.join()
    print(faults[0])
    """
)


def refill_faults(keep: bool) -> int:
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    script = _REFILL_FAULTS.format(root=root, keep=keep)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning")
def test_freed_block_is_reused_instead_of_faulted_back():
    pages = (256 << 20) // 4096
    assert refill_faults(keep=False) > pages // 2  # the default: unmapped and faulted back
    assert refill_faults(keep=True) < pages // 50
