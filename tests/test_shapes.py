"""The embedded `shapes` dataset: deterministic, VOC-like labels, readable through TFDS."""

import numpy as np

from jaxseg import data
from jaxseg.data import shapes
from jaxseg.data.labels import IGNORE_LABEL


def test_examples_are_deterministic_and_differ_by_index():
    image, mask = shapes.make_example("train", 3)
    again_image, again_mask = shapes.make_example("train", 3)
    np.testing.assert_array_equal(image, again_image)
    np.testing.assert_array_equal(mask, again_mask)
    assert not np.array_equal(image[:50, :50], shapes.make_example("val", 3)[0][:50, :50])


def test_labels_have_classes_and_an_ignore_border():
    masks = [shapes.make_example("train", i)[1] for i in range(30)]
    values = set(np.unique(np.concatenate([m.ravel() for m in masks])).tolist())
    assert values == set(range(shapes.NUM_CLASSES)) | {IGNORE_LABEL}
    for mask in masks:
        # Every object is separated from the background by ignored pixels, as in VOC.
        padded = np.pad(mask, 1, mode="edge")
        for dy, dx in ((0, 1), (1, 0)):
            neighbour = padded[1 + dy : 1 + dy + mask.shape[0], 1 + dx : 1 + dx + mask.shape[1]]
            touching = (mask != neighbour) & (mask != 255) & (neighbour != 255)
            assert not touching.any()


def test_tfds_source_round_trips_the_png_bytes(tmp_path):
    source = data.load_source("shapes/tiny", "val", data_dir=str(tmp_path))
    assert len(source) == 8
    assert source.num_classes == shapes.NUM_CLASSES
    example = source[5]
    image, mask = shapes.make_example("val", 5)
    np.testing.assert_array_equal(example["image"], image)
    np.testing.assert_array_equal(example["segmentation_mask"], mask)
    assert example["file_name"] == "shapes_val_00005"
