"""Evaluation over a split: mIoU with the test-time options of `jaxseg.inference`, optional
dense CRF.

Batches arrive padded to one fixed size with label 255 in the padding and a `valid` flag per
example, so the jitted predictor compiles once; the confusion matrix is accumulated on device
and is global across devices and hosts.
"""

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


class Evaluator:
    """Runs a model over an evaluation split and reports mIoU, per-class IoU and accuracy."""

    def __init__(self, model, config: ConfigDict, mesh, source, class_names: Sequence[str]):
        self.model, self.config, self.mesh, self.source = model, config, mesh, source
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.panels: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._step = jax.jit(
            self._batch_fn,
            out_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
        )
        self._probs = jax.jit(self._probs_fn, out_shardings=sharding.batch_sharded(mesh))

    def _probs_fn(self, variables, images):
        cfg = self.config.eval
        window = cfg.window_size if cfg.sliding_window else None
        return predict_probs(
            self.model,
            variables,
            images,
            scales=tuple(cfg.scales),
            flip=cfg.flip,
            window=window,
            window_stride=cfg.window_stride,
        )

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
                iterations=self.config.eval.crf_iterations,
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
        cfg = self.config.eval
        return pipeline.eval_dataset(
            self.source,
            batch_size=cfg.batch_size,
            pad_size=tuple(cfg.pad_size),
            max_examples=cfg.max_examples or None,
            short_side=cfg.resize_short_side,
        )

    def run(self, variables: dict, *, prediction_dir: str | Path | None = None) -> dict:
        """Evaluate `variables`; with `prediction_dir`, also write label PNGs in the format of
        the dataset's evaluation server (`data.save_prediction`)."""
        cm = np.zeros((self.num_classes, self.num_classes), np.int64)
        self.panels = []
        keep = self.config.eval.num_images_to_log
        is_main = jax.process_index() == 0
        for batch in tqdm(self.batches(), desc="eval", unit="batch", disable=not is_main):
            arrays = {k: batch[k] for k in ("image", "label", "valid")}
            if self.config.eval.crf:
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
                    data.save_prediction(self.config.dataset, pred, out)
                if len(self.panels) < keep:
                    image = pipeline.denormalize(batch["image"][i, :height, :width])
                    self.panels.append(panel(image, batch["label"][i, :height, :width], pred))
        if self.config.eval.crf and jax.process_count() > 1:
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
    evaluator = Evaluator(model, config, mesh, source, class_names)
    summary = evaluator.run(variables, prediction_dir=prediction_dir)
    if jax.process_index() == 0:
        out = {**summary, "dataset": config.dataset, "split": config.eval_split}
        Path(workdir, "eval_metrics.json").write_text(json.dumps(out, indent=2))
        picture = confusion_matrix_image(np.asarray(summary["confusion_matrix"]), class_names)
        Image.fromarray(picture).save(Path(workdir, "confusion_matrix.png"))
    return summary
