"""The model zoo by name: every family registered, and clear errors for what is not."""

import pytest

from jaxseg import models

# The complete zoo: FCN (VGG16 and ResNet), SegNet, dilated convolutions, DeepLab v1-v3+,
# RefineNet, PSPNet, GCN and U-Net.
EXPECTED_MODELS = [
    "deeplab_v1",
    "deeplab_v2",
    "deeplab_v3",
    "deeplab_v3plus",
    "dilated_context",
    "dilated_frontend",
    "fcn16s",
    "fcn32s",
    "fcn8s",
    "fcn_resnet",
    "gcn",
    "pspnet",
    "refinenet",
    "segnet",
    "unet",
]


def test_every_model_is_registered():
    assert models.names() == sorted(EXPECTED_MODELS)


def test_unknown_model_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown model 'pspnet2'; known models: .*\bpspnet\b"):
        models.create("pspnet2")


def test_unknown_option_is_rejected_with_the_model_options():
    with pytest.raises(TypeError, match=r"model 'gcn' has no option 'kernel'; .*kernel_size"):
        models.create("gcn", kernel=15)
