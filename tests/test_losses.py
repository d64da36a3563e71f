"""Cross-entropy against PyTorch's CrossEntropyLoss; OHEM and top-k mining against eager
references; the config's weighted list of losses."""

import jax
import numpy as np
import pytest

from jaxseg import losses


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_torch(weighted, torch, torch_reference):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 9, 11, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, size=(2, 9, 11))
    labels[rng.random(labels.shape) < 0.2] = 255
    weights = rng.uniform(0.1, 3.0, 5).astype(np.float32) if weighted else None
    ours = losses.cross_entropy(logits, labels, class_weights=weights)
    ref = torch.nn.functional.cross_entropy(
        torch_reference.to_torch(logits),
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


def _hard_case(seed: int = 2):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 12, 10, 4)).astype(np.float32) * 2
    labels = rng.integers(0, 4, size=(2, 12, 10))
    labels[rng.random(labels.shape) < 0.2] = 255
    return logits, labels


def _torch_ohem_sampler(logits, labels, thresh, min_kept):
    """mmsegmentation's OHEMPixelSampler.sample (threshold form), eager, data-dependent shapes."""
    import torch

    from tests.torch_reference import to_torch

    seg_logit = to_torch(logits)
    seg_label = torch.from_numpy(labels)
    valid = seg_label != 255
    weight = torch.zeros(seg_label.shape)
    valid_weight = weight[valid]
    prob = torch.softmax(seg_logit, 1).gather(1, torch.where(valid, seg_label, 0)[:, None])[:, 0]
    sort_prob, _ = prob[valid].sort()
    kept = min_kept * seg_label.shape[0]
    min_threshold = sort_prob[min(kept, sort_prob.numel() - 1)] if sort_prob.numel() else 0.0
    valid_weight[prob[valid] < max(float(min_threshold), thresh)] = 1.0
    weight[valid] = valid_weight
    return weight.numpy().astype(bool)


@pytest.mark.parametrize(("thresh", "min_kept"), [(0.7, 10), (0.3, 60), (0.05, 0)])
def test_ohem_keeps_what_mmseg_sampler_keeps(thresh, min_kept, torch, torch_reference):
    logits, labels = _hard_case()
    keep = jax.jit(lambda x, y: losses.ohem_keep_mask(x, y, thresh=thresh, min_kept=min_kept))(
        logits, labels
    )
    expected = _torch_ohem_sampler(logits, labels, thresh, min_kept)
    assert 0 < expected.sum() < (labels != 255).sum()
    np.testing.assert_array_equal(np.asarray(keep), expected)
    ours = losses.ohem_cross_entropy(logits, labels, thresh=thresh, min_kept=min_kept)
    ref = torch.nn.functional.cross_entropy(
        torch_reference.to_torch(logits),
        torch.from_numpy(np.where(expected, labels, 255)),
        ignore_index=255,
    )
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-5)


def test_top_k_cross_entropy_is_mean_of_hardest_pixels(torch, torch_reference):
    logits, labels = _hard_case(3)
    pixel = torch.nn.functional.cross_entropy(
        torch_reference.to_torch(logits),
        torch.from_numpy(labels),
        ignore_index=255,
        reduction="none",
    ).flatten()
    k = int(0.3 * pixel.numel())
    top = torch.topk(pixel, k).values
    expected = top.sum() / (top != 0).sum()
    ours = jax.jit(lambda x, y: losses.top_k_cross_entropy(x, y, top_k_percent=0.3))(logits, labels)
    np.testing.assert_allclose(float(ours), float(expected), rtol=1e-5)


def test_config_sums_weighted_losses():
    from configs import base

    config = base.get_config()
    config.losses = (("cross_entropy", 1.0), ("dice_loss", 0.5), ("focal_loss", 2.0))
    config.loss_options.focal_gamma = 1.0
    logits, labels = _hard_case(4)
    combined = losses.pixel_loss_from_config(config)(logits, labels)
    expected = (
        losses.cross_entropy(logits, labels)
        + 0.5 * losses.dice_loss(logits, labels)
        + 2.0 * losses.focal_loss(logits, labels, gamma=1.0)
    )
    np.testing.assert_allclose(float(combined), float(expected), rtol=1e-6)


def test_unknown_loss_name_is_a_clear_error():
    from configs import base

    config = base.get_config()
    config.losses = (("dice", 1.0),)
    with pytest.raises(ValueError, match="config.losses entry.*dice_loss"):
        losses.pixel_loss_from_config(config)
