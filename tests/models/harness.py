"""The checks every registered model passes, on its small version (`models.small_options`):
forward shapes and batch independence, fitting a batch of real images, bf16 against float32,
and learning `shapes` through the real training loop.
"""

import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from configs import base
from jaxseg import data, losses, metrics, models, optim, sharding
from jaxseg.build import build_model
from jaxseg.data import pipeline
from jaxseg.data.labels import IGNORE_LABEL
from jaxseg.data.voc import NUM_CLASSES as VOC_CLASSES
from jaxseg.train import create_train_state, make_train_step, train_and_evaluate

NUM_CLASSES = 5
ODD_SIZES = ((97, 131),)
# Two genuine VOC training images with several classes each, resized to a fixed batch.
REAL_IMAGE_IDS = ("2007_000250", "2007_000504")
REAL_SIZE = (64, 64)
LEARN_LR = 0.05


def init_variables(model, size: tuple[int, int] = (64, 64), batch: int = 1) -> dict:
    """Variables of `model` initialised on a zero batch of `size`."""
    images = jnp.zeros((batch, *size, 3), jnp.float32)
    return jax.jit(lambda rng: model.init({"params": rng, "dropout": rng}, images))(
        jax.random.PRNGKey(0)
    )


def small_model(name: str, num_classes: int = NUM_CLASSES, **overrides):
    """Model `name`'s registered small version, with `overrides` on top."""
    return models.create(name, num_classes, **{**models.small_options(name), **overrides})


def parameter_count(name: str, size: tuple[int, int] = (64, 64), **overrides) -> int:
    """Number of parameters of the full-size model, from shapes alone (nothing allocated)."""
    model = models.create(name, **overrides)
    images = jax.ShapeDtypeStruct((1, *size, 3), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), images)
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def real_batch(shared_dir: Path, size: tuple[int, int] = REAL_SIZE) -> dict[str, np.ndarray]:
    """`REAL_IMAGE_IDS` from the genuine VOC samples at `size`: normalised images and masks."""
    root = shared_dir / "data" / "voc_samples"
    images, labels = [], []
    for image_id in REAL_IMAGE_IDS:
        image = Image.open(root / "JPEGImages" / f"{image_id}.jpg").convert("RGB")
        mask = Image.open(root / "SegmentationClass" / f"{image_id}.png")
        images.append(pipeline.normalize(np.asarray(image.resize(size[::-1], Image.BILINEAR))))
        labels.append(np.asarray(mask.resize(size[::-1], Image.NEAREST), np.int32))
    return {"image": np.stack(images), "label": np.stack(labels)}


def best_constant_mean_iou(confusion: np.ndarray) -> float:
    """mIoU of the best single-class-everywhere prediction on the labels `confusion` counts."""
    confusion = np.asarray(confusion, np.int64)
    best = 0.0
    for c in range(confusion.shape[0]):
        constant = np.zeros_like(confusion)
        constant[:, c] = confusion.sum(axis=1)
        best = max(best, metrics.mean_iou(constant))
    return best


def check_forward(name: str, sizes=ODD_SIZES) -> None:
    """Eval-mode logits under jit are finite, (B, H, W, classes) at each input size, and each
    image's logits do not depend on the other images of its batch; in train mode the main and
    auxiliary logits have that shape too."""
    model = small_model(name)
    variables = init_variables(model)
    apply = jax.jit(model.apply)
    rng = np.random.default_rng(0)
    for height, width in sizes:
        images = rng.normal(size=(2, height, width, 3)).astype(np.float32)
        logits = np.asarray(apply(variables, images))
        assert logits.shape == (2, height, width, NUM_CLASSES), (name, logits.shape)
        assert np.isfinite(logits).all(), name
    outputs = jax.eval_shape(
        lambda v, x: model.apply(
            v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(0)}
        )[0],
        variables,
        images,
    )
    main, aux = losses.split_outputs(outputs)
    for output in (main, *aux):
        assert output.shape == (2, height, width, NUM_CLASSES), (name, output.shape)
    other = images.copy()
    other[1] = 3 * rng.normal(size=other[1].shape)
    alone = np.asarray(apply(variables, other))
    np.testing.assert_allclose(alone[0], logits[0], rtol=1e-5, atol=1e-5 * np.abs(logits).max())


def check_bfloat16(name: str, shared_dir: Path) -> None:
    """With `dtype=bfloat16` on the same float32 variables, logits on real images stay float32,
    differ from float32 (bf16 really ran) and agree with it to bf16 precision: 8 mantissa bits
    (a 2**-8 relative step) through a few dozen layers, never a float32 mistake's size.

    The bar is on the typical pixel and on the predicted class: SegNet's max-unpooling moves a
    value to another pixel wherever bf16 rounding ties a pooling window (at 2% typical error
    and 84% class agreement here, against 0.2% and 99% for the other models).
    """
    images = real_batch(shared_dir)["image"]
    model32, model16 = small_model(name), small_model(name, dtype="bfloat16")
    variables = init_variables(model32)
    logits32 = np.asarray(jax.jit(model32.apply)(variables, images))
    logits16 = jax.jit(model16.apply)(variables, images)
    assert logits16.dtype == jnp.float32, (name, logits16.dtype)
    relative = np.abs(np.asarray(logits16) - logits32) / np.abs(logits32).max()
    agreement = float((np.asarray(logits16).argmax(-1) == logits32.argmax(-1)).mean())
    assert relative.max() > 1e-5, (name, relative.max())
    assert np.median(relative) < 0.03 and agreement > 0.8, (name, np.median(relative), agreement)


def small_config(name: str):
    """The base config with model `name`'s small version."""
    config = base.get_config()
    config.model = name
    config.model_kwargs = base.model_kwargs(name, **models.small_options(name))
    return config


def training_pieces(config, num_classes: int):
    """(model, initial state, jitted train step, mesh) for `config` on one device: the pieces
    of `train_and_evaluate`, for stepping a batch by hand."""
    model = build_model(config, num_classes)
    mesh = sharding.make_mesh(1)
    tx, schedule = optim.make_optimizer(config)
    state, shardings = create_train_state(model, tx, config, mesh)
    return model, state, make_train_step(model, tx, schedule, config, shardings, mesh), mesh


def fitting_config(name: str, steps: int):
    """The base recipe on the small model, AdamW without weight decay, for fitting one batch."""
    config = small_config(name)
    config.optimizer, config.lr, config.weight_decay = "adamw", 5e-3, 0.0
    config.num_steps, config.lr_schedule = steps, "constant"
    return config


def class_entropy(labels: np.ndarray) -> float:
    """Entropy of the class frequencies of `labels` (ignore label left out): the lowest
    cross-entropy any prediction that is the same at every pixel can reach on them."""
    counts = np.bincount(labels[labels != IGNORE_LABEL])
    frequencies = counts[counts > 0] / counts.sum()
    return float(-(frequencies * np.log(frequencies)).sum())


def check_fits_a_real_batch(name: str, shared_dir: Path, steps: int, fraction: float) -> None:
    """Within `steps` of the real train step on one fixed batch of genuine VOC images, the main
    head's loss falls below `fraction` of the batch's class entropy, which no prediction
    blind to the pixels can reach; and every parameter moves."""
    _, state, step_fn, mesh = training_pieces(fitting_config(name, steps), VOC_CLASSES)
    start = jax.tree.map(np.asarray, state.params)
    host_batch = real_batch(shared_dir)
    batch = sharding.to_global(host_batch, mesh)
    history = []
    for _ in range(steps):
        state, step_metrics = step_fn(state, batch)
        history.append(step_metrics["loss_main"])
    history = np.asarray(jax.device_get(history))
    assert np.isfinite(history).all(), (name, history)
    bar = fraction * class_entropy(host_batch["label"])
    assert history.min() < bar, (
        f"{name}: loss {history[0]:.3f} -> {history.min():.3f}, bar {bar:.3f}"
    )
    moved = jax.tree.map(lambda a, b: bool(np.any(a != np.asarray(b))), start, state.params)
    still = [
        jax.tree_util.keystr(p) for p, m in jax.tree_util.tree_leaves_with_path(moved) if not m
    ]
    assert not still, f"{name}: parameters training never changes: {still[:5]}"


def learning_config(name: str, steps: int):
    """The base recipe (SGD, poly decay) on the small model and `shapes/tiny`, evaluated once
    at the end on the whole val split."""
    config = small_config(name)
    config.dataset, config.crop_size, config.scale_range = "shapes/tiny", 64, (0.75, 1.25)
    config.batch_size, config.num_steps, config.lr = 4, steps, LEARN_LR
    config.log_every = config.checkpoint_every = config.eval_every = steps
    config.eval.batch_size, config.eval.pad_size, config.eval.num_images_to_log = 8, (144, 144), 0
    return config


def shapes_prior() -> float:
    """Val mIoU of the best one-class-everywhere prediction on `shapes/tiny`."""
    source = data.load_source("shapes/tiny", "val")
    num_classes = len(source.class_names)
    confusion = sum(
        np.asarray(metrics.confusion_matrix(m, np.zeros_like(m), num_classes), np.int64)
        for m in (source[i]["segmentation_mask"] for i in range(len(source)))
    )
    return best_constant_mean_iou(confusion)


def learned_mean_iou(name: str, steps: int) -> float:
    """Val mIoU of the small model after `train_and_evaluate` on `shapes/tiny`."""
    with tempfile.TemporaryDirectory() as workdir:
        return train_and_evaluate(learning_config(name, steps), workdir)["mean_iou"]
