"""Folder datasets: a folder made from genuine CamVid frames, prepared, trained and evaluated."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg import data
from jaxseg.data import camvid, folder, reading
from jaxseg.data.__main__ import main as cli_main
from tests.as_user import run_script

REPO_ROOT = Path(__file__).resolve().parents[1]
COUNTS = {"train": 4, "val": 2}


def _camvid_pairs(camvid_dir: Path, split: str, count: int) -> list[tuple[Path, Path]]:
    lines = (camvid_dir / f"{split}.txt").read_text().splitlines()[:count]
    return [tuple(camvid_dir.joinpath(*Path(p).parts[-2:]) for p in line.split()) for line in lines]


def make_folder(camvid_dir: Path, root: Path, counts: dict[str, int] = COUNTS) -> Path:
    """CamVid frames in the folder layout; void (11) written as 255, the ignore value."""
    for split, count in counts.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        for image, label in _camvid_pairs(camvid_dir, split, count):
            shutil.copyfile(image, root / "images" / split / image.name)
            values = np.asarray(Image.open(label))
            Image.fromarray(np.where(values == 11, 255, values).astype(np.uint8)).save(
                root / "masks" / split / label.name
            )
    (root / "classes.txt").write_text("\n".join(camvid.CLASS_NAMES) + "\n")
    return root


@pytest.fixture(scope="module")
def camvid_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "camvid"


@pytest.fixture(scope="module")
def dataset(camvid_dir, tmp_path_factory) -> Path:
    return make_folder(camvid_dir, tmp_path_factory.mktemp("folder") / "camvid_folder")


def _expected_mask(camvid_dir: Path, split: str, index: int) -> np.ndarray:
    raw = np.asarray(Image.open(_camvid_pairs(camvid_dir, split, index + 1)[index][1]))
    return np.where(raw == 11, 255, raw)


def test_load_source_prepares_the_folder_once(dataset, camvid_dir, tmp_path):
    source = data.load_source(f"folder:{dataset}", "val", str(tmp_path))
    assert source.class_names == camvid.CLASS_NAMES and source.num_classes == 11
    pairs = sorted(_camvid_pairs(camvid_dir, "val", 2))
    assert [source[i]["file_name"] for i in range(len(source))] == [p[0].stem for p in pairs]
    for index, (image, label) in enumerate(pairs):
        np.testing.assert_array_equal(source[index]["image"], np.asarray(Image.open(image)))
        raw = np.asarray(Image.open(label))
        np.testing.assert_array_equal(
            source[index]["segmentation_mask"], np.where(raw == 11, 255, raw)
        )
    prepared = sorted((tmp_path / "folder").iterdir())
    data.load_source(f"folder:{dataset}", "train", str(tmp_path))
    assert sorted((tmp_path / "folder").iterdir()) == prepared  # not again


def test_a_changed_file_prepares_again(camvid_dir, tmp_path):
    root = make_folder(camvid_dir, tmp_path / "mine", {"train": 2, "val": 1})
    before = data.load_source(f"folder:{root}", "train", str(tmp_path / "tfds"))
    mask_path = root / "masks" / "train" / f"{before[0]['file_name']}.png"
    mask = np.asarray(Image.open(mask_path)).copy()
    mask[:10] = 3
    Image.fromarray(mask).save(mask_path)
    os.utime(mask_path, ns=(1, 1))  # a new modification time, even on coarse clocks
    after = data.load_source(f"folder:{root}", "train", str(tmp_path / "tfds"))
    np.testing.assert_array_equal(after[0]["segmentation_mask"], mask)
    assert len(list((tmp_path / "tfds" / "folder").glob("mine_*"))) == 1  # old one gone


def test_colour_masks_and_reduce_zero_label(camvid_dir, tmp_path):
    root = make_folder(camvid_dir, tmp_path / "colour", {"train": 1, "val": 1})
    palette = np.random.default_rng(0).permutation(256)[:11, None].repeat(3, axis=1)
    palette[:, 1] = np.arange(11)  # distinct colours
    (root / "palette.txt").write_text("".join(f"{r} {g} {b}\n" for r, g, b in palette))
    for mask_path in (root / "masks").rglob("*.png"):
        indices = np.asarray(Image.open(mask_path))
        Image.fromarray(palette[np.where(indices == 255, 0, indices)].astype(np.uint8)).save(
            mask_path
        )
    source = data.load_source(f"folder:{root}", "val", str(tmp_path / "tfds"))
    expected = _expected_mask(camvid_dir, "val", 0)
    np.testing.assert_array_equal(
        source[0]["segmentation_mask"], np.where(expected == 255, 0, expected)
    )
    reduced = data.load_source(f"folder:{root}:reduce_zero_label", "val", str(tmp_path / "tfds"))
    labels = np.where(expected == 255, 0, expected).astype(np.int64)
    np.testing.assert_array_equal(
        reduced[0]["segmentation_mask"], np.where(labels == 0, 255, labels - 1)
    )


def test_tfds_builder_reads_the_manual_dir(dataset, tmp_path):
    folder.SegmentationFolder  # registers the builder  # noqa: B018
    builder = tfds.builder("folder", data_dir=tmp_path, file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=dataset))
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == COUNTS


def test_cli_prepares_ahead(dataset, tmp_path, capsys):
    cli_main(["prepare", f"folder:{dataset}", f"--data_dir={tmp_path}"])
    assert "train 4, val 2 examples" in capsys.readouterr().out


def _unpaired_image(root):
    path = next((root / "masks" / "train").iterdir())
    path.unlink()
    return rf"{path.stem}.png has no mask"


def _unpaired_mask(root):
    path = next((root / "images" / "val").iterdir())
    path.unlink()
    return rf"masks/val/{path.stem}.png has no image"


def _other_size(root):
    path = next((root / "masks" / "train").iterdir())
    Image.open(path).crop((0, 0, 100, 100)).save(path)
    return rf"{path.name}: mask is 100x100 but its image"


def _unknown_value(root):
    path = sorted((root / "masks" / "val").iterdir())[-1]
    values = np.asarray(Image.open(path)).copy()
    values[5, 5] = 11
    Image.fromarray(values).save(path)
    return rf"{path.name}: label values \[11\]"


def _unreadable_image(root):
    path = next((root / "images" / "train").iterdir())
    path.write_bytes(path.read_bytes()[:200])
    return rf"{path.name}: unreadable or truncated image"


def _empty_split(root):
    (root / "images" / "test").mkdir()
    return r"images/test: empty split"


def _unknown_colour(root):
    (root / "palette.txt").write_text("".join(f"{k} {k} {k}\n" for k in range(11)))
    path = sorted((root / "masks" / "train").iterdir())[0]  # the first mask read
    Image.fromarray(np.full((360, 480, 3), 200, np.uint8)).save(path)
    return rf"{path.name}: colour \(200, 200, 200\) at x=0, y=0 is not in palette.txt"


@pytest.mark.parametrize(
    "damage",
    [
        _unpaired_image,
        _unpaired_mask,
        _other_size,
        _unknown_value,
        _unreadable_image,
        _empty_split,
        _unknown_colour,
    ],
)
def test_bad_input_names_the_file(camvid_dir, tmp_path, damage):
    root = make_folder(camvid_dir, tmp_path / "bad", {"train": 2, "val": 2})
    message = damage(root)
    builder = data.get_builder(f"folder:{root}", str(tmp_path / "tfds"))
    with pytest.raises(reading.DatasetFileError, match=message):
        data.load_source(f"folder:{root}", "train", str(tmp_path / "tfds"))
    assert not builder.is_prepared()


def test_train_then_eval_on_a_folder(dataset, tmp_path):
    workdir, data_dir = tmp_path / "run", tmp_path / "tfds"
    common = [
        "--config=folder",
        f"--config.dataset=folder:{dataset}",
        f"--workdir={workdir}",
        f"--config.data_dir={data_dir}",
        "--config.model_kwargs.depth=18",
        "--config.model_kwargs.width=8",
        "--config.model_kwargs.aspp_features=16",
        "--config.eval.resize_short_side=90",
        "--config.eval.pad_size=(96,128)",
        "--config.eval.batch_size=2",
    ]
    train = [
        sys.executable,
        "train.py",
        *common,
        "--config.num_steps=3",
        "--config.crop_size=(48,64)",
        "--config.scale_range=(0.25,0.25)",
        "--config.batch_size=2",
        "--config.log_every=1",
        "--config.checkpoint_every=3",
    ]
    result = subprocess.run(train, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (workdir / "checkpoints" / "3").is_dir()
    predictions = tmp_path / "png"
    evaluate = [sys.executable, "eval.py", *common, f"--predictions_dir={predictions}"]
    result = subprocess.run(evaluate, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mIoU" in result.stdout
    metrics = json.loads((workdir / "eval_metrics.json").read_text())
    assert metrics["dataset"] == f"folder:{dataset}" and 0.0 <= metrics["mean_iou"] <= 1.0
    written = sorted(p.stem for p in predictions.iterdir())
    assert written == sorted(p.stem for p in (dataset / "images" / "val").iterdir())
    assert Image.open(next(predictions.iterdir())).size == (120, 90)  # short side 90


def test_folder_preset_needs_a_folder(tmp_path):
    result = run_script("train.py", "--config=folder", f"--workdir={tmp_path}")
    assert result.returncode != 0
    assert "--config.dataset=folder:DIR" in result.stderr and "Traceback" not in result.stderr
