"""The torch side of the tests that compare against PyTorch: layout conversion, randomised
BatchNorm, parameter counts. Imports torch, so tests that must run without it import this
module only once torch is known to be there (after `pytest.importorskip("torch")`, or through
the `torch_reference` fixture of tests/conftest.py)."""

import numpy as np
import numpy.typing as npt
import torch


def to_torch(array: npt.ArrayLike) -> torch.Tensor:
    """An NHWC numpy or jax array as a contiguous NCHW torch tensor (a copy, writable)."""
    return torch.from_numpy(np.array(np.asarray(array).transpose(0, 3, 1, 2), order="C"))


def from_torch(tensor: torch.Tensor) -> np.ndarray:
    """An NCHW torch tensor as an NHWC numpy array."""
    return tensor.detach().cpu().numpy().transpose(0, 2, 3, 1)


def randomize_batchnorm(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random running mean/var and affine parameters in every BatchNorm2d of `module`, so that
    a wrong eps, a swapped statistic or a missed layer shows; returns `module` in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                n = layer.num_features
                layer.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                layer.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                layer.weight.copy_(0.5 + torch.rand(n, generator=generator))
                layer.bias.copy_(0.2 * torch.randn(n, generator=generator))
    return module.eval()


def parameter_count(*modules: torch.nn.Module, skip: str = "") -> int:
    """Number of parameters of `modules` together, leaving out those whose name starts with
    `skip` (e.g. "fc." for a classifier). Works on the meta device, so full-size models cost
    nothing."""
    return sum(
        p.numel()
        for module in modules
        for name, p in module.named_parameters()
        if not (skip and name.startswith(skip))
    )


def vgg16_trunk_count() -> int:
    """Parameters of torchvision's VGG16 without its ImageNet classifier (classifier.6): the
    13 convolutions, fc6 and fc7."""
    import torchvision

    with torch.device("meta"):
        vgg = torchvision.models.vgg16(weights=None)
    return parameter_count(vgg.features, vgg.classifier[0], vgg.classifier[3])


def resnet_trunk_count(depth: int) -> int:
    """Parameters of torchvision's ResNet-`depth` without its ImageNet classifier (fc)."""
    import torchvision

    with torch.device("meta"):
        resnet = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    return parameter_count(resnet, skip="fc.")
