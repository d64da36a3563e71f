"""FCN (jaxseg/models/fcn.py): zero-initialised scores and the reference nets' crops, and the
sizes of FCN-VGG16 and torchvision's FCN-ResNet."""

import numpy as np
import pytest

from jaxseg import models
from jaxseg.backbones.vgg import vgg16
from jaxseg.models.fcn import crop_offsets
from tests.models import harness


def test_fcn_starts_from_zero_scores():
    """The paper zero-initialises every class scorer, so an untrained FCN predicts all zeros."""
    options = {**models.small_options("fcn8s"), "zero_init_scores": True}
    model = models.create("fcn8s", num_classes=harness.NUM_CLASSES, **options)
    images = np.random.default_rng(0).normal(size=(1, 45, 61, 3)).astype(np.float32)
    logits = model.apply(harness.init_variables(model), images)
    assert logits.shape == (1, 45, 61, harness.NUM_CLASSES)
    assert not np.any(np.asarray(logits))


@pytest.mark.parametrize(("skips", "caffe_offsets"), [(0, (19,)), (1, (5, 27)), (2, (5, 9, 31))])
def test_fcn_crops_where_the_reference_nets_crop(skips, caffe_offsets):
    """The crop_param offsets of fcn.berkeleyvision.org voc-fcn32s/16s/8s train.prototxt
    (score_pool4c, score_pool3c, score), from our layer geometry."""
    assert crop_offsets(vgg16("fcn").grids(), skips) == caffe_offsets


def test_fcn_sizes_match_torch_and_the_paper(torch, torchvision, torch_reference):
    count = torch_reference.parameter_count

    def upsampling(factor: int, classes: int = 21):
        return torch.nn.ConvTranspose2d(classes, classes, 2 * factor, factor, bias=False)

    trunk = torch_reference.vgg16_trunk_count()
    score_fr, score_pool4, score_pool3 = (
        torch.nn.Conv2d(4096, 21, 1),
        torch.nn.Conv2d(512, 21, 1),
        torch.nn.Conv2d(256, 21, 1),
    )
    expected = {
        "fcn32s": trunk + count(score_fr, upsampling(32)),
        "fcn16s": trunk + count(score_fr, upsampling(2), score_pool4, upsampling(16)),
        "fcn8s": trunk
        + count(score_fr, upsampling(2), score_pool4, upsampling(2), score_pool3, upsampling(8)),
    }
    for name, expected_count in expected.items():
        assert harness.parameter_count(name, num_classes=21) == expected_count, name
    # Table 1 of arXiv 1411.4038: FCN-VGG16 has 134M parameters.
    assert round(expected["fcn8s"] / 1e6) == 134


@pytest.mark.parametrize(("depth", "aux"), [(50, True), (101, False)])
def test_fcn_resnet_size_matches_torchvision(depth, aux, torch, torchvision, torch_reference):
    builder = getattr(torchvision.models.segmentation, f"fcn_resnet{depth}")
    with torch.device("meta"):
        reference = builder(weights=None, weights_backbone=None, num_classes=21, aux_loss=aux)
    ours = harness.parameter_count("fcn_resnet", num_classes=21, depth=depth, aux=aux)
    assert ours == torch_reference.parameter_count(reference)
