"""config.dtype="bfloat16": float32 parameters and optimizer state, bf16 compute, float32
softmax/loss/BatchNorm statistics; bf16 logits agree with float32 and a bf16 model learns."""

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from configs import quickstart
from jaxseg import data, metrics
from jaxseg.build import build_model
from jaxseg.data import pipeline
from jaxseg.models.common import finalize_logits
from tests.test_train import fixed_batch_training


def _config(dtype: str):
    config = quickstart.get_config()
    config.model_kwargs.width, config.model_kwargs.head_features = 8, 16
    config.dataset, config.crop_size, config.batch_size = "shapes/tiny", 48, 4
    config.dtype = dtype
    return config


def _real_image(shared_dir) -> jnp.ndarray:
    path = shared_dir / "data" / "voc_samples" / "JPEGImages" / "2007_000033.jpg"
    image = np.asarray(Image.open(path).convert("RGB"))[:97, :131]
    return jnp.asarray(pipeline.normalize(image))[None]


def test_bf16_logits_agree_with_float32_on_a_real_image(shared_dir):
    image = _real_image(shared_dir)
    model32, model16 = build_model(_config("float32"), 21), build_model(_config("bfloat16"), 21)
    variables = model32.init(jax.random.PRNGKey(0), image)
    logits32, logits16 = model32.apply(variables, image), model16.apply(variables, image)
    assert logits16.dtype == jnp.float32 and logits16.shape == logits32.shape
    relative = float(jnp.abs(logits16 - logits32).max() / jnp.abs(logits32).max())
    agreement = float((logits16.argmax(-1) == logits32.argmax(-1)).mean())
    # bf16 keeps 8 mantissa bits (relative step 2**-8 = 0.4%); through ~20 layers the error
    # grows to a few of those steps, never to a float32 mistake's size.
    assert 1e-4 < relative < 5e-2, relative
    assert agreement > 0.97, agreement


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
    fitted, prior = metrics.mean_iou(confusion), _best_constant_mean_iou(confusion)
    assert fitted > prior + 0.3, (fitted, prior)


def _best_constant_mean_iou(confusion: np.ndarray) -> float:
    """mIoU of the best single-class-everywhere prediction on the same labels."""
    best = 0.0
    for c in range(confusion.shape[0]):
        constant = np.zeros_like(confusion)
        constant[:, c] = confusion.sum(axis=1)
        best = max(best, float(metrics.mean_iou(constant)))
    return best


def test_finalized_logits_are_float32_or_wider():
    images = jnp.zeros((1, 9, 7, 3))
    with jax.enable_x64(True):
        for compute, expected in [("bfloat16", "float32"), ("float32", "float32"),
                                  ("float64", "float64")]:
            logits = jnp.ones((1, 3, 2, 5), compute)
            assert finalize_logits(logits).dtype == expected
            upsampled = finalize_logits(logits, images, align_corners=True)
            assert upsampled.dtype == expected and upsampled.shape == (1, 9, 7, 5)
