"""Where a jaxseg model's CPU time goes: XLA's per-op times (jax.profiler) of a train step or
an inference, each op named by the layer it computes (its HLO metadata), largest first.

    python benchmarks/profile_ops.py --model pspnet [--mode infer|train] [--top 25]

The model and inputs are `benchmarks/throughput.py`'s (batch 2 at 256x256 by default).
"""

import argparse
import collections
import glob
import os
import re
import tempfile

DUMP = tempfile.mkdtemp(prefix="jaxseg_hlo_")
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + f" --xla_cpu_enable_xprof_traceme=true --xla_dump_to={DUMP}"
)

import jax  # noqa: E402  (after XLA_FLAGS)
import numpy as np  # noqa: E402
from jax.profiler import ProfileData  # noqa: E402
from throughput import jax_runners  # noqa: E402
from torch_models import NUM_CLASSES, PAIRS  # noqa: E402

from jaxseg import host_memory  # noqa: E402

MODULES = {"train": "jit_step", "infer": "jit__lambda"}


def op_layers(module: str) -> dict[str, str]:
    """HLO instruction name -> the op_name metadata (the layer's path) in `module`'s dump."""
    files = sorted(glob.glob(f"{DUMP}/*.{module}.cpu_after_optimizations.txt"))
    pattern = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = .*?op_name=\"([^\"]+)\"")
    if not files:
        return {}
    with open(files[-1]) as hlo:
        matches = (pattern.match(line) for line in hlo)
        return {m.group(1): m.group(2) for m in matches if m}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="pspnet", choices=sorted(PAIRS))
    parser.add_argument("--mode", default="infer", choices=sorted(MODULES))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    host_memory.keep_freed_memory()
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch, args.size, args.size, 3)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=(args.batch, args.size, args.size))
    options = argparse.Namespace(dtype="float32", device="cpu")
    train, infer, *_ = jax_runners(PAIRS[args.model], images, labels, options)
    run = train if args.mode == "train" else infer
    run()
    trace = tempfile.mkdtemp(prefix="jaxseg_trace_")
    with jax.profiler.trace(trace):
        for _ in range(args.calls):
            run()
    profile = ProfileData.from_file(glob.glob(f"{trace}/**/*.xplane.pb", recursive=True)[0])
    layers = op_layers(MODULES[args.mode])
    ms = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            for event in line.events:
                if event.name in layers:
                    ms[event.name] += event.duration_ns / 1e6 / args.calls
    total = sum(ms.values())
    print(f"{args.model} {args.mode}: {total:.1f} ms of XLA ops per call, largest first")
    for name, spent in ms.most_common(args.top):
        print(f"{spent:8.1f} ms {100 * spent / total:5.1f}%  {name:<28} {layers[name][:90]}")


if __name__ == "__main__":
    main()
