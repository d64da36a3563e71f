"""RefineNet (jaxseg/models/refinenet.py): its decoder against the authors' released model
layout in torch, and the released model's size."""

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from jaxseg.models.refinenet import RefineNet  # noqa: E402
from tests import test_gcn_refine_blocks as blocks  # noqa: E402
from tests.models import harness  # noqa: E402
from tests.models.given_features import (  # noqa: E402
    IMAGE_SIZE,
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


def _released_refinenet_head(in_channels, features, num_classes):
    """RefineNet's decoder in the layout of the authors' released VOC model, as ported by
    DrSleep/refinenet-pytorch (models/resnet.py): per stage a reducing conv and two RCUs (plus a
    fusion conv below the top), chained pooling, three RCUs and the next stage's fusion conv;
    a 3x3 classifier. Stages coarse first."""

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
                    upsampled = F.interpolate(
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
    channels = {"layer4": 16, "layer3": 12, "layer2": 8, "layer1": 6}
    features = stage_features(channels)
    model = RefineNet(GivenFeatures(features), num_classes=5, features=4)
    params, ours = initialised_and_run(model)

    head = _released_refinenet_head(list(channels.values()), features=4, num_classes=5)
    blocks.load_flax_params(head, _as_released_layout(params))
    scores = head([to_torch(features[name]) for name in channels])
    expected = F.interpolate(scores, size=IMAGE_SIZE, mode="bilinear", align_corners=True)
    assert_matches(ours, from_torch(expected))


@pytest.mark.usefixtures("torchvision")
def test_refinenet_resnet101_has_the_released_model_size():
    with torch.device("meta"):
        head = _released_refinenet_head([2048, 1024, 512, 256], 256, 21)
    expected = resnet_trunk_count(101) + parameter_count(head)
    assert harness.parameter_count("refinenet", num_classes=21) == expected
