"""Training input pipeline throughput (images/s) with 0, 1, 2, ... grain worker processes.

    python benchmarks/pipeline.py [--workers=0,1,2] [--batches=40] [--repeats=3]
    python benchmarks/pipeline.py --frames=cityscapes [--cityscapes_frames=24]

Prepares a small `voc_segmentation/2012` in a temporary folder from the 100 genuine VOC 2012
images and masks in shared/data/voc_samples, by the same route as the full dataset: the samples
are packed into a tar with the layout of VOCtrainval_11-May-2012.tar, which the builder reads
from its manual dir. Then it times `jaxseg.data.pipeline.train_dataset` on train+val
(decode JPEG/PNG, random scale 0.5-2.0, normalise, pad with 255 to 513, random crop 513, flip,
batch) after a warm-up. Besides wall-clock images/s it reports CPU time per image (this
process and its workers), which other load on the machine does not inflate, and from it the
worker processes (cores) that feed an accelerator consuming `--target_rates` images/s.

`--frames=cityscapes` times Cityscapes-size frames instead: the VOC samples enlarged to
2048x1024 RGB PNGs (label ids from their masks), packed into the two Cityscapes zips and
prepared by the `cityscapes` builder; the pipeline decodes each 2048x1024 PNG, scales it by
0.5-2.0 and crops 512x1024, the `pspnet_cityscapes` recipe.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tarfile
import tempfile
import time
import zipfile
from dataclasses import astuple
from pathlib import Path

import numpy as np
import psutil
import tensorflow_datasets as tfds
from absl import app, flags
from PIL import Image

from jaxseg import data
from jaxseg.data import cityscapes, pipeline, voc
from jaxseg.data.images import encode_png

REPO_ROOT = Path(__file__).resolve().parents[1]
CROP_SIZES = {"voc": 513, "cityscapes": (512, 1024)}
SCALE_RANGE = (0.5, 2.0)
CITYSCAPES_FRAME = (1024, 2048)  # height, width

_WORKERS = flags.DEFINE_list("workers", ["0", "1", "2"], "Grain worker counts to time.")
_FRAMES = flags.DEFINE_enum(
    "frames", "voc", sorted(CROP_SIZES), "VOC images, or Cityscapes-size 2048x1024 frames."
)
_CITYSCAPES_FRAMES = flags.DEFINE_integer(
    "cityscapes_frames", 24, "How many 2048x1024 frames to prepare for --frames=cityscapes."
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Images per batch.")
_BATCHES = flags.DEFINE_integer("batches", 40, "Timed batches per run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs per worker count.")
_TARGET_RATES = flags.DEFINE_list(
    "target_rates", ["5", "25", "50", "100"], "Accelerator images/s to size the workers for."
)


def _samples_dir() -> Path:
    shared = Path(os.environ.get("JAXSEG_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return shared / "data" / "voc_samples"


def prepare_samples(samples: Path, root: Path) -> data.Source:
    """Packs `samples` like the VOC archive, prepares it through the manual dir, opens it."""
    manual_dir = root / "manual"
    manual_dir.mkdir()
    with tarfile.open(manual_dir / voc.VOC_TRAINVAL.file_name, "w") as tar:
        for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
            tar.add(samples / folder, arcname=f"{voc.VOC_ROOT}/{folder}")
    builder = data.get_builder("voc_segmentation/2012", str(root / "tfds"))
    builder.download_and_prepare(
        file_format=data.FILE_FORMAT,
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)),
    )
    return data.load_source("voc_segmentation/2012", "train+val", str(root / "tfds"))


def prepare_cityscapes_frames(samples: Path, root: Path, count: int) -> data.Source:
    """The first `count` VOC samples enlarged to 2048x1024 PNG frames, packed as Cityscapes'
    two zips (VOC class k as label id `PREDICTION_IDS[k % 19]`; the last frame as val),
    prepared, opened as train."""
    manual_dir = root / "manual"
    manual_dir.mkdir()
    ids = (samples / "ImageSets" / "Segmentation" / "trainval.txt").read_text().split()[:count]
    label_ids = np.zeros(256, np.uint8)  # VOC's 255 (boundary) -> id 0 (unlabeled)
    label_ids[: voc.NUM_CLASSES] = cityscapes.PREDICTION_IDS[np.arange(voc.NUM_CLASSES) % 19]
    size = CITYSCAPES_FRAME[::-1]  # PIL's (width, height)
    with (
        zipfile.ZipFile(manual_dir / cityscapes.IMAGES.file_name, "w") as images,
        zipfile.ZipFile(manual_dir / cityscapes.LABELS.file_name, "w") as labels,
    ):
        for index, image_id in enumerate(ids):
            frame = f"voc_{index:06d}_000019"
            split = "val" if index == len(ids) - 1 else "train"  # the builder needs a val split
            image = Image.open(samples / "JPEGImages" / f"{image_id}.jpg").convert("RGB")
            mask = np.asarray(Image.open(samples / "SegmentationClass" / f"{image_id}.png"))
            mask = Image.fromarray(label_ids[mask]).resize(size, Image.Resampling.NEAREST)
            images.writestr(
                f"leftImg8bit/{split}/voc/{frame}{cityscapes.IMAGE_SUFFIX}",
                encode_png(np.asarray(image.resize(size, Image.Resampling.BILINEAR))),
            )
            labels.writestr(
                f"gtFine/{split}/voc/{frame}{cityscapes.LABEL_SUFFIX}",
                encode_png(np.asarray(mask)),
            )
    data.prepare("cityscapes", str(root / "tfds"), str(manual_dir))
    return data.load_source("cityscapes", "train", str(root / "tfds"))


@dataclasses.dataclass(frozen=True)
class Run:
    """One timed run: wall-clock images/s and CPU milliseconds per image."""

    images_per_s: float
    main_cpu_ms: float
    worker_cpu_ms: float


def _children_cpu_s() -> float:
    return sum(sum(child.cpu_times()[:2]) for child in psutil.Process().children(recursive=True))


def time_pipeline(
    source: data.Source, crop_size, workers: int, batch_size: int, batches: int
) -> Run:
    """Times `batches` batches of the training pipeline, after a warm-up of 3."""
    dataset = pipeline.train_dataset(
        source,
        global_batch_size=batch_size,
        crop_size=crop_size,
        scale_range=SCALE_RANGE,
        flip=True,
        photometric=False,
        seed=0,
        num_workers=workers,
    )
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu_s()
    for _ in range(batches):
        batch = next(iterator)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    children = _children_cpu_s() - children
    assert batch["image"].shape == (batch_size, *pipeline.as_size(crop_size), 3)
    images = batches * batch_size
    return Run(images / wall, 1e3 * cpu / images, 1e3 * children / images)


def stage_cpu_ms(source: data.Source, crop_size) -> tuple[float, float]:
    """CPU milliseconds per image, in this process, to read + decode and to augment."""
    augment = pipeline.TrainAugment(crop_size, SCALE_RANGE, flip=True)
    rng = np.random.default_rng(0)
    start = time.process_time()
    examples = [source[i] for i in range(len(source))]
    decode = time.process_time() - start
    start = time.process_time()
    for example in examples:
        augment(example, rng)
    return 1e3 * decode / len(examples), 1e3 * (time.process_time() - start) / len(examples)


def main(argv: list[str]) -> None:
    """Prints markdown tables: images/s and CPU per image by worker count; workers needed."""
    del argv
    tfds.disable_progress_bar()
    with tempfile.TemporaryDirectory() as root:
        crop_size = CROP_SIZES[_FRAMES.value]
        if _FRAMES.value == "cityscapes":
            source = prepare_cityscapes_frames(_samples_dir(), Path(root), _CITYSCAPES_FRAMES.value)
            described = "VOC images enlarged to 2048x1024 frames, crop 512x1024"
        else:
            source = prepare_samples(_samples_dir(), Path(root))
            described = "genuine VOC images, crop 513"
        decode_ms, augment_ms = stage_cpu_ms(source, crop_size)
        print(f"{len(source)} {described}; {os.cpu_count()} CPU cores")
        print(
            f"CPU per image in one process: read + decode {decode_ms:.1f} ms, "
            f"scale + normalise + pad + crop + flip {augment_ms:.1f} ms\n"
        )
        print("| grain workers | images/s (median) | runs | CPU ms/image: main + workers |")
        print("| --- | --- | --- | --- |")
        worker_cpu_ms = decode_ms + augment_ms
        for workers in map(int, _WORKERS.value):
            runs = [
                time_pipeline(source, crop_size, workers, _BATCH_SIZE.value, _BATCHES.value)
                for _ in range(_REPEATS.value)
            ]
            rates = ", ".join(f"{run.images_per_s:.1f}" for run in runs)
            median = Run(
                *(statistics.median(values) for values in zip(*map(astuple, runs), strict=True))
            )
            if workers:
                worker_cpu_ms = median.worker_cpu_ms
            print(
                f"| {workers} | {median.images_per_s:.1f} | {rates} | "
                f"{median.main_cpu_ms:.1f} + {median.worker_cpu_ms:.1f} |"
            )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end (1, 5, 15 min; other users' processes count too): {load}")
    print(f"\nWorkers (free cores) to feed one accelerator, at {worker_cpu_ms:.1f} CPU ms/image:")
    print("| accelerator images/s | workers |")
    print("| --- | --- |")
    for rate in map(float, _TARGET_RATES.value):
        print(f"| {rate:g} | {math.ceil(rate * worker_cpu_ms / 1e3)} |")


if __name__ == "__main__":
    app.run(main)
