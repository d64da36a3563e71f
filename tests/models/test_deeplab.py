"""DeepLab (jaxseg/models/deeplab.py): v1's score map size and model size; v2's multi-scale
max fusion against torch, its weights shared across scales and its full size; v3's size
against torchvision's."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import models
from tests.models import harness


def _deeplab_v2(**overrides):
    """DeepLab v2's small version (`models.small_options`), with `overrides` replacing its
    options."""
    return models.create("deeplab_v2", **{**models.small_options("deeplab_v2"), **overrides})


def test_deeplab_v1_gives_41x41_scores_on_321x321_crops():
    """The authors' LargeFOV net maps its 321x321 training crops to 41x41 score maps."""
    model = models.create("deeplab_v1", num_classes=21)
    images = jax.ShapeDtypeStruct((1, 321, 321, 3), jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), images)
    features = jax.eval_shape(
        lambda v, x: model.backbone.apply({"params": v["params"]["backbone"]}, x),
        variables,
        images,
    )
    assert features["fc7"].shape == (1, 41, 41, 1024)


def test_deeplab_v1_size_matches_torch_and_the_paper(torch, torchvision, torch_reference):
    with torch.device("meta"):
        trunk = torchvision.models.vgg16(weights=None).features
        head = (
            torch.nn.Conv2d(512, 1024, 3, padding=12, dilation=12),
            torch.nn.Conv2d(1024, 1024, 1),
            torch.nn.Conv2d(1024, 21, 1),
        )
    expected = torch_reference.parameter_count(trunk, *head)
    assert harness.parameter_count("deeplab_v1", num_classes=21) == expected
    assert round(expected / 1e5) / 10 == 20.5  # DeepLab-LargeFOV, arXiv 1412.7062, Table 2


def test_deeplab_v2_fuses_scales_by_max_as_caffe_resizes_them(torch, torch_reference):
    """Per-scale ASPP scores come from inputs of (n - 1) * s + 1 pixels (Caffe's Interp) at
    output stride 8; resized to the full-scale map (align_corners), max-fused and upsampled
    they give the logits, as torch computes it."""
    F = torch.nn.functional
    image_size = (37, 51)
    scales = models.small_options("deeplab_v2")["scales"]
    assert len(scales) > 1 and scales[0] == 1.0, scales
    model = _deeplab_v2(num_classes=3)
    images = np.random.default_rng(0).normal(size=(1, *image_size, 3)).astype(np.float32)
    variables = model.init(jax.random.PRNGKey(0), images)
    logits, state = model.apply(variables, images, capture_intermediates=True)
    scores = state["intermediates"]["aspp"]["__call__"]
    assert len(scores) == len(scales)
    for scale, score in zip(scales, scores, strict=True):
        scaled = [int((n - 1) * scale) + 1 for n in image_size]
        assert score.shape[1:3] == tuple(math.ceil(n / 8) for n in scaled), (scale, score.shape)

    per_scale = [torch_reference.to_torch(s) for s in scores]
    size = per_scale[0].shape[2:]
    resized = [F.interpolate(s, size=size, mode="bilinear", align_corners=True) for s in per_scale]
    fused = torch.stack(resized).max(dim=0).values
    expected = F.interpolate(fused, size=image_size, mode="bilinear", align_corners=True)
    np.testing.assert_allclose(logits, torch_reference.from_torch(expected), atol=1e-5)


def test_deeplab_v2_shares_weights_across_scales():
    images = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
    shapes = [
        jax.eval_shape(_deeplab_v2(scales=scales).init, jax.random.PRNGKey(0), images)
        for scales in ((1.0,), (1.0, 0.75, 0.5))
    ]
    assert shapes[0] == shapes[1]


def test_deeplab_v2_needs_a_scale():
    with pytest.raises(ValueError, match="scales must list at least one input scale"):
        models.create("deeplab_v2", scales=())


def test_deeplab_v2_resnet101_size(torch, torchvision, torch_reference):
    with torch.device("meta"):
        aspp = torch.nn.ModuleList(
            torch.nn.Conv2d(2048, 21, 3, padding=rate, dilation=rate) for rate in (6, 12, 18, 24)
        )
    expected = torch_reference.resnet_trunk_count(101) + torch_reference.parameter_count(aspp)
    assert harness.parameter_count("deeplab_v2", num_classes=21) == expected


def test_deeplab_v3_resnet101_has_torchvision_size(torch, torchvision, torch_reference):
    with torch.device("meta"):
        reference = torchvision.models.segmentation.deeplabv3_resnet101(
            weights=None, weights_backbone=None, num_classes=21, aux_loss=False
        )
    ours = harness.parameter_count("deeplab_v3", num_classes=21, multi_grid=None)
    assert ours == torch_reference.parameter_count(reference)
