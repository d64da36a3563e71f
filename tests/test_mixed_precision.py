"""config.dtype="bfloat16": float32 parameters and optimizer state, bf16 compute, float32
softmax/loss/BatchNorm statistics, and a bf16 model learns (each model's bf16 logits against
float32: tests/models/test_registry.py)."""

import jax
import jax.numpy as jnp
import numpy as np

from configs import quickstart
from jaxseg import data, metrics
from jaxseg.models.common import finalize_logits
from tests.models.harness import best_constant_mean_iou
from tests.test_train import fixed_batch_training


def _config(dtype: str):
    config = quickstart.get_config()
    config.model_kwargs.width, config.model_kwargs.head_features = 8, 16
    config.dataset, config.crop_size, config.batch_size = "shapes/tiny", 48, 4
    config.dtype = dtype
    return config


def test_bf16_training_keeps_float32_state_and_learns():
    """Float32 state after bf16 steps; the model fits a fixed batch of shapes far beyond the
    best one-class-everywhere prediction (which a broken bf16 path would be stuck at)."""
    config = _config("bfloat16")
    config.lr = 0.05
    model, state, step, batch, global_batch = fixed_batch_training(config)
    for _ in range(60):
        state, step_metrics = step(state, global_batch)
    floating = [leaf for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert floating and all(leaf.dtype == jnp.float32 for leaf in floating)
    assert step_metrics["loss"].dtype == jnp.float32 and np.isfinite(step_metrics["loss"])
    preds = model.apply(state.variables, batch["image"]).argmax(-1)
    num_classes = data.dataset_info(config.dataset)[0]
    confusion = np.asarray(metrics.confusion_matrix(batch["label"], preds, num_classes))
    fitted, prior = metrics.mean_iou(confusion), best_constant_mean_iou(confusion)
    assert fitted > prior + 0.3, (fitted, prior)


def test_finalized_logits_are_float32_or_wider():
    images = jnp.zeros((1, 9, 7, 3))
    with jax.enable_x64(True):
        for compute, expected in [
            ("bfloat16", "float32"),
            ("float32", "float32"),
            ("float64", "float64"),
        ]:
            logits = jnp.ones((1, 3, 2, 5), compute)
            assert finalize_logits(logits).dtype == expected
            upsampled = finalize_logits(logits, images, align_corners=True)
            assert upsampled.dtype == expected and upsampled.shape == (1, 9, 7, 5)
