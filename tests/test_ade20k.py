"""ADE20K builder: prepared from a zip holding the genuine ADEChallengeData2016 sample pairs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg import data
from jaxseg.data import ade20k, reading
from jaxseg.data.__main__ import prepare
from tests.as_user import prepare_with_tfds

ROOT = "ADEChallengeData2016"


@pytest.fixture(scope="module")
def samples(shared_dir: Path) -> Path:
    return shared_dir / "data" / "ade20k_samples"


def _archive_files(samples: Path) -> dict[str, bytes]:
    """Every sample file under the archive's top folder, as the official zip lays them out."""
    return {
        f"{ROOT}/{path.relative_to(samples).as_posix()}": path.read_bytes()
        for path in sorted(samples.rglob("*"))
        if path.is_file() and path.name != "provenance.tsv"
    }


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory, samples: Path) -> Path:
    root = tmp_path_factory.mktemp("ade_manual")
    _write_zip(root / ade20k.ARCHIVE.file_name, _archive_files(samples))
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, manual_dir: Path) -> Path:
    """Through the standard TFDS call, as a user would make it."""
    data_dir = tmp_path_factory.mktemp("ade_tfds")
    prepare_with_tfds("ade20k", data_dir, manual_dir)
    return data_dir


def test_class_names_are_the_devkit_short_names(samples):
    rows = (samples / "objectInfo150.txt").read_text().splitlines()[1:]
    assert tuple(row.split("\t")[-1].split(",")[0].strip() for row in rows) == ade20k.CLASS_NAMES


@pytest.mark.parametrize(
    ("split", "folder", "stems"),
    [
        ("train", "training", ["ADE_train_00000001"]),
        ("val", "validation", ["ADE_val_00000001", "ADE_val_00000002"]),
    ],
)
def test_masks_are_the_annotations_minus_one_with_other_ignored(
    prepared, samples, split, folder, stems
):
    source = data.load_source("ade20k", split, str(prepared))
    assert source.num_classes == 150 and source.class_names[0] == "wall"
    assert [source[i]["file_name"] for i in range(len(source))] == stems
    for index, stem in enumerate(stems):
        example = source[index]
        annotation = np.asarray(Image.open(samples / "annotations" / folder / f"{stem}.png"))
        expected = np.where(annotation == 0, 255, annotation.astype(np.int64) - 1)
        np.testing.assert_array_equal(example["segmentation_mask"], expected)
        image = np.asarray(Image.open(samples / "images" / folder / f"{stem}.jpg"))
        np.testing.assert_array_equal(example["image"], image)


def test_cli_prepares_the_same_records(manual_dir, prepared, tmp_path):
    summary = prepare("ade20k", manual_dir=str(manual_dir), data_dir=str(tmp_path))
    assert "train 1, val 2 examples" in summary
    ours = tfds.data_source("ade20k", data_dir=tmp_path, split="val", download=False)
    reference = tfds.data_source("ade20k", data_dir=prepared, split="val", download=False)
    for index in range(2):
        np.testing.assert_array_equal(
            ours[index]["segmentation_mask"], reference[index]["segmentation_mask"]
        )


def test_annotation_above_150_names_the_file(samples, tmp_path):
    files = _archive_files(samples)
    name = f"{ROOT}/annotations/validation/ADE_val_00000002.png"
    values = np.asarray(Image.open(io.BytesIO(files[name]))).copy()
    values[0, 0] = 151
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    files[name] = buffer.getvalue()
    _write_zip(tmp_path / "manual" / ade20k.ARCHIVE.file_name, files)
    builder = data.get_builder("ade20k", str(tmp_path / "tfds"))
    with pytest.raises(reading.DatasetFileError, match=rf"zip: {name}: label values \[151\]"):
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
        )
    assert not builder.is_prepared()


def test_missing_annotation_is_named(samples, tmp_path):
    files = _archive_files(samples)
    name = f"{ROOT}/annotations/training/ADE_train_00000001.png"
    del files[name]
    _write_zip(tmp_path / "manual" / ade20k.ARCHIVE.file_name, files)
    with pytest.raises(reading.DatasetFileError, match=f"{name} is missing"):
        prepare("ade20k", manual_dir=str(tmp_path / "manual"), data_dir=str(tmp_path / "tfds"))


def test_unprepared_ade20k_says_how_to_prepare(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError, match="ADEChallengeData2016.zip"):
        data.load_source("ade20k", "val", str(tmp_path))
