"""Evaluation over a split: mIoU with the test-time options of `jaxseg.inference`, optional
dense CRF.

Batches arrive padded to one fixed size with label 255 in the padding and a `valid` flag per
example, so the jitted predictor compiles once; the confusion matrix is accumulated on device
and is global across devices and hosts.
"""

import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from ml_collections import ConfigDict
from PIL import Image
from tqdm import tqdm

from jaxseg import checkpoint, config_checks, data, metrics, sharding
from jaxseg.build import model_for_workdir
from jaxseg.data import pipeline
from jaxseg.inference import predict_probs
from jaxseg.viz import confusion_matrix_image, panel


@dataclasses.dataclass(frozen=True)
class EvalOptions:
    """How a split is evaluated: `config.eval`'s settings, read once (`from_config`), and the
    dataset whose evaluation-server format predictions are written in."""

    dataset: str
    batch_size: int = 4  # global: a multiple of the device and process counts
    pad_size: tuple[int, int] = (512, 512)
    resize_short_side: int = 0
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False
    window: tuple[int, int] | None = None  # sliding-window (height, width); None: whole images
    window_stride: tuple[int, int] = (342, 342)
    crf: bool = False
    crf_iterations: int = 10
    max_examples: int | None = None  # None: the whole split
    num_images_to_log: int = 4

    @classmethod
    def from_config(cls, config: ConfigDict) -> "EvalOptions":
        """The options `config.eval` (and `config.dataset`) set."""
        cfg = config.eval
        return cls(
            dataset=config.dataset,
            batch_size=cfg.batch_size,
            pad_size=tuple(cfg.pad_size),
            resize_short_side=cfg.resize_short_side,
            scales=tuple(cfg.scales),
            flip=cfg.flip,
            window=pipeline.as_size(cfg.window_size) if cfg.sliding_window else None,
            window_stride=pipeline.as_size(cfg.window_stride),
            crf=cfg.crf,
            crf_iterations=cfg.crf_iterations,
            max_examples=cfg.max_examples or None,
            num_images_to_log=cfg.num_images_to_log,
        )


class Evaluator:
    """Runs a model over an evaluation split and reports mIoU, per-class IoU and accuracy."""

    def __init__(
        self, model, options: EvalOptions, mesh, source, class_names: Sequence[str]
    ):  # fmt: skip
        self.model, self.options, self.mesh, self.source = model, options, mesh, source
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.panels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._step = jax.jit(
            self._batch_fn,
            out_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
        )
        self._probs = jax.jit(self._probs_fn, out_shardings=sharding.batch_sharded(mesh))

    def _probs_fn(self, variables, images):
        o = self.options
        return predict_probs(
            self.model, variables, images,
            scales=o.scales, flip=o.flip, window=o.window, window_stride=o.window_stride,
        )  # fmt: skip

    def _batch_fn(self, variables, batch):
        preds = jnp.argmax(self._probs_fn(variables, batch["image"]), axis=-1).astype(jnp.int32)
        valid = batch["valid"][:, None, None]
        cm = metrics.confusion_matrix(batch["label"], preds, self.num_classes, weights=valid)
        return cm, preds

    def _crf_batch(self, variables, batch: dict) -> tuple[np.ndarray, np.ndarray]:
        """Confusion matrix and labels of this process's examples after DeepLab's dense CRF.

        The CRF runs on each image at its own size (not the padded canvas), outside `jit`, so
        its lattice is sized to the image.
        """
        from jaxseg import crf  # the lattice code loads only when the CRF is switched on

        images = sharding.to_global({"image": batch["image"]}, self.mesh)["image"]
        probs = _local_rows(self._probs(variables, images))
        preds = np.zeros(probs.shape[:3], np.int32)
        cm = np.zeros((self.num_classes, self.num_classes), np.int64)
        for i in np.flatnonzero(batch["valid"]):
            height, width = int(batch["height"][i]), int(batch["width"][i])
            image = pipeline.denormalize(batch["image"][i, :height, :width])
            refined = crf.dense_crf(
                image,
                probs[i, :height, :width],
                iterations=self.options.crf_iterations,
                **crf.DEEPLAB_VOC_CRF,
            )
            preds[i, :height, :width] = np.argmax(refined, axis=-1)
            cm += np.asarray(
                metrics.confusion_matrix(
                    batch["label"][i, :height, :width], preds[i, :height, :width], self.num_classes
                )
            )
        return cm, preds

    def batches(self) -> Iterable[dict]:
        """Fixed-shape evaluation batches of this process's shard."""
        o = self.options
        return pipeline.eval_dataset(
            self.source,
            batch_size=o.batch_size,
            pad_size=o.pad_size,
            max_examples=o.max_examples,
            short_side=o.resize_short_side,
        )

    def run(self, variables: dict, *, prediction_dir: str | Path | None = None) -> dict:
        """Evaluate `variables`; with `prediction_dir`, also write label PNGs in the format of
        the dataset's evaluation server (`data.save_prediction`)."""
        cm = np.zeros((self.num_classes, self.num_classes), np.int64)
        self.panels = []
        keep = self.options.num_images_to_log
        is_main = jax.process_index() == 0
        for batch in tqdm(self.batches(), desc="eval", unit="batch", disable=not is_main):
            arrays = {k: batch[k] for k in ("image", "label", "valid")}
            if self.options.crf:
                batch_cm, local_preds = self._crf_batch(variables, batch)
            else:
                batch_cm, preds = self._step(variables, sharding.to_global(arrays, self.mesh))
                local_preds = _local_rows(preds)
            cm += np.asarray(jax.device_get(batch_cm), np.int64)
            for i in np.flatnonzero(batch["valid"]):
                height, width = int(batch["height"][i]), int(batch["width"][i])
                pred = local_preds[i, :height, :width].astype(np.uint8)
                if prediction_dir is not None:
                    out = Path(prediction_dir) / f"{batch['file_name'][i]}.png"
                    data.save_prediction(self.options.dataset, pred, out)
                if len(self.panels) < keep:
                    image = pipeline.denormalize(batch["image"][i, :height, :width])
                    self.panels.append(panel(image, batch["label"][i, :height, :width], pred))
        if self.options.crf and jax.process_count() > 1:
            cm = np.asarray(multihost_utils.process_allgather(cm)).sum(axis=0)
        summary = metrics.summarize(cm, self.class_names)
        summary["confusion_matrix"] = cm.tolist()
        return summary


def _local_rows(array: jax.Array) -> np.ndarray:
    """This process's rows of a batch-sharded global array, in order."""
    if array.is_fully_addressable:
        return np.asarray(array)
    shards = sorted(array.addressable_shards, key=lambda s: s.index[0].start or 0)
    return np.concatenate([np.asarray(s.data) for s in shards])


def evaluate_workdir(
    config: ConfigDict, workdir: str | Path, prediction_dir: str | Path | None = None
) -> dict:
    """Evaluate the latest checkpoint in `workdir` on `config.eval_split`; writes
    `workdir/eval_metrics.json` (metrics and the confusion matrix, `[true][predicted]` pixel
    counts) and `workdir/confusion_matrix.png` (rows normalised), and returns the summary."""
    num_classes, class_names = data.dataset_info(config.dataset)
    model = model_for_workdir(config, workdir, num_classes)
    mesh = sharding.make_mesh(config.num_devices)
    config_checks.check_eval_config(config, mesh)
    variables = checkpoint.load_variables(
        workdir, sharding.replicated(mesh), use_ema=config.eval.use_ema
    )
    source = data.load_source(config.dataset, config.eval_split, config.data_dir)
    evaluator = Evaluator(model, EvalOptions.from_config(config), mesh, source, class_names)
    summary = evaluator.run(variables, prediction_dir=prediction_dir)
    if jax.process_index() == 0:
        out = {**summary, "dataset": config.dataset, "split": config.eval_split}
        Path(workdir, "eval_metrics.json").write_text(json.dumps(out, indent=2))
        picture = confusion_matrix_image(np.asarray(summary["confusion_matrix"]), class_names)
        Image.fromarray(picture).save(Path(workdir, "confusion_matrix.png"))
    return summary
