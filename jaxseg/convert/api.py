"""Entry points: a state_dict of a named source architecture to a jaxseg module and variables."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from flax import linen as nn

from jaxseg.backbones.resnet import RESNET_DEPTHS, Bottleneck
from jaxseg.convert import smp, torchvision
from jaxseg.convert.files import load_state_dict
from jaxseg.convert.mapping import fill_variables, num_classes_of
from jaxseg.models import ModelSpec

SOURCES = {"torchvision": torchvision.ARCHS, "smp": smp.ARCHS}


@dataclass(frozen=True)
class Converted:
    """A converted model: the module, its variables and, for registered models, the spec
    that model.json records (None for bare backbones)."""

    module: nn.Module
    variables: dict
    spec: ModelSpec | None


def convert(state_dict: Mapping[str, Any], *, source: str, arch: str) -> Converted:
    """Convert `state_dict` of `source`'s `arch`; see `from_torch`."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; known sources: {', '.join(SOURCES)}")
    archs = SOURCES[source]
    if arch not in archs:
        raise ValueError(
            f"unknown {source} arch {arch!r}; known {source} archs: {', '.join(archs)}"
        )
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
    where = f"{source} {arch}"
    target = archs[arch](state_dict.keys())
    num_classes = num_classes_of(state_dict, target, where)
    module = target.build(num_classes)
    variables = fill_variables(state_dict, module, target, where)
    variables.setdefault("batch_stats", {})
    spec = None if target.spec is None else target.spec(num_classes)
    return Converted(module, variables, spec)


def from_torch(state_dict: Mapping[str, Any], *, source: str, arch: str) -> tuple[nn.Module, dict]:
    """(module, variables) reproducing `source`'s `arch` with the weights of `state_dict`.

    `source` is "torchvision" or "smp"; `arch` names the source's model (`SOURCES` lists
    them). Values may be torch tensors or numpy arrays. num_classes comes from the weights.
    Variables are numpy arrays {"params", "batch_stats"}; an unknown arch, or weights of
    another architecture (a missing, misshapen or unexpected key), is a ValueError.
    """
    converted = convert(state_dict, source=source, arch=arch)
    return converted.module, converted.variables


def _strip_to_resnet(state_dict: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """The ResNet weights of `state_dict`, found by their `layer1.0.conv1.weight`, with any
    prefix (torchvision's "backbone.", smp's "encoder.") removed."""
    anchor = "layer1.0.conv1.weight"
    prefix = next((key[: -len(anchor)] for key in state_dict if key.endswith(anchor)), None)
    if prefix is None:
        raise ValueError(f"{path}: not a ResNet checkpoint (no key ends with {anchor!r})")
    return {
        key.removeprefix(prefix): value
        for key, value in state_dict.items()
        if key.startswith(prefix) and not key.startswith(f"{prefix}fc.")
    }


def resnet_depth(state_dict: Mapping[str, Any], path: Path) -> int:
    """The depth (18 ... 152) of the torchvision ResNet whose weights are `state_dict`."""
    blocks = tuple(
        len({key.split(".")[1] for key in state_dict if key.startswith(f"layer{i}.")})
        for i in range(1, 5)
    )
    bottleneck = "layer1.0.conv3.weight" in state_dict
    for depth, (sizes, block) in RESNET_DEPTHS.items():
        if tuple(sizes) == blocks and (block is Bottleneck) == bottleneck:
            return depth
    raise ValueError(
        f"{path}: a ResNet with {blocks} blocks per stage is none of ResNet-"
        f"{'/'.join(map(str, RESNET_DEPTHS))}"
    )


def load_backbone(path: str | Path) -> dict:
    """ImageNet backbone weights from a torchvision ResNet or VGG16 checkpoint file, as the
    {"params", "batch_stats"} of a jaxseg `backbone` subtree (`--config.backbone_init`).

    ResNets may also come from a segmentation checkpoint (its `backbone.`/`encoder.` part).
    """
    path = Path(path)
    state_dict = load_state_dict(path)
    if "features.0.weight" in state_dict:
        arch = "vgg16"
    else:
        state_dict = _strip_to_resnet(state_dict, path)
        arch = f"resnet{resnet_depth(state_dict, path)}"
    try:
        converted = convert(state_dict, source="torchvision", arch=arch)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return converted.variables
