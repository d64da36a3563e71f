"""VOC 2012 / SBD builder: prepared from small archives with the genuine layouts and files.

The VOC archives hold genuine VOC 2012 images and masks from `shared/data/voc_samples`; the SBD
archive holds `.mat` masks written with scipy in SBD's layout, which torchvision's own
`SBDataset` reader must accept. Expected masks are read independently: PIL palette indices for
VOC, torchvision's SBD reader for SBD.
"""

from __future__ import annotations

import dataclasses
import functools
import http.server
import io
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import tensorflow_datasets as tfds
from PIL import Image
from scipy import ndimage

from jaxseg import data
from jaxseg.data import voc
from jaxseg.data.__main__ import main as cli_main
from jaxseg.data.labels import IGNORE_LABEL
from tests.as_user import prepare_with_tfds, run_script

REPO_ROOT = Path(__file__).resolve().parents[1]
VOC_DIR = "VOCdevkit/VOC2012"
SBD_DIR = "benchmark_RELEASE/dataset"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which genuine sample ids play which role in the small archives."""

    voc_train: list[str]
    voc_val: list[str]
    sbd_only: list[str]  # images in the VOC archive with SBD masks only
    test: list[str]

    @property
    def sbd_train(self) -> list[str]:
        """Two SBD-only ids, a VOC val id (to be dropped) and a VOC train id (VOC mask wins)."""
        return [*self.sbd_only[:2], self.voc_val[0], self.voc_train[0]]

    @property
    def sbd_val(self) -> list[str]:
        return [*self.sbd_only[2:], self.voc_val[1]]

    @property
    def train_aug(self) -> set[str]:
        return (set(self.sbd_train) | set(self.sbd_val) | set(self.voc_train)) - set(self.voc_val)


@pytest.fixture(scope="module")
def samples(shared_dir: Path) -> Path:
    return shared_dir / "data" / "voc_samples"


@pytest.fixture(scope="module")
def layout(samples: Path) -> Layout:
    lists = samples / "ImageSets" / "Segmentation"
    train = (lists / "train.txt").read_text().split()
    val = (lists / "val.txt").read_text().split()
    return Layout(
        voc_train=train[:4], voc_val=val[:4], sbd_only=train[4:6] + val[4:6], test=val[6:8]
    )


def _jpeg(samples: Path, image_id: str) -> bytes:
    return (samples / "JPEGImages" / f"{image_id}.jpg").read_bytes()


def _png(samples: Path, image_id: str) -> bytes:
    return (samples / "SegmentationClass" / f"{image_id}.png").read_bytes()


def _palette_indices(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.mode == "P"
    return np.asarray(image)


def _voc_files(samples: Path, layout: Layout) -> dict[str, bytes]:
    files = {}
    for image_id in layout.voc_train + layout.voc_val + layout.sbd_only:
        files[f"{VOC_DIR}/JPEGImages/{image_id}.jpg"] = _jpeg(samples, image_id)
    for image_id in layout.voc_train + layout.voc_val:
        files[f"{VOC_DIR}/SegmentationClass/{image_id}.png"] = _png(samples, image_id)
    for split, ids in (("train", layout.voc_train), ("val", layout.voc_val)):
        files[f"{VOC_DIR}/ImageSets/Segmentation/{split}.txt"] = "".join(
            f"{i}\n" for i in ids
        ).encode()
    return files


def _test_files(samples: Path, layout: Layout) -> dict[str, bytes]:
    files = {f"{VOC_DIR}/JPEGImages/{i}.jpg": _jpeg(samples, i) for i in layout.test}
    files[f"{VOC_DIR}/ImageSets/Segmentation/test.txt"] = "".join(
        f"{i}\n" for i in layout.test
    ).encode()
    return files


def _sbd_mat(labels: np.ndarray) -> bytes:
    """An SBD-style class file: struct GTcls with Segmentation, Boundaries, CategoriesPresent."""
    boundaries = np.empty((20, 1), dtype=object)
    for c in range(20):
        region = labels == c + 1
        boundaries[c, 0] = scipy.sparse.csc_matrix(region & ~ndimage.binary_erosion(region))
    present = np.unique(labels[(labels > 0) & (labels < 21)]).astype(np.uint8)
    buffer = io.BytesIO()
    scipy.io.savemat(
        buffer,
        {
            "GTcls": {
                "Segmentation": labels.astype(np.uint8),
                "Boundaries": boundaries,
                "CategoriesPresent": present,
            }
        },
    )
    return buffer.getvalue()


def _sbd_files(samples: Path, layout: Layout, labels: dict[str, np.ndarray]) -> dict[str, bytes]:
    files = {f"{SBD_DIR}/cls/{i}.mat": _sbd_mat(m) for i, m in labels.items()}
    files.update({f"{SBD_DIR}/img/{i}.jpg": _jpeg(samples, i) for i in labels})
    for split, ids in (("train", layout.sbd_train), ("val", layout.sbd_val)):
        files[f"{SBD_DIR}/{split}.txt"] = "".join(f"{i}\n" for i in ids).encode()
    return files


def _sbd_labels(samples: Path, layout: Layout) -> dict[str, np.ndarray]:
    """SBD masks for the SBD ids: the genuine VOC labels without void (SBD has no 255)."""
    labels = {}
    for image_id in sorted(set(layout.sbd_train) | set(layout.sbd_val)):
        indices = _palette_indices(_png(samples, image_id))
        labels[image_id] = np.where(indices == 255, 0, indices).astype(np.uint8)
    return labels


def _write_tar(path: Path, files: dict[str, bytes], mode: str = "w") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory, samples: Path, layout: Layout) -> Path:
    """All three archives, as downloaded."""
    root = tmp_path_factory.mktemp("manual")
    _write_tar(root / "VOCtrainval_11-May-2012.tar", _voc_files(samples, layout))
    _write_tar(root / "VOC2012test.tar", _test_files(samples, layout))
    sbd = _sbd_files(samples, layout, _sbd_labels(samples, layout))
    _write_tar(root / "benchmark.tgz", sbd, mode="w:gz")
    return root


@pytest.fixture(scope="module")
def sbd_reference(tmp_path_factory, manual_dir: Path) -> dict[str, np.ndarray]:
    """SBD masks as torchvision's SBDataset reads them from the extracted archive."""
    from torchvision.datasets import SBDataset

    root = tmp_path_factory.mktemp("sbd_extracted")
    with tarfile.open(manual_dir / "benchmark.tgz") as tar:
        tar.extractall(root, filter="data")
    masks = {}
    for split in ("train", "val"):
        dataset = SBDataset(root / SBD_DIR, image_set=split, mode="segmentation")
        boundaries = SBDataset(root / SBD_DIR, image_set=split, mode="boundaries")
        for index, mask_path in enumerate(dataset.masks):
            image, target = dataset[index]
            assert boundaries[index][1].shape == (20, image.height, image.width)
            masks[Path(mask_path).stem] = np.asarray(target)
    return masks


@pytest.fixture(scope="module")
def prepared_2012(tmp_path_factory, manual_dir: Path) -> Path:
    """`voc_segmentation/2012` via the CLI, from a manual dir without the test archive."""
    only_voc = tmp_path_factory.mktemp("manual_voc")
    (only_voc / "VOCtrainval_11-May-2012.tar").symlink_to(
        manual_dir / "VOCtrainval_11-May-2012.tar"
    )
    data_dir = tmp_path_factory.mktemp("tfds_2012")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxseg.data",
            "prepare",
            "voc_segmentation/2012",
            f"--manual_dir={only_voc}",
            f"--data_dir={data_dir}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "train 4, val 4 examples" in result.stdout
    return data_dir


@pytest.fixture(scope="module")
def prepared_aug(tmp_path_factory, manual_dir: Path) -> Path:
    data_dir = tmp_path_factory.mktemp("tfds_aug")
    prepare_with_tfds("voc_segmentation/2012_aug", data_dir, manual_dir)
    return data_dir


def _records(name: str, data_dir: Path) -> dict[str, list[dict]]:
    """Every prepared example per split, with the image left as its stored bytes."""
    sources = tfds.data_source(
        name,
        data_dir=data_dir,
        download=False,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    return {split: [source[i] for i in range(len(source))] for split, source in sources.items()}


def _file_name(record: dict) -> str:
    return record["file_name"].decode()


def test_2012_holds_the_genuine_images_and_masks(prepared_2012, samples, layout):
    records = _records("voc_segmentation/2012", prepared_2012)
    assert set(records) == {"train", "val"}  # no VOC2012test.tar: no test split
    for split, ids in (("train", layout.voc_train), ("val", layout.voc_val)):
        assert sorted(_file_name(r) for r in records[split]) == sorted(ids)
        for record in records[split]:
            image_id = _file_name(record)
            assert record["image"] == _jpeg(samples, image_id)  # JPEG stored byte for byte
            expected = _palette_indices(_png(samples, image_id))
            np.testing.assert_array_equal(record["segmentation_mask"][..., 0], expected)


def test_2012_aug_is_sbd_plus_voc_train_minus_voc_val(prepared_aug, samples, layout, sbd_reference):
    records = _records("voc_segmentation/2012_aug", prepared_aug)
    train = {_file_name(r): r for r in records["train"]}
    val = {_file_name(r): r for r in records["val"]}
    assert set(train) == layout.train_aug
    assert len(train) == len(records["train"]) == 8
    assert set(val) == set(layout.voc_val)
    assert not set(train) & set(val)
    for image_id, record in train.items():
        assert record["image"] == _jpeg(samples, image_id)
        mask = record["segmentation_mask"][..., 0]
        if image_id in layout.voc_train:  # VOC's mask, with its 255 boundaries, wins over SBD's
            np.testing.assert_array_equal(mask, _palette_indices(_png(samples, image_id)))
        else:
            np.testing.assert_array_equal(mask, sbd_reference[image_id])
    overlap = layout.voc_train[0]
    assert overlap in sbd_reference and (train[overlap]["segmentation_mask"] == 255).any()


def test_test_split_has_all_ignore_masks(prepared_aug, samples, layout):
    records = _records("voc_segmentation/2012_aug", prepared_aug)["test"]
    assert sorted(_file_name(r) for r in records) == sorted(layout.test)
    for record in records:
        assert record["image"] == _jpeg(samples, _file_name(record))
        height, width = Image.open(io.BytesIO(record["image"])).size[::-1]
        assert record["segmentation_mask"].shape == (height, width, 1)
        assert (record["segmentation_mask"] == IGNORE_LABEL).all()


def test_load_source_decodes_prepared_voc(prepared_aug, samples):
    source = data.load_source("voc_segmentation/2012_aug", "val", data_dir=str(prepared_aug))
    assert source.num_classes == 21 and source.class_names[0] == "background"
    example = source[0]
    image = np.asarray(Image.open(io.BytesIO(_jpeg(samples, example["file_name"]))))
    np.testing.assert_array_equal(example["image"], image)
    assert example["segmentation_mask"].shape == image.shape[:2]


def test_unprepared_voc_says_how_to_prepare(tmp_path):
    with pytest.raises(data.DatasetNotPreparedError) as error:
        data.load_source("voc_segmentation/2012_aug", "train", data_dir=str(tmp_path))
    message = str(error.value)
    for text in (
        "VOCtrainval_11-May-2012.tar",
        "benchmark.tgz",
        "http",
        "python -m jaxseg.data prepare voc_segmentation/2012_aug --manual_dir=",
    ):
        assert text in message


def test_train_cli_stops_at_once_without_voc(tmp_path):
    result = run_script(
        "train.py",
        "--config=pspnet",
        f"--workdir={tmp_path / 'run'}",
        f"--config.data_dir={tmp_path / 'empty'}",
    )
    assert result.returncode != 0
    assert "python -m jaxseg.data prepare voc_segmentation/2012_aug" in result.stderr
    assert "Traceback" not in result.stderr


def _truncate_image(files, layout):
    name = f"{VOC_DIR}/JPEGImages/{layout.voc_train[1]}.jpg"
    files[name] = files[name][: len(files[name]) // 2]
    return name


def _shrink_mask(files, layout):
    name = f"{VOC_DIR}/SegmentationClass/{layout.voc_train[1]}.png"
    image = Image.open(io.BytesIO(files[name]))
    buffer = io.BytesIO()
    image.crop((0, 0, image.width - 7, image.height)).save(buffer, format="PNG")
    files[name] = buffer.getvalue()
    return name


def _bad_label_in_val(files, layout):
    name = f"{VOC_DIR}/SegmentationClass/{layout.voc_val[-1]}.png"  # after train is written
    image = Image.open(io.BytesIO(files[name]))
    indices = np.asarray(image).copy()
    indices[10:12, 10:12] = 21
    bad = Image.fromarray(indices, mode="P")
    bad.putpalette(image.getpalette())
    buffer = io.BytesIO()
    bad.save(buffer, format="PNG")
    files[name] = buffer.getvalue()
    return name


def _remove_listed_image(files, layout):
    name = f"{VOC_DIR}/JPEGImages/{layout.voc_val[2]}.jpg"
    del files[name]
    return name


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate_image, "unreadable or truncated image"),
        (_shrink_mask, "but its image"),
        (_bad_label_in_val, r"label values \[21\]"),
        (_remove_listed_image, "is missing"),
    ],
)
def test_bad_input_fails_naming_the_file(tmp_path, samples, layout, damage, message):
    files = _voc_files(samples, layout)
    name = damage(files, layout)
    _write_tar(tmp_path / "manual" / "VOCtrainval_11-May-2012.tar", files)
    builder = tfds.builder(
        "voc_segmentation/2012", data_dir=tmp_path / "tfds", file_format="array_record"
    )
    with pytest.raises(voc.VocDataError, match=message) as error:
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
        )
    assert f"VOCtrainval_11-May-2012.tar: {name}" in str(error.value)
    assert not builder.is_prepared()


def test_rerun_after_a_failure_prepares(tmp_path, samples, layout):
    files = _voc_files(samples, layout)
    _bad_label_in_val(files, layout)
    archive = _write_tar(tmp_path / "manual" / "VOCtrainval_11-May-2012.tar", files)
    with pytest.raises(voc.VocDataError):
        prepare_with_tfds("voc_segmentation/2012", tmp_path / "tfds", tmp_path / "manual")
    assert not tfds.builder("voc_segmentation/2012", data_dir=tmp_path / "tfds").is_prepared()
    _write_tar(archive, _voc_files(samples, layout))
    builder = prepare_with_tfds("voc_segmentation/2012", tmp_path / "tfds", tmp_path / "manual")
    assert builder.is_prepared()
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == {"train": 4, "val": 4}


def test_bad_sbd_mask_fails_naming_the_mat_file(tmp_path, samples, layout):
    labels = _sbd_labels(samples, layout)
    bad_id = layout.sbd_only[0]
    labels[bad_id] = labels[bad_id].copy()
    labels[bad_id][0, 0] = 40
    _write_tar(tmp_path / "manual" / "VOCtrainval_11-May-2012.tar", _voc_files(samples, layout))
    _write_tar(tmp_path / "manual" / "benchmark.tgz", _sbd_files(samples, layout, labels), "w:gz")
    with pytest.raises(voc.VocDataError, match=rf"benchmark.tgz: {SBD_DIR}/cls/{bad_id}.mat"):
        prepare_with_tfds("voc_segmentation/2012_aug", tmp_path / "tfds", tmp_path / "manual")


def test_truncated_archive_is_reported(tmp_path, manual_dir):
    archive = tmp_path / "manual" / "VOCtrainval_11-May-2012.tar"
    archive.parent.mkdir()
    content = (manual_dir / archive.name).read_bytes()
    archive.write_bytes(content[: len(content) // 2])
    with pytest.raises(
        voc.VocDataError,
        match=r"2012.tar: not a readable .*\(unexpected end of data\); download it again",
    ):
        prepare_with_tfds("voc_segmentation/2012", tmp_path / "tfds", tmp_path / "manual")


def test_archive_missing_from_the_manual_dir_is_named(tmp_path, manual_dir):
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "VOCtrainval_11-May-2012.tar").symlink_to(
        manual_dir / "VOCtrainval_11-May-2012.tar"
    )
    with pytest.raises(FileNotFoundError, match="benchmark.tgz is not in the manual dir"):
        prepare_with_tfds("voc_segmentation/2012_aug", tmp_path / "tfds", tmp_path / "manual")


def test_greyscale_image_is_stored_as_rgb(samples, layout):
    buffer = io.BytesIO()
    Image.open(io.BytesIO(_jpeg(samples, layout.voc_train[0]))).convert("L").save(buffer, "JPEG")
    stored, size = voc.checked_image(buffer.getvalue(), "grey.jpg")
    grey = np.asarray(Image.open(buffer))
    rgb = np.asarray(Image.open(io.BytesIO(stored)))
    assert size == grey.shape and rgb.shape == (*grey.shape, 3)
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=-1))


@pytest.fixture
def http_server(manual_dir: Path):
    """Serves the manual dir over HTTP on localhost, standing in for the official hosts."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=manual_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture
def no_progress_bars():
    """TFDS's switch, which the builder's own progress bars follow too."""
    tfds.disable_progress_bar()
    yield
    tfds.enable_progress_bar()


def test_without_manual_dir_the_archive_is_downloaded(
    tmp_path, http_server, monkeypatch, no_progress_bars
):
    url = f"{http_server}/VOCtrainval_11-May-2012.tar"
    monkeypatch.setattr(voc, "VOC_TRAINVAL", dataclasses.replace(voc.VOC_TRAINVAL, url=url))
    builder = prepare_with_tfds("voc_segmentation/2012", tmp_path / "tfds", manual_dir=None)
    assert {s: i.num_examples for s, i in builder.info.splits.items()} == {"train": 4, "val": 4}


def test_cli_prepares_shapes_and_reports_errors(tmp_path, capsys):
    cli_main(["prepare", "shapes/tiny", f"--data_dir={tmp_path}"])
    assert "train 24, val 8 examples" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--manual_dir .* is not a folder"):
        cli_main(["prepare", "voc_segmentation/2012", f"--manual_dir={tmp_path / 'nowhere'}"])
    with pytest.raises(SystemExit, match="Unknown dataset 'voc'"):
        cli_main(["prepare", "voc"])
