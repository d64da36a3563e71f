"""Cityscapes builder: prepared from zips of generated files in the official layout and naming.

Cityscapes may not be redistributed, so the frames are random: label-id PNGs holding every id
0-33 and -1 (license plate, 255 in a uint8 PNG). The expected masks come from torchvision's
`Cityscapes` reader, which extracts the same zips itself, and its copy of the official
id -> train id table.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg import data
from jaxseg.data import cityscapes, reading
from tests.as_user import prepare_with_tfds

FRAMES = {
    "train": ["aachen_000000_000019", "aachen_000001_000019", "bochum_000000_000313"],
    "val": ["frankfurt_000000_000294", "lindau_000000_000019"],
    "test": ["berlin_000000_000019"],
}
SIZE = (32, 64)  # height, width: Cityscapes' 1:2 frames, small


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _label_ids(rng: np.random.Generator) -> np.ndarray:
    """Random label ids with every id 0-33 and -1 (stored as 255) present."""
    ids = np.array([*range(34), 255], np.uint8)
    labels = rng.choice(ids, size=SIZE)
    labels.flat[: len(ids)] = ids
    return rng.permuted(labels.ravel()).reshape(SIZE)


def _official_files(rng: np.random.Generator) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(leftImg8bit zip members, gtFine zip members) in the official names."""
    images, labels = {}, {}
    for split, frames in FRAMES.items():
        for frame in frames:
            city = frame.split("_")[0]
            images[f"leftImg8bit/{split}/{city}/{frame}_leftImg8bit.png"] = _png(
                rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
            )
            ids = _label_ids(rng) if split != "test" else np.zeros(SIZE, np.uint8)
            prefix = f"gtFine/{split}/{city}/{frame}_gtFine"
            labels[f"{prefix}_labelIds.png"] = _png(ids)
            labels[f"{prefix}_color.png"] = _png(np.zeros((*SIZE, 3), np.uint8))
            labels[f"{prefix}_instanceIds.png"] = _png(ids.astype(np.uint16) * 100)
            labels[f"{prefix}_polygons.json"] = b"{}"
    images["license.txt"] = labels["license.txt"] = b"generated for tests\n"
    return images, labels


def _write_zips(root: Path, images: dict[str, bytes], labels: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for archive, files in ((cityscapes.IMAGES, images), (cityscapes.LABELS, labels)):
        with zipfile.ZipFile(root / archive.file_name, "w") as out:
            for name, content in files.items():
                out.writestr(name, content)
    return root


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory) -> Path:
    files = _official_files(np.random.default_rng(0))
    return _write_zips(tmp_path_factory.mktemp("cityscapes_manual"), *files)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, manual_dir: Path) -> Path:
    """Through the standard TFDS call."""
    data_dir = tmp_path_factory.mktemp("cityscapes_tfds")
    prepare_with_tfds("cityscapes", data_dir, manual_dir)
    return data_dir


@pytest.fixture(scope="module")
def torchvision_masks(tmp_path_factory, manual_dir: Path) -> dict[str, tuple[np.ndarray, ...]]:
    """frame id -> (image, train-id mask) as torchvision reads and maps the same zips."""
    from torchvision.datasets import Cityscapes

    root = tmp_path_factory.mktemp("cityscapes_torchvision")
    for archive in (cityscapes.IMAGES, cityscapes.LABELS):
        (root / archive.file_name).symlink_to(manual_dir / archive.file_name)
    table = np.full(256, 255, np.uint8)
    for label in Cityscapes.classes:
        table[label.id % 256] = 255 if label.train_id in (-1, 255) else label.train_id
    out = {}
    for split in ("train", "val"):
        dataset = Cityscapes(str(root), split=split, mode="fine", target_type="semantic")
        for index, path in enumerate(dataset.images):
            image, target = dataset[index]
            frame = Path(path).name.removesuffix("_leftImg8bit.png")
            out[frame] = (np.asarray(image), table[np.asarray(target)])
    return out


def test_train_and_val_masks_are_the_official_train_ids(prepared, torchvision_masks):
    for split in ("train", "val"):
        source = data.load_source("cityscapes", split, str(prepared))
        assert source.num_classes == 19 and source.class_names[-1] == "bicycle"
        assert [source[i]["file_name"] for i in range(len(source))] == sorted(FRAMES[split])
        for index in range(len(source)):
            example = source[index]
            image, mask = torchvision_masks[example["file_name"]]
            np.testing.assert_array_equal(example["image"], image)
            np.testing.assert_array_equal(example["segmentation_mask"], mask)
            assert set(np.unique(mask)) == set(range(19)) | {255}


def test_test_split_masks_are_all_ignore(prepared):
    source = data.load_source("cityscapes", "test", str(prepared))
    assert [source[i]["file_name"] for i in range(len(source))] == FRAMES["test"]
    assert (source[0]["segmentation_mask"] == 255).all()
    assert source[0]["segmentation_mask"].shape == SIZE


def test_prediction_ids_invert_the_official_table():
    from torchvision.datasets import Cityscapes

    ids = {c.train_id: c.id for c in Cityscapes.classes if c.train_id not in (-1, 255)}
    assert cityscapes.PREDICTION_IDS.tolist() == [ids[k] for k in range(19)]


def test_cli_prepares_from_the_manual_dir(manual_dir, tmp_path):
    from jaxseg.data.__main__ import prepare

    summary = prepare("cityscapes", manual_dir=str(manual_dir), data_dir=str(tmp_path))
    assert "test 1, train 3, val 2 examples" in summary


def test_unknown_label_id_names_the_file(tmp_path):
    images, labels = _official_files(np.random.default_rng(1))
    name = f"gtFine/val/lindau/{FRAMES['val'][1]}_gtFine_labelIds.png"
    ids = np.asarray(Image.open(io.BytesIO(labels[name]))).copy()
    ids[3, 3] = 40
    labels[name] = _png(ids)
    manual = _write_zips(tmp_path / "manual", images, labels)
    builder = data.get_builder("cityscapes", str(tmp_path / "tfds"))
    with pytest.raises(
        reading.DatasetFileError, match=rf"gtFine_trainvaltest.zip: {name}: label values \[40\]"
    ):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual)
        )
    assert not builder.is_prepared()


def test_without_manual_dir_the_registration_page_is_named(tmp_path):
    builder = data.get_builder("cityscapes", str(tmp_path))
    with pytest.raises(reading.DatasetFileError, match="cityscapes-dataset.com"):
        builder.download_and_prepare()
