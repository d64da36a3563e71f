"""The dilated networks (jaxseg/models/dilated.py): front end and context modules in size,
against the same layers in torch."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from tests.models import harness  # noqa: E402
from tests.torch_reference import parameter_count, vgg16_trunk_count  # noqa: E402


@pytest.mark.parametrize("context", [None, "basic", "large"])
def test_dilated_sizes_match_torch(context):
    """Front end (VGG16 trunk with fc6/fc7, 1x1 classifier) plus the context module's layers
    per Table 1 of arXiv 1511.07122."""
    classes = 21
    modules = [torch.nn.Conv2d(4096, classes, 1)]
    if context is not None:
        widths = {"basic": [1] * 7, "large": [2, 2, 4, 8, 16, 32, 32]}[context]
        channels = [classes] + [w * classes for w in widths]
        modules += [
            torch.nn.Conv2d(a, b, 3) for a, b in zip(channels[:-1], channels[1:], strict=True)
        ]
        modules.append(torch.nn.Conv2d(channels[-1], classes, 1))
    name, options = (
        ("dilated_context", {"context": context}) if context else ("dilated_frontend", {})
    )
    count = harness.parameter_count(name, num_classes=classes, **options)
    assert count == vgg16_trunk_count() + parameter_count(*modules)
