"""Dice, Lovasz-softmax and focal losses equal segmentation_models_pytorch's (multiclass,
ignore_index=255) in value and gradient, on random labels and on genuine VOC masks."""

import jax
import numpy as np
import pytest
from PIL import Image

from jaxseg import losses

torch = pytest.importorskip("torch")
smp_losses = pytest.importorskip("segmentation_models_pytorch.losses")

VOC_CLASSES = 21
REFERENCES = {
    "dice": (losses.dice_loss, lambda: smp_losses.DiceLoss("multiclass", ignore_index=255)),
    "lovasz": (
        losses.lovasz_softmax_loss,
        lambda: smp_losses.LovaszLoss("multiclass", ignore_index=255),
    ),
    "focal": (losses.focal_loss, lambda: smp_losses.FocalLoss("multiclass", ignore_index=255)),
}


def _random_case(seed: int = 0, num_classes: int = 6):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes - 1, size=(2, 17, 23))  # the last class is absent
    labels[rng.random(labels.shape) < 0.15] = 255
    logits = (rng.normal(size=(*labels.shape, num_classes)) * 2).astype(np.float32)
    return logits, labels


def _voc_case(shared_dir, seed: int = 1):
    """Two genuine VOC masks (with their 255 borders), nearest-resized to 48 x 64."""
    folder = shared_dir / "data" / "voc_samples" / "SegmentationClass"
    masks = [
        np.asarray(Image.open(folder / f"{name}.png").resize((64, 48), Image.NEAREST))
        for name in ("2007_000033", "2007_000129")
    ]
    labels = np.stack(masks).astype(np.int64)
    assert (labels == 255).any() and len(np.unique(labels)) > 3
    rng = np.random.default_rng(seed)
    logits = (rng.normal(size=(*labels.shape, VOC_CLASSES)) * 2).astype(np.float32)
    return logits, labels


def _check(name: str, logits: np.ndarray, labels: np.ndarray) -> None:
    ours_fn, make_reference = REFERENCES[name]
    value, grad = jax.value_and_grad(lambda x: ours_fn(x, labels))(logits)
    torch_logits = torch.from_numpy(logits).permute(0, 3, 1, 2).requires_grad_()
    ref = make_reference()(torch_logits, torch.from_numpy(labels))
    ref.backward()
    ref_grad = torch_logits.grad.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(float(value), float(ref.detach()), rtol=1e-5)
    scale = np.abs(ref_grad).max()
    assert scale > 0
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_smp_on_random_labels(name):
    _check(name, *_random_case())


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_smp_on_voc_masks(name, shared_dir):
    _check(name, *_voc_case(shared_dir))
