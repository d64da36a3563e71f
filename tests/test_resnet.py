"""ResNet trunk: stage shapes at odd sizes, and torchvision's dilation pattern."""

import jax
import jax.numpy as jnp
import pytest

from jaxseg.backbones import resnet, stage_plan


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_stage_shapes_at_odd_size(depth, output_stride):
    model = resnet(depth, width=4, stage_sizes=(1, 1, 2, 1), output_stride=output_stride)
    x = jnp.zeros((1, 97, 131, 3))
    features = jax.eval_shape(lambda: model.init_with_output(jax.random.PRNGKey(0), x)[0])
    expansion = 1 if depth == 18 else 4
    stages = ["layer1", "layer2", "layer3", "layer4"]
    # PyTorch arithmetic, floor((n + 2p - k) / s) + 1 per stride-2 layer, until output_stride.
    strided = [(49, 66), (25, 33), (13, 17), (7, 9), (4, 5)]
    sizes = [strided[min(i, {8: 3, 16: 4, 32: 5}[output_stride] - 1)] for i in range(5)]
    channels = [4] + [4 * 2**i * expansion for i in range(4)]
    for name, size, width in zip(["stem", *stages], sizes, channels, strict=True):
        assert features[name].shape == (1, *size, width), name


@pytest.mark.parametrize("dilate", [[False, True, True], [False, False, True]])
def test_dilation_pattern_matches_torchvision(dilate):
    models = pytest.importorskip("torchvision.models")
    reference = models.resnet101(replace_stride_with_dilation=dilate)
    output_stride = 8 if dilate[1] else 16
    plan = stage_plan((3, 4, 23, 3), output_stride)
    for (stride, rates), layer in zip(
        plan, [reference.layer1, reference.layer2, reference.layer3, reference.layer4], strict=True
    ):
        assert rates == tuple(block.conv2.dilation[0] for block in layer)
        assert stride == layer[0].conv2.stride[0]


def test_multi_grid_scales_last_stage():
    plan = stage_plan((3, 4, 6, 3), 16, multi_grid=(1, 2, 4))
    assert plan[3] == (1, (2, 4, 8))
    assert plan[2] == (2, (1, 1, 1, 1, 1, 1))


def test_rejects_unsupported_output_stride():
    with pytest.raises(ValueError, match="output_stride"):
        stage_plan((1, 1, 1, 1), 4)
