"""Every registered model, on its small version, through the same checks: a new model is one
file and gets them all. The registry's own errors."""

import numpy as np
import pytest

from jaxseg import models
from tests.models import harness

# The one-batch fit: the loss below this fraction of the class entropy within this many steps.
FIT_STEPS, FIT_FRACTION = 60, 0.9
# The shapes run: val mIoU this far beyond the best one-class-everywhere prediction.
LEARN_STEPS, LEARN_MARGIN = 80, 0.04


def _learning_marks(name: str) -> list:
    """Models registered as not learning from scratch skip the check: their val mIoU after the
    short schedule lands either side of the bar with the seed and the floating-point summation
    order, so neither a pass nor a failure would say anything."""
    caveat = models.scratch_caveat(name)
    return [pytest.mark.skip(reason=f"scratch caveat: {caveat}")] if caveat else []


ALL = models.names()
LEARNING = [pytest.param(name, marks=_learning_marks(name)) for name in ALL]


@pytest.mark.parametrize("name", ALL)
def test_forward_at_odd_sizes_is_independent_per_image(name):
    harness.check_forward(name)


@pytest.mark.parametrize("name", ALL)
def test_fits_a_batch_of_real_images_training_every_parameter(name, shared_dir):
    harness.check_fits_a_real_batch(name, shared_dir, FIT_STEPS, FIT_FRACTION)


@pytest.mark.parametrize("name", ALL)
def test_bfloat16_agrees_with_float32(name, shared_dir):
    harness.check_bfloat16(name, shared_dir)


@pytest.fixture(scope="module")
def shapes_prior() -> float:
    return harness.shapes_prior()


@pytest.mark.parametrize("name", LEARNING)
def test_learns_shapes_from_scratch(name, shapes_prior):
    miou = harness.learned_mean_iou(name, LEARN_STEPS)
    assert np.isfinite(miou)
    assert miou > shapes_prior + LEARN_MARGIN, (
        f"{name}: val mIoU {miou:.3f}, prior {shapes_prior:.3f}"
    )


def test_small_options_are_options_of_their_model():
    for name in ALL:
        assert set(models.small_options(name)) <= set(models.options(name)), name


def test_unknown_model_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown model 'pspnet2'; known models: .*\bpspnet\b"):
        models.create("pspnet2")


def test_unknown_option_is_rejected_with_the_model_options():
    with pytest.raises(TypeError, match=r"model 'gcn' has no option 'kernel'; .*kernel_size"):
        models.create("gcn", kernel=15)
