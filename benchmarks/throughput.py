"""Train-step and inference throughput of jaxseg models against the same networks in PyTorch.

    python benchmarks/throughput.py [--models deeplab_v3,pspnet] [--batch 2] [--size 256]
        [--dtype float32|bfloat16] [--device cpu|cuda] [--list]

Each model is paired with its PyTorch twin (`benchmarks/torch_models.py`, `--list` prints
them); start-up asserts both have equally many parameters. The train step's loss is the main
cross-entropy plus 0.4 times each auxiliary output's (DeepLab v2: each input scale's), in both
frameworks. The frameworks alternate in one process, each round in the other order than the
last. The report is median images/s; the jaxseg/PyTorch ratio (above 1: jaxseg is faster) as
the median of the rounds' own ratios, each of two adjacent timings, so the machine's drift
between rounds cancels, with their range ("per round") to show what noise remains; and peak
memory: for jaxseg XLA's compiled memory analysis (arguments + outputs + temporaries of the
train step), for PyTorch the peak allocated CUDA memory on GPU and on CPU the growth of the
process's peak RSS over the first train step (0 when an earlier model already raised the
peak). With --device=cuda PyTorch runs channels_last under bf16 autocast and MFU is the train
step's XLA cost-analysis FLOPs per second over --peak_tflops.
Compilation and warm-up are excluded.
"""

import argparse
import platform
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from torch.nn import functional as F
from torch_models import NUM_CLASSES, PAIRS, Pair

from jaxseg import host_memory, losses, models
from jaxseg.nn import lowering


def torch_runners(pair: Pair, images: np.ndarray, labels: np.ndarray, args):
    """(train, infer, parameter count, peak bytes) of the PyTorch twin."""
    device = torch.device(args.device)
    model = pair.build().to(device)
    count = sum(p.numel() for p in model.parameters())
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).to(device)
    y = torch.from_numpy(labels).to(device)
    if args.device == "cuda":
        model, x = (
            model.to(memory_format=torch.channels_last),
            x.contiguous(memory_format=torch.channels_last),
        )
    autocast = torch.autocast(args.device, torch.bfloat16, enabled=args.dtype == "bfloat16")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def sync():
        if args.device == "cuda":
            torch.cuda.synchronize()

    def train():
        model.train()
        with autocast:
            out = model(x)
            out = (out["out"], out["aux"]) if isinstance(out, dict) else out
            main, *aux = out if isinstance(out, tuple) else (out,)
            loss = F.cross_entropy(main.float(), y, ignore_index=255)
            for logits in aux:
                loss = loss + 0.4 * F.cross_entropy(logits.float(), y, ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sync()

    @torch.no_grad()
    def infer():
        model.eval()
        with autocast:
            out = model(x)
        (out["out"] if isinstance(out, dict) else out).sum().item()

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train()
    peak = (
        torch.cuda.max_memory_allocated()
        if args.device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    )
    return train, infer, count, peak


def jax_runners(pair: Pair, images: np.ndarray, labels: np.ndarray, args):
    """(train, infer, parameter count, peak bytes, train-step FLOPs) of the jaxseg model."""
    model = models.create(pair.model, num_classes=NUM_CLASSES, dtype=args.dtype, **pair.options)
    device = jax.devices(args.device.replace("cuda", "gpu"))[0]
    x, y = jax.device_put(jnp.asarray(images), device), jax.device_put(jnp.asarray(labels), device)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    count = sum(p.size for p in jax.tree_util.tree_leaves(variables["params"]))
    stats_of = lambda v: v.get("batch_stats", {})  # noqa: E731
    tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.01, momentum=0.9))
    # The train step donates its state (as train.py does); inference keeps `variables`.
    params = jax.tree.map(jnp.copy, variables["params"])
    state = (params, jax.tree.map(jnp.copy, stats_of(variables)), tx.init(params))

    def step(state, x, y, rng):
        params, stats, opt_state = state

        def loss_fn(p):
            out, updates = model.apply(
                {"params": p, "batch_stats": stats},
                x,
                train=True,
                mutable=["batch_stats"],
                rngs={"dropout": rng},
            )
            loss = losses.segmentation_loss(out, y, aux_weight=0.4)[0]
            return loss, updates.get("batch_stats", {})

        grads, new_stats = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state

    rng = jax.random.PRNGKey(1)
    compiled = jax.jit(step, donate_argnums=0).lower(state, x, y, rng).compile()
    memory = compiled.memory_analysis()
    peak = (
        (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes)
        if memory is not None
        else 0
    )
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = (cost or {}).get("flops", 0.0)
    predict = jax.jit(lambda v, images: model.apply(v, images))
    holder = {"state": state}

    def train():
        holder["state"] = compiled(holder["state"], x, y, rng)
        jax.block_until_ready(holder["state"])

    def infer():
        predict(variables, x).block_until_ready()

    return train, infer, count, peak, flops


def time_call(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(PAIRS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=989.0,
        help="the chip's dense bf16 peak for MFU (default: H200)",
    )
    parser.add_argument(
        "--conv_lowering",
        choices=lowering.MODES,
        default="auto",
        help="jaxseg's convolution lowering (lax: the plain XLA convolutions, for before/after)",
    )
    parser.add_argument("--list", action="store_true", help="print models and references")
    args = parser.parse_args()
    unknown = set(args.models.split(",")) - set(PAIRS)
    if unknown:
        parser.error(f"--models: unknown {sorted(unknown)}; known: {', '.join(PAIRS)}")
    return args


def has_smp() -> bool:
    try:
        import segmentation_models_pytorch  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    host_memory.keep_freed_memory()
    args = parse_args()
    lowering.configure(args.conv_lowering)
    if args.list:
        for name, pair in PAIRS.items():
            print(f"{name:<17} {pair.options or ''} vs {pair.reference}")
        return
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch, args.size, args.size, 3)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=(args.batch, args.size, args.size))
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.device}, torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads, jax {jax.__version__}"
    )
    print(
        f"batch {args.batch}, {args.size}x{args.size}, {args.dtype}, "
        f"conv lowering {args.conv_lowering}\n"
    )
    print(
        f"{'model':<17} {'mode':<6} {'jaxseg img/s':>13} {'PyTorch img/s':>14} {'ratio':>6} "
        f"{'per round':>10} "
        f"{'jax MiB':>8} {'torch MiB':>9} {'MFU':>6}"
    )
    smp_available = has_smp()
    for name in args.models.split(","):
        pair = PAIRS[name]
        if pair.needs_smp and not smp_available:
            print(f"{name:<17} skipped: segmentation_models_pytorch is not installed")
            continue
        jax_train, jax_infer, jax_count, jax_peak, flops = jax_runners(pair, images, labels, args)
        torch_train, torch_infer, torch_count, torch_peak = torch_runners(
            pair, images, labels, args
        )
        if jax_count != torch_count:
            raise SystemExit(
                f"{name}: jaxseg has {jax_count} parameters, its PyTorch twin "
                f"({pair.reference}) {torch_count}: not the same architecture"
            )
        runners = {"jax": (jax_train, jax_infer), "torch": (torch_train, torch_infer)}
        for mode in (0, 1):
            for fns in runners.values():
                fns[mode]()  # compile / warm up
            seconds = {"jax": [], "torch": []}
            order = list(runners.items())
            for round_ in range(args.rounds):
                for framework, fns in order if round_ % 2 == 0 else order[::-1]:
                    seconds[framework].append(time_call(fns[mode], args.repeats))
            rate = {k: args.batch / statistics.median(v) for k, v in seconds.items()}
            ratios = [t / j for j, t in zip(seconds["jax"], seconds["torch"], strict=True)]
            mfu = ""
            if mode == 0 and args.device == "cuda":
                mfu = f"{flops * rate['jax'] / args.batch / (args.peak_tflops * 1e12):>6.1%}"
            memory = (
                f"{jax_peak / 2**20:>8.0f} {torch_peak / 2**20:>9.0f}"
                if mode == 0
                else f"{'':>8} {'':>9}"
            )
            spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
            print(
                f"{name:<17} {('train', 'infer')[mode]:<6} {rate['jax']:>13.2f} "
                f"{rate['torch']:>14.2f} {statistics.median(ratios):>6.2f} {spread:>10} "
                f"{memory} {mfu}"
            )


if __name__ == "__main__":
    main()
