"""Training input pipeline throughput (images/s) with 0, 1, 2, ... grain worker processes.

    python benchmarks/pipeline.py [--workers=0,1,2] [--batches=40] [--repeats=3]

Prepares a small `voc_segmentation/2012` in a temporary folder from the 100 genuine VOC 2012
images and masks in shared/data/voc_samples, by the same route as the full dataset: the samples
are packed into a tar with the layout of VOCtrainval_11-May-2012.tar, which the builder reads
from its manual dir. Then it times `jaxseg.data.pipeline.train_dataset` on train+val
(decode JPEG/PNG, random scale 0.5-2.0, normalise, pad with 255 to 513, random crop 513, flip,
batch) after a warm-up, and the two stages alone in this process: reading + decoding an example,
and augmenting a decoded one.
"""

from __future__ import annotations

import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds
from absl import app, flags

from jaxseg import data
from jaxseg.data import pipeline, voc

REPO_ROOT = Path(__file__).resolve().parents[1]
CROP_SIZE = 513
SCALE_RANGE = (0.5, 2.0)

_WORKERS = flags.DEFINE_list("workers", ["0", "1", "2"], "Grain worker counts to time.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Images per batch.")
_BATCHES = flags.DEFINE_integer("batches", 40, "Timed batches per run.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs per worker count.")


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


def pipeline_rate(source: data.Source, workers: int, batch_size: int, batches: int) -> float:
    """Images/s of the training pipeline over `batches` batches, after a warm-up of 3."""
    dataset = pipeline.train_dataset(
        source,
        global_batch_size=batch_size,
        crop_size=CROP_SIZE,
        scale_range=SCALE_RANGE,
        flip=True,
        photometric=False,
        seed=0,
        num_workers=workers,
    )
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
    elapsed = time.perf_counter() - start
    assert batch["image"].shape == (batch_size, CROP_SIZE, CROP_SIZE, 3)
    return batches * batch_size / elapsed


def stage_times(source: data.Source) -> tuple[float, float]:
    """Mean milliseconds per image to read + decode, and to augment, in this process."""
    augment = pipeline.TrainAugment(CROP_SIZE, SCALE_RANGE, flip=True)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    examples = [source[i] for i in range(len(source))]
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for example in examples:
        augment(example, rng)
    return 1e3 * decode / len(examples), 1e3 * (time.perf_counter() - start) / len(examples)


def main(argv: list[str]) -> None:
    """Prints a markdown table of images/s per worker count (median of the repeats)."""
    del argv
    tfds.disable_progress_bar()
    with tempfile.TemporaryDirectory() as root:
        source = prepare_samples(_samples_dir(), Path(root))
        decode_ms, augment_ms = stage_times(source)
        print(f"{len(source)} genuine VOC images; {os.cpu_count()} CPU cores")
        print(
            f"per image in one process: read + decode {decode_ms:.1f} ms, "
            f"scale + normalise + pad + crop + flip {augment_ms:.1f} ms\n"
        )
        print("| grain workers | images/s (median) | runs |")
        print("| --- | --- | --- |")
        for workers in map(int, _WORKERS.value):
            rates = [
                pipeline_rate(source, workers, _BATCH_SIZE.value, _BATCHES.value)
                for _ in range(_REPEATS.value)
            ]
            runs = ", ".join(f"{rate:.1f}" for rate in rates)
            print(f"| {workers} | {statistics.median(rates):.1f} | {runs} |")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nload average at the end (1, 5, 15 min; other users' processes count too): {load}")


if __name__ == "__main__":
    app.run(main)
