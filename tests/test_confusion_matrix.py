"""The confusion matrix of an evaluation: counts in eval_metrics.json, a row-normalised PNG next
to it, and the same picture in TensorBoard."""

import io
import json
import struct
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image
from tensorboardX.proto import event_pb2

from configs import quickstart
from jaxseg import checkpoint, data, evaluate, metrics, models, viz
from jaxseg.data import ade20k, shapes, voc
from jaxseg.summary import SummaryWriter


def _cell_colour(picture: np.ndarray, row: int, column: int, num_classes: int) -> tuple:
    cell = viz.confusion_cell_size(num_classes)
    y, x = (viz.LABEL_MARGIN + i * cell + cell // 2 for i in (row, column))
    return tuple(int(c) for c in picture[y, x])


def _colour(share: float) -> tuple:
    return tuple(int(c) for c in viz.colour_scale(share))


def test_eval_metrics_json_holds_the_bincount_of_the_saved_predictions(tmp_path):
    num_classes = shapes.NUM_CLASSES
    spec = models.ModelSpec("deeplab_v1", num_classes, models.small_options("deeplab_v1"))
    model = spec.build()
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), np.zeros((1, 64, 64, 3), np.float32))
    checkpoint.write_weights(tmp_path, spec, variables)
    config = quickstart.get_config()
    config.dataset, config.eval.batch_size = "shapes/tiny", 4
    evaluate.evaluate_workdir(config, tmp_path, prediction_dir=tmp_path / "png")

    expected = np.zeros(num_classes**2, np.int64)
    source = data.load_source("shapes/tiny", "val")
    for index in range(len(source)):
        example = source[index]
        label = example["segmentation_mask"].astype(np.int64)
        pred = np.asarray(Image.open(tmp_path / "png" / f"{example['file_name']}.png"), np.int64)
        labelled = label != 255
        expected += np.bincount(
            label[labelled] * num_classes + pred[labelled], minlength=num_classes**2
        )
    expected = expected.reshape(num_classes, num_classes)
    saved = json.loads((tmp_path / "eval_metrics.json").read_text())
    np.testing.assert_array_equal(saved["confusion_matrix"], expected)
    assert np.count_nonzero(expected.sum(axis=0)) > 1  # not one class predicted everywhere

    side = viz.LABEL_MARGIN + num_classes * viz.confusion_cell_size(num_classes)
    picture = np.asarray(Image.open(tmp_path / "confusion_matrix.png"))
    assert picture.shape == (side, side, 3)
    np.testing.assert_array_equal(picture, viz.confusion_matrix_image(expected, shapes.CLASS_NAMES))


def test_a_perfect_predictor_draws_a_bright_diagonal():
    k = len(voc.CLASS_NAMES)
    picture = viz.confusion_matrix_image(np.diag(np.arange(1, k + 1) * 1000), voc.CLASS_NAMES)
    side = viz.LABEL_MARGIN + k * viz.confusion_cell_size(k)
    assert picture.shape == (side, side, 3) and side == 624
    for i in range(k):
        for j in range(k):
            assert _cell_colour(picture, i, j, k) == _colour(1.0 if i == j else 0.0), (i, j)
    assert sum(_colour(1.0)) > 2 * sum(_colour(0.0))


def test_cells_are_shares_of_their_row():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    picture = viz.confusion_matrix_image(cm, ("a", "b", "c"))
    assert _cell_colour(picture, 0, 0, 3) == _colour(0.75)
    assert _cell_colour(picture, 0, 1, 3) == _colour(0.25)
    assert _cell_colour(picture, 2, 2, 3) == _colour(0.5)
    assert _cell_colour(picture, 1, 1, 3) == viz.NO_PIXELS_COLOUR  # no pixels of class b


def test_colour_scale_brightens_monotonically():
    colours = viz.colour_scale(np.linspace(0, 1, 50)).astype(float)
    luminance = colours @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(luminance) > 0)


@pytest.mark.parametrize(("names", "named"), [(voc.CLASS_NAMES, True), (ade20k.CLASS_NAMES, False)])
def test_names_label_the_rows_only_while_they_fit(names, named):
    """21 classes: every row is named. 150: only every tenth row carries its index."""
    k = len(names)
    cell = viz.confusion_cell_size(k)
    picture = viz.confusion_matrix_image(np.eye(k, dtype=int), names)
    assert picture.shape[:2] == (viz.LABEL_MARGIN + k * cell,) * 2
    top = viz.LABEL_MARGIN + 5 * cell
    row_five_label = picture[top : top + cell, : viz.LABEL_MARGIN]
    assert bool((row_five_label < 128).any()) == named


def _events(logdir: Path):
    """Every event in `logdir`'s TFRecord event files (length, CRC, payload, CRC)."""
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        content, offset = path.read_bytes(), 0
        while offset < len(content):
            (length,) = struct.unpack("<Q", content[offset : offset + 8])
            yield event_pb2.Event.FromString(content[offset + 12 : offset + 12 + length])
            offset += 12 + length + 4


def test_tensorboard_gets_the_picture_at_each_evaluation(tmp_path):
    cm = np.array([[5, 1, 0], [2, 6, 1], [0, 0, 9]])
    names = ["sky", "road", "car"]
    summary = {**metrics.summarize(cm, names), "confusion_matrix": cm.tolist()}
    writer = SummaryWriter(tmp_path)
    writer.evaluation(10, summary, panels=[])
    writer.evaluation(20, summary, panels=[])
    writer.close()
    images = [
        (event.step, value.image)
        for event in _events(tmp_path)
        for value in event.summary.value
        if value.tag == "eval/confusion_matrix"
    ]
    assert [step for step, _ in images] == [10, 20]
    decoded = np.asarray(Image.open(io.BytesIO(images[0][1].encoded_image_string)))
    np.testing.assert_array_equal(decoded, viz.confusion_matrix_image(cm, names))
