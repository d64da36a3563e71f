"""benchmarks/throughput.py's PyTorch twins: every registered model has one, and each has as
many parameters as its jaxseg model in the benchmark's configuration, counted from shapes alone
(jax.eval_shape, torch's meta device), so full-size models cost no memory or compute."""

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from benchmarks.torch_models import NUM_CLASSES, PAIRS  # noqa: E402
from jaxseg import models  # noqa: E402
from tests.models.harness import parameter_count  # noqa: E402


def test_every_registered_model_has_a_twin():
    assert sorted(pair.model for pair in PAIRS.values()) == models.names()


@pytest.mark.parametrize("name", list(PAIRS))
def test_twin_has_as_many_parameters(name: str):
    pair = PAIRS[name]
    if pair.needs_smp:
        pytest.importorskip("segmentation_models_pytorch")
    with torch.device("meta"):
        twin = pair.build()
    expected = parameter_count(pair.model, num_classes=NUM_CLASSES, **pair.options)
    assert sum(p.numel() for p in twin.parameters()) == expected, pair.reference
