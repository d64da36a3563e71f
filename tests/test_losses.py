"""Cross-entropy against PyTorch's CrossEntropyLoss with ignore_index and class weights."""

import numpy as np
import pytest

from jaxseg import losses

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_torch(weighted):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 9, 11, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, size=(2, 9, 11))
    labels[rng.random(labels.shape) < 0.2] = 255
    weights = rng.uniform(0.1, 3.0, 5).astype(np.float32) if weighted else None
    ours = losses.cross_entropy(logits, labels, class_weights=weights)
    ref = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits).permute(0, 3, 1, 2),
        torch.from_numpy(labels),
        weight=None if weights is None else torch.from_numpy(weights),
        ignore_index=255,
    )
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-5)


def test_auxiliary_loss_is_weighted_sum():
    rng = np.random.default_rng(1)
    logits, aux = (rng.normal(size=(1, 6, 7, 3)).astype(np.float32) for _ in range(2))
    labels = rng.integers(0, 3, size=(1, 6, 7))
    total, parts = losses.segmentation_loss((logits, aux), labels, aux_weight=0.4)
    expected = losses.cross_entropy(logits, labels) + 0.4 * losses.cross_entropy(aux, labels)
    np.testing.assert_allclose(float(total), float(expected), rtol=1e-6)
    assert set(parts) == {"loss_main", "loss_aux0"}


def test_all_ignored_gives_zero():
    logits = np.zeros((1, 2, 2, 3), np.float32)
    labels = np.full((1, 2, 2), 255)
    assert float(losses.cross_entropy(logits, labels)) == 0.0
