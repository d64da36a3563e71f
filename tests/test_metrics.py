"""Metrics on genuine VOC masks, checked against a plain numpy confusion matrix."""

import jax
import numpy as np
import pytest
from PIL import Image

from jaxseg import metrics


def _voc_masks(shared_dir, count=6):
    root = shared_dir / "data" / "voc_samples" / "SegmentationClass"
    paths = sorted(root.glob("*.png"))[:count]
    assert paths, f"no masks in {root}"
    return [np.array(Image.open(p)) for p in paths]


def _numpy_confusion(labels, preds, num_classes):
    cm = np.zeros((num_classes, num_classes), np.int64)
    keep = labels < num_classes
    np.add.at(cm, (labels[keep].astype(int), preds[keep].astype(int)), 1)
    return cm


@pytest.fixture(scope="module")
def label_pred_pairs(shared_dir):
    """Genuine masks as labels, and the same masks shifted and corrupted as predictions."""
    rng = np.random.default_rng(0)
    pairs = []
    for mask in _voc_masks(shared_dir):
        pred = np.roll(mask, shift=(7, -5), axis=(0, 1)).copy()
        pred[pred == 255] = 0
        noise = rng.random(pred.shape) < 0.05
        pred[noise] = rng.integers(0, 21, noise.sum())
        pairs.append((mask, pred))
    return pairs


def test_confusion_matrix_matches_numpy_on_voc_masks(label_pred_pairs):
    cm_fn = jax.jit(metrics.confusion_matrix, static_argnums=2)
    total = np.zeros((21, 21), np.int64)
    expected = np.zeros((21, 21), np.int64)
    for labels, preds in label_pred_pairs:
        total += np.asarray(cm_fn(labels, preds, 21))
        expected += _numpy_confusion(labels, preds, 21)
    np.testing.assert_array_equal(total, expected)
    assert total.sum() == sum(int((lab != 255).sum()) for lab, _ in label_pred_pairs)


def test_iou_and_accuracy_match_direct_set_counts(label_pred_pairs):
    labels = np.concatenate([lab.ravel() for lab, _ in label_pred_pairs])
    preds = np.concatenate([p.ravel() for _, p in label_pred_pairs])
    cm = metrics.confusion_matrix(labels, preds, 21)
    keep = labels != 255
    per_class = metrics.iou(cm)
    for c in range(21):
        inter = np.sum((labels == c) & (preds == c) & keep)
        union = np.sum(((labels == c) | (preds == c)) & keep)
        if union == 0:
            assert np.isnan(per_class[c])
        else:
            assert per_class[c] == pytest.approx(inter / union)
    assert metrics.mean_iou(cm) == pytest.approx(np.nanmean(per_class))
    assert metrics.pixel_accuracy(cm) == pytest.approx(np.mean(labels[keep] == preds[keep]))


def test_perfect_prediction_scores_one(label_pred_pairs):
    labels = label_pred_pairs[0][0]
    preds = np.where(labels == 255, 0, labels)
    cm = metrics.confusion_matrix(labels, preds, 21)
    assert metrics.mean_iou(cm) == pytest.approx(1.0)
    assert metrics.pixel_accuracy(cm) == pytest.approx(1.0)
    assert metrics.frequency_weighted_iou(cm) == pytest.approx(1.0)


def test_weights_mask_out_padded_examples(label_pred_pairs):
    labels, preds = label_pred_pairs[0]
    batch_labels = np.stack([labels, labels])
    batch_preds = np.stack([preds, np.zeros_like(preds)])
    weights = np.array([1, 0])[:, None, None]
    cm = metrics.confusion_matrix(batch_labels, batch_preds, 21, weights=weights)
    np.testing.assert_array_equal(cm, _numpy_confusion(labels, preds, 21))


def test_summarize_names_classes(label_pred_pairs):
    labels, preds = label_pred_pairs[0]
    names = [f"c{i}" for i in range(21)]
    summary = metrics.summarize(metrics.confusion_matrix(labels, preds, 21), names)
    assert list(summary["per_class_iou"]) == names
    assert 0.0 <= summary["mean_iou"] <= 1.0
