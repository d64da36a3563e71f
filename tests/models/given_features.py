"""A stand-in backbone returning fixed ResNet-shaped stage features, so that GCN's and
RefineNet's decoders can be checked alone against torch (tests/models/test_gcn.py,
test_refinenet.py)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from jaxseg.backbones.resnet import STAGE_NAMES

IMAGE_SIZE = (97, 131)
# Stage sizes of a ResNet on an IMAGE_SIZE image: the stem halves it and each stage after it
# halves it again, every stride rounding up.
STAGE_SIZES = {
    name: tuple(math.ceil(n / 2 ** (i + 1)) for n in IMAGE_SIZE)
    for i, name in enumerate(("stem", *STAGE_NAMES))
}


class GivenFeatures(nn.Module):
    """Stands in for a backbone: returns fixed stage features whatever the images."""

    features: dict

    def __call__(self, images: jnp.ndarray, train: bool = False) -> dict:
        return {name: jnp.asarray(value) for name, value in self.features.items()}


def stage_features(channels: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Random features of `channels[name]` channels at each named stage's STAGE_SIZES."""
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(1, *STAGE_SIZES[name], c)).astype(np.float32)
        for name, c in channels.items()
    }


def initialised_and_run(model: nn.Module) -> tuple[dict, np.ndarray]:
    """`model`'s parameters initialised on an IMAGE_SIZE image, and its output with them."""
    images = jnp.zeros((1, *IMAGE_SIZE, 3))
    params = model.init(jax.random.PRNGKey(0), images)["params"]
    return params, np.asarray(model.apply({"params": params}, images))


def assert_matches(ours: np.ndarray, expected: np.ndarray) -> None:
    """Equal up to float32 rounding, relative to the output's scale: without normalisation the
    decoders' activations grow large, so absolute errors do too."""
    np.testing.assert_allclose(ours, expected, atol=1e-5 * float(np.abs(expected).max()))
