"""GCN (jaxseg/models/gcn.py): its decoder against the same decoder in torch layers, and its
full size."""

import pytest

torch = pytest.importorskip("torch")

from jaxseg.models.gcn import GCN  # noqa: E402
from tests import test_gcn_refine_blocks as blocks  # noqa: E402
from tests.models import harness  # noqa: E402
from tests.models.given_features import (  # noqa: E402
    IMAGE_SIZE,
    STAGE_SIZES,
    GivenFeatures,
    assert_matches,
    initialised_and_run,
    stage_features,
)
from tests.torch_reference import (  # noqa: E402
    from_torch,
    parameter_count,
    resnet_trunk_count,
    to_torch,
)


def _torch_gcn_head(in_channels, num_classes, k):
    """GCN's decoder with torch layers: GCN + BR per stage (coarse first), then five 2x
    transposed convs, each cropped to the next map, summed with it while stages remain, and
    refined by a BR."""

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
    channels = {"layer4": 16, "layer3": 12, "layer2": 8, "layer1": 6}
    features = stage_features({**channels, "stem": 4})
    model = GCN(GivenFeatures(features), num_classes=3, kernel_size=7)
    params, ours = initialised_and_run(model)

    head = _torch_gcn_head(list(channels.values()), num_classes=3, k=7)
    blocks.load_flax_params(head, params)
    sizes = [STAGE_SIZES[name] for name in ("layer3", "layer2", "layer1", "stem")] + [IMAGE_SIZE]
    expected = head([to_torch(features[name]) for name in channels], sizes)
    assert_matches(ours, from_torch(expected))


@pytest.mark.usefixtures("torchvision")
def test_gcn_resnet101_size():
    with torch.device("meta"):
        head = _torch_gcn_head([2048, 1024, 512, 256], 21, 15)
    expected = resnet_trunk_count(101) + parameter_count(head)
    assert harness.parameter_count("gcn", num_classes=21) == expected
