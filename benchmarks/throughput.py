"""Train-step and inference throughput of jaxseg models against the same networks in PyTorch.

    python benchmarks/throughput.py [--models pspnet,deeplab_v3] [--batch 2] [--size 256]

ResNet-50 at output stride 8. DeepLab v3 is compared with torchvision's
`deeplabv3_resnet50`; PSPNet with a PyTorch PSPNet of identical layers (torchvision's dilated
ResNet-50, the same pyramid pooling, fusion conv and auxiliary head). The two frameworks
alternate round by round in one process, so both see the same machine state; the report is
images/s and the jaxseg/PyTorch ratio (above 1: jaxseg is faster). Compilation and warm-up
are excluded.
"""

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from jaxseg import losses, models

NUM_CLASSES = 21


class TorchPSPNet(nn.Module):
    """PSPNet with jaxseg's layer layout: dilated ResNet-50, PPM (1, 2, 3, 6), 3x3 fuse, aux."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        trunk = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
        self.stem = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool)
        self.layers = nn.ModuleList([trunk.layer1, trunk.layer2, trunk.layer3, trunk.layer4])
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), nn.Conv2d(2048, 512, 1, bias=False),
                          nn.BatchNorm2d(512), nn.ReLU(inplace=True))
            for b in (1, 2, 3, 6)
        )
        self.fuse = nn.Sequential(nn.Conv2d(4096, 512, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(512), nn.ReLU(inplace=True), nn.Dropout(0.1),
                                  nn.Conv2d(512, num_classes, 1))
        self.aux = torchvision.models.segmentation.fcn.FCNHead(1024, num_classes)

    def forward(self, x):
        size = x.shape[2:]
        y = self.stem(x)
        y = self.layers[1](self.layers[0](y))
        aux = self.layers[2](y)
        y = self.layers[3](aux)
        pyramid = [y] + [F.interpolate(b(y), y.shape[2:], mode="bilinear", align_corners=True)
                         for b in self.branches]
        out = F.interpolate(self.fuse(torch.cat(pyramid, 1)), size, mode="bilinear",
                            align_corners=True)
        if not self.training:
            return out
        return out, F.interpolate(self.aux(aux), size, mode="bilinear", align_corners=True)


def torch_model(name: str) -> nn.Module:
    if name == "deeplab_v3":
        return torchvision.models.segmentation.deeplabv3_resnet50(
            weights=None, weights_backbone=None, num_classes=NUM_CLASSES, aux_loss=True)
    return TorchPSPNet()


def torch_runners(name: str, images: np.ndarray, labels: np.ndarray):
    model = torch_model(name)
    x, y = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()), torch.from_numpy(labels)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)

    def train():
        model.train()
        out = model(x)
        main, aux = (out["out"], out["aux"]) if isinstance(out, dict) else out
        loss = F.cross_entropy(main, y, ignore_index=255) + 0.4 * F.cross_entropy(
            aux, y, ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def infer():
        model.eval()
        out = model(x)
        (out["out"] if isinstance(out, dict) else out).sum().item()

    return train, infer


def jax_runners(name: str, images: np.ndarray, labels: np.ndarray):
    model = models.create(name, num_classes=NUM_CLASSES, depth=50, output_stride=8, aux=True,
                          **({"multi_grid": None} if name == "deeplab_v3" else {}))
    x, y = jnp.asarray(images), jnp.asarray(labels)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.01, momentum=0.9))
    state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    @jax.jit
    def step(state, x, y, rng):
        params, stats, opt_state = state

        def loss_fn(p):
            out, updates = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                       mutable=["batch_stats"], rngs={"dropout": rng})
            return losses.segmentation_loss(out, y, aux_weight=0.4)[0], updates["batch_stats"]

        grads, new_stats = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_stats, opt_state

    predict = jax.jit(lambda v, images: model.apply(v, images))
    holder = {"state": state}

    def train():
        holder["state"] = step(holder["state"], x, y, jax.random.PRNGKey(1))
        jax.block_until_ready(holder["state"])

    def infer():
        predict(variables, x).block_until_ready()

    return train, infer


def time_call(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="pspnet,deeplab_v3")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(max(torch.get_num_threads(), 1))
    rng = np.random.default_rng(0)
    images = rng.normal(size=(args.batch, args.size, args.size, 3)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=(args.batch, args.size, args.size))
    print(f"machine: {platform.processor() or platform.machine()}, {jax.device_count()} "
          f"{jax.default_backend()} device(s), torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads, jax {jax.__version__}")
    print(f"batch {args.batch}, {args.size}x{args.size}, ResNet-50 output stride 8\n")
    print(f"{'model':<11} {'mode':<6} {'jaxseg img/s':>13} {'PyTorch img/s':>14} {'ratio':>6}")
    for name in args.models.split(","):
        runners = {"jax": jax_runners(name, images, labels),
                   "torch": torch_runners(name, images, labels)}
        for mode in (0, 1):
            for framework in runners.values():
                framework[mode]()  # compile / warm up
            seconds = {"jax": [], "torch": []}
            for _ in range(args.rounds):
                for framework, fns in runners.items():
                    seconds[framework].append(time_call(fns[mode], args.repeats))
            rate = {k: args.batch / statistics.median(v) for k, v in seconds.items()}
            print(f"{name:<11} {('train', 'infer')[mode]:<6} {rate['jax']:>13.2f} "
                  f"{rate['torch']:>14.2f} {rate['jax'] / rate['torch']:>6.2f}")


if __name__ == "__main__":
    main()
