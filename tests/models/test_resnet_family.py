"""DeepLab v2, RefineNet and GCN through the shared model harness; their decoders against
PyTorch references; their full sizes against live PyTorch counts."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxseg import models
from jaxseg.models.gcn import GCN
from jaxseg.models.refinenet import RefineNet
from tests.models import harness

SMALL_RESNET = dict(depth=18, width=8, stage_sizes=(1, 1, 1, 1))
NARROW = {
    # Two scales keep the multi-scale max fusion at two thirds of the compile time.
    "deeplab_v2": dict(SMALL_RESNET, scales=(1.0, 0.5)),
    "gcn": dict(SMALL_RESNET, kernel_size=7),
    "refinenet": dict(SMALL_RESNET, features=8),
}
# Stage sizes of torchvision's ResNet on a 97 x 131 image (every stride rounds up).
STAGE_SIZES = {
    "stem": (49, 66),
    "layer1": (25, 33),
    "layer2": (13, 17),
    "layer3": (7, 9),
    "layer4": (4, 5),
}
IMAGE_SIZE = (97, 131)


class TestResNetFamily(harness.ModelChecks):
    """The shared checks on DeepLab v2, RefineNet and GCN."""

    NARROW = NARROW


class GivenFeatures(nn.Module):
    """Stands in for a backbone: returns fixed stage features whatever the images."""

    features: dict

    def __call__(self, images: jnp.ndarray, train: bool = False) -> dict:
        return {name: jnp.asarray(value) for name, value in self.features.items()}


def _stage_features(channels: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(1, *STAGE_SIZES[name], c)).astype(np.float32)
        for name, c in channels.items()
    }


def _assert_matches(ours: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding, relative to the output's scale: without normalisation the
    decoders' activations grow large, so absolute errors do too."""
    np.testing.assert_allclose(ours, expected, atol=1e-5 * float(np.abs(expected).max()))


def _torch_blocks():
    pytest.importorskip("torch")
    from tests import test_gcn_refine_blocks

    return test_gcn_refine_blocks


def _torch_parameter_count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _torchvision_trunk_count(depth: int) -> int:
    """Parameters of torchvision's ResNet-`depth` without its ImageNet classifier."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        resnet = getattr(torchvision.models, f"resnet{depth}")()
    return _torch_parameter_count(resnet) - _torch_parameter_count(resnet.fc)


def _released_refinenet_head(blocks, in_channels, features, num_classes):
    """RefineNet's decoder in the layout of the authors' released VOC model, as ported by
    DrSleep/refinenet-pytorch (models/resnet.py): per stage a reducing conv and two RCUs (plus a
    fusion conv below the top), chained pooling, three RCUs and the next stage's fusion conv;
    a 3x3 classifier. Stages coarse first."""
    torch = blocks.torch

    class ReleasedHead(torch.nn.Module):
        def __init__(self):
            super().__init__()
            last = len(in_channels) - 1
            for i, channels in enumerate(in_channels):
                width = 2 * features if i == 0 else features
                rcus = [blocks.TorchResidualConvUnit(width) for _ in range(5)]
                setattr(self, f"dimred{i}", blocks.conv3x3(channels, width, bias=False))
                setattr(self, f"adapt{i}", torch.nn.Sequential(*rcus[:2]))
                if i > 0:
                    setattr(self, f"adapt_fuse{i}", blocks.conv3x3(width, features, bias=False))
                setattr(self, f"pool{i}", blocks.TorchChainedResidualPooling(width, 4))
                setattr(self, f"mflow{i}", torch.nn.Sequential(*rcus[2:]))
                if i < last:
                    setattr(self, f"mflow_fuse{i}", blocks.conv3x3(width, features, bias=False))
            self.classifier = torch.nn.Conv2d(features, num_classes, 3, padding=1)
            self.last = last

        def forward(self, stages):
            x = None
            for i, feature in enumerate(stages):
                y = getattr(self, f"adapt{i}")(getattr(self, f"dimred{i}")(feature))
                if x is not None:
                    upsampled = blocks.F.interpolate(
                        x, size=y.shape[2:], mode="bilinear", align_corners=True
                    )
                    y = getattr(self, f"adapt_fuse{i}")(y) + upsampled
                x = getattr(self, f"mflow{i}")(getattr(self, f"pool{i}")(y))
                if i < self.last:
                    x = getattr(self, f"mflow_fuse{i}")(x)
            return self.classifier(x)

    return ReleasedHead()


def _as_released_layout(params: dict) -> dict:
    """Our RefineNet parameters renamed to the released layout (see `_released_refinenet_head`):
    a block's incoming-path RCUs there follow the previous block's output RCU."""
    layout = {"classifier": params["classifier"]}
    for i in range(4):
        block = params[f"refine{4 - i}"]
        path = "path0" if i == 0 else "path1"
        layout[f"dimred{i}"] = params[f"adapt{i}"]
        layout[f"adapt{i}"] = {str(j): block[f"{path}_rcu{j}"] for j in range(2)}
        if i > 0:
            layout[f"adapt_fuse{i}"] = block["fusion"]["conv1"]
        layout[f"pool{i}"] = block["pooling"]
        if i < 3:
            following = params[f"refine{3 - i}"]
            after = [following["path0_rcu0"], following["path0_rcu1"]]
            layout[f"mflow_fuse{i}"] = following["fusion"]["conv0"]
        else:
            after = [params["final_rcu0"], params["final_rcu1"]]
        layout[f"mflow{i}"] = {str(j): rcu for j, rcu in enumerate([block["output_rcu"], *after])}
    return layout


def test_refinenet_decoder_matches_the_released_model_layout():
    blocks = _torch_blocks()
    channels = {"layer4": 16, "layer3": 12, "layer2": 8, "layer1": 6}
    features = _stage_features(channels)
    model = RefineNet(GivenFeatures(features), num_classes=5, features=4)
    images = jnp.zeros((1, *IMAGE_SIZE, 3))
    params = model.init(jax.random.PRNGKey(0), images)["params"]
    ours = np.asarray(model.apply({"params": params}, images))

    head = _released_refinenet_head(blocks, list(channels.values()), features=4, num_classes=5)
    blocks.load_flax_params(head, _as_released_layout(params))
    scores = head([blocks.to_torch(features[name]) for name in channels])
    expected = blocks.F.interpolate(scores, size=IMAGE_SIZE, mode="bilinear", align_corners=True)
    _assert_matches(ours, blocks.from_torch(expected))


def _torch_gcn_head(blocks, in_channels, num_classes, k):
    """GCN's decoder with torch layers: GCN + BR per stage (coarse first), then five 2x
    transposed convs, each cropped to the next map, summed with it while stages remain, and
    refined by a BR."""
    torch = blocks.torch

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for i, channels in enumerate(in_channels):
                setattr(self, f"gcn{i}", blocks.TorchGlobalConv(channels, num_classes, k))
                setattr(self, f"br{i}", blocks.TorchBoundaryRefine(num_classes))
            for j in range(5):
                setattr(
                    self,
                    f"deconv{j}",
                    torch.nn.ConvTranspose2d(
                        num_classes, num_classes, 4, stride=2, padding=1, bias=False
                    ),
                )
                setattr(self, f"fuse_br{j}", blocks.TorchBoundaryRefine(num_classes))

        def forward(self, stages, sizes):
            scores = [
                getattr(self, f"br{i}")(getattr(self, f"gcn{i}")(x)) for i, x in enumerate(stages)
            ]
            score = scores[0]
            for j, (height, width) in enumerate(sizes):
                score = getattr(self, f"deconv{j}")(score)[:, :, :height, :width]
                if j + 1 < len(scores):
                    score = score + scores[j + 1]
                score = getattr(self, f"fuse_br{j}")(score)
            return score

    return Head()


def test_gcn_decoder_matches_torch_layers():
    blocks = _torch_blocks()
    channels = {"layer4": 16, "layer3": 12, "layer2": 8, "layer1": 6}
    features = _stage_features({**channels, "stem": 4})
    model = GCN(GivenFeatures(features), num_classes=3, kernel_size=7)
    images = jnp.zeros((1, *IMAGE_SIZE, 3))
    params = model.init(jax.random.PRNGKey(0), images)["params"]
    ours = np.asarray(model.apply({"params": params}, images))

    head = _torch_gcn_head(blocks, list(channels.values()), num_classes=3, k=7)
    blocks.load_flax_params(head, params)
    sizes = [STAGE_SIZES[name] for name in ("layer3", "layer2", "layer1", "stem")] + [IMAGE_SIZE]
    expected = head([blocks.to_torch(features[name]) for name in channels], sizes)
    _assert_matches(ours, blocks.from_torch(expected))


def test_deeplab_v2_fuses_scales_by_max_as_caffe_resizes_them():
    """Per-scale ASPP scores come from inputs of (n - 1) * s + 1 pixels (Caffe's Interp) at
    output stride 8; resized to the full-scale map (align_corners), max-fused and upsampled
    they give the logits, as torch computes it."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    image_size = (37, 51)
    model = models.create("deeplab_v2", num_classes=3, **SMALL_RESNET)
    images = np.random.default_rng(0).normal(size=(1, *image_size, 3)).astype(np.float32)
    variables = model.init(jax.random.PRNGKey(0), images)
    logits, state = model.apply(variables, images, capture_intermediates=True)
    scores = state["intermediates"]["aspp"]["__call__"]
    assert len(scores) == 3
    for scale, score in zip((1.0, 0.75, 0.5), scores, strict=True):
        scaled = [int((n - 1) * scale) + 1 for n in image_size]
        assert score.shape[1:3] == tuple(math.ceil(n / 8) for n in scaled), (scale, score.shape)

    per_scale = [torch.from_numpy(np.array(s).transpose(0, 3, 1, 2)) for s in scores]
    size = per_scale[0].shape[2:]
    resized = [F.interpolate(s, size=size, mode="bilinear", align_corners=True) for s in per_scale]
    fused = torch.stack(resized).max(dim=0).values
    expected = F.interpolate(fused, size=image_size, mode="bilinear", align_corners=True)
    np.testing.assert_allclose(logits, expected.numpy().transpose(0, 2, 3, 1), atol=1e-5)


def test_deeplab_v2_shares_weights_across_scales():
    images = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    shapes = [
        jax.eval_shape(
            models.create("deeplab_v2", scales=scales, **SMALL_RESNET).init,
            jax.random.PRNGKey(0),
            images,
        )
        for scales in ((1.0,), (1.0, 0.75, 0.5))
    ]
    assert shapes[0] == shapes[1]


def test_deeplab_v2_needs_a_scale():
    with pytest.raises(ValueError, match="scales must list at least one input scale"):
        models.create("deeplab_v2", scales=())


def test_deeplab_v2_resnet101_size():
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        aspp = torch.nn.ModuleList(
            torch.nn.Conv2d(2048, 21, 3, padding=rate, dilation=rate) for rate in (6, 12, 18, 24)
        )
    expected = _torchvision_trunk_count(101) + _torch_parameter_count(aspp)
    assert harness.parameter_count("deeplab_v2", num_classes=21) == expected


def test_refinenet_resnet101_has_the_released_model_size():
    blocks = _torch_blocks()
    with blocks.torch.device("meta"):
        head = _released_refinenet_head(blocks, [2048, 1024, 512, 256], 256, 21)
    expected = _torchvision_trunk_count(101) + _torch_parameter_count(head)
    assert harness.parameter_count("refinenet", num_classes=21) == expected


def test_gcn_resnet101_size():
    blocks = _torch_blocks()
    with blocks.torch.device("meta"):
        head = _torch_gcn_head(blocks, [2048, 1024, 512, 256], 21, 15)
    expected = _torchvision_trunk_count(101) + _torch_parameter_count(head)
    assert harness.parameter_count("gcn", num_classes=21) == expected
