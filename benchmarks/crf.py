"""Dense CRF: jaxseg against pydensecrf on a genuine 375x500 VOC image with 21 labels.

    python benchmarks/crf.py [--iterations=5,10] [--repeats=5]

Both settings: pydensecrf's defaults (Gaussian sxy 3, compat 3; bilateral sxy 80, srgb 13,
compat 10) and DeepLab v2's VOC ones (`jaxseg.crf.DEEPLAB_VOC_CRF`: Gaussian sxy 1, compat 3;
bilateral sxy 67, srgb 3, compat 4). The probabilities are a noisy, smoothed stand-in for a
network's softmax built from the image's genuine mask (the recipe of the stored pydensecrf
fixture). Calls of the two libraries alternate, so both see the same load on the machine.

Reported per setting and iteration count: median wall seconds per call and CPU seconds (this
process, all threads) per call; for jaxseg also the first call (compilation) and a call with
the Gaussian lattice rebuilt (it depends only on the image size and is cached); agreement with
pydensecrf (labels, largest marginal difference); peak memory: the largest rise of the resident
memory in a fresh process making one call (for jaxseg this includes compiling), and for jaxseg
the buffers XLA allocates for the larger of its two compiled steps plus the cached Gaussian
lattice.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import psutil
from absl import app, flags
from PIL import Image

from jaxseg import crf
from jaxseg.crf import lattice, mean_field
from jaxseg.crf.reference import PYDENSECRF_DEFAULTS, network_like_probs, pydensecrf_marginals

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_LABELS = 21
SETTINGS = {
    "pydensecrf defaults": PYDENSECRF_DEFAULTS,
    "DeepLab VOC": crf.DEEPLAB_VOC_CRF,
}

_ITERATIONS = flags.DEFINE_list("iterations", ["5", "10"], "Mean-field iteration counts.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed calls per library, setting and count.")
_IMAGE = flags.DEFINE_string("image", "2007_001154", "VOC id of a 500x375 val sample image.")


def load_example(name: str) -> tuple[np.ndarray, np.ndarray]:
    """A genuine VOC image (H, W, 3) uint8 and network-like probabilities for it."""
    shared = Path(os.environ.get("JAXSEG_SHARED_DIR", REPO_ROOT.parent / "shared"))
    root = shared / "data" / "voc_samples"
    image = np.array(Image.open(root / "JPEGImages" / f"{name}.jpg").convert("RGB"))
    mask = np.asarray(Image.open(root / "SegmentationClass" / f"{name}.png"))
    return image, network_like_probs(mask, seed=0, num_classes=NUM_LABELS)


def run_jaxseg(image: np.ndarray, probs: np.ndarray, iterations: int, settings: dict):
    """jaxseg's marginals, waited for."""
    return np.asarray(crf.dense_crf(image, probs, iterations=iterations, **settings))


def _timed(call: Callable[[], object]) -> tuple[float, float, object]:
    """Wall and CPU seconds of one call, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _peak_rss_rise(library: str, inputs: Path, iterations: int, setting: str, queue) -> None:
    """In a fresh process: the largest rise of the resident memory (MiB) during one call,
    sampled every millisecond."""
    with np.load(inputs) as arrays:
        image, probs = arrays["image"], arrays["probs"]
    run = pydensecrf_marginals if library == "pydensecrf" else run_jaxseg
    process = psutil.Process()
    baseline = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.001):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    run(image, probs, iterations, SETTINGS[setting])
    done.set()
    sampler.join()
    queue.put((max(peak, process.memory_info().rss) - baseline) / 2**20)


def peak_rss_rise(library: str, image, probs, iterations: int, setting: str) -> float:
    """`_peak_rss_rise` in a spawned process, given the inputs through a file so that making
    them does not set the baseline peak."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "inputs.npz"
        np.savez(inputs, image=image, probs=probs)
        process = context.Process(
            target=_peak_rss_rise, args=(library, inputs, iterations, setting, queue)
        )
        process.start()
        rise = queue.get()
        process.join()
    return rise


def xla_buffer_mib(image: np.ndarray, probs: np.ndarray, iterations: int, settings: dict) -> float:
    """MiB of arguments, outputs and temporaries of the larger of jaxseg's two compiled steps
    (lattice entries; inference), plus the cached Gaussian lattice."""
    scales, compat, count = mean_field._settings(iterations, **settings)
    gaussian = mean_field._gaussian_lattice(image.shape[0], image.shape[1], scales.gaussian_sxy)
    entries = mean_field._bilateral_entries(image, scales)
    capacity = lattice.lattice_capacity(entries.num_points, entries.first.shape[0])
    steps = [
        mean_field._bilateral_entries.lower(image, scales),
        mean_field._infer.lower(probs, entries, gaussian, compat, count, scales, capacity),
    ]
    totals = []
    for step in steps:
        memory = step.compile().memory_analysis()
        totals.append(
            memory.argument_size_in_bytes
            + memory.output_size_in_bytes
            + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes
        )
    cached = sum(leaf.nbytes for leaf in jax.tree_util.tree_leaves(gaussian))
    return (max(totals) + cached) / 2**20


def benchmark(name: str, setting: str, iterations: int, repeats: int) -> dict:
    """One row of the results table."""
    settings = SETTINGS[setting]
    image, probs = load_example(name)
    first, _, _ = _timed(lambda: run_jaxseg(image, probs, iterations, settings))
    times = {"pydensecrf": [], "jaxseg": [], "jaxseg, Gaussian lattice rebuilt": []}
    cpu = {key: [] for key in times}
    for _ in range(repeats):
        wall, used, expected = _timed(
            lambda: pydensecrf_marginals(image, probs, iterations, settings)
        )
        times["pydensecrf"].append(wall)
        cpu["pydensecrf"].append(used)
        wall, used, ours = _timed(lambda: run_jaxseg(image, probs, iterations, settings))
        times["jaxseg"].append(wall)
        cpu["jaxseg"].append(used)
        mean_field._gaussian_lattice.cache_clear()
        wall, used, _ = _timed(lambda: run_jaxseg(image, probs, iterations, settings))
        times["jaxseg, Gaussian lattice rebuilt"].append(wall)
        cpu["jaxseg, Gaussian lattice rebuilt"].append(used)
    return {
        "setting": setting,
        "iterations": iterations,
        "wall": {key: statistics.median(value) for key, value in times.items()},
        "cpu": {key: statistics.median(value) for key, value in cpu.items()},
        "first_call": first,
        "agreement": float(np.mean(ours.argmax(-1) == expected.argmax(-1))),
        "max_difference": float(np.abs(ours - expected).max()),
        "rss_pydensecrf": peak_rss_rise("pydensecrf", image, probs, iterations, setting),
        "rss_jaxseg": peak_rss_rise("jaxseg", image, probs, iterations, setting),
        "xla_buffers": xla_buffer_mib(image, probs, iterations, settings),
    }


def markdown(rows: list[dict], shape: tuple[int, ...]) -> str:
    """The results as a markdown table."""
    lines = [
        f"Image {shape[1]}x{shape[0]}, {NUM_LABELS} labels; median of the timed calls, wall "
        "seconds (CPU seconds of all threads in brackets).",
        "",
        "| setting | iters | pydensecrf | jaxseg | jaxseg, Gaussian lattice rebuilt "
        "| jaxseg first call (compile) | labels agree | max diff | RSS rise, one call in a "
        "fresh process, pydensecrf / jaxseg (MiB) | jaxseg XLA buffers (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        timing = [
            f"{row['wall'][key]:.3f} ({row['cpu'][key]:.3f})"
            for key in ("pydensecrf", "jaxseg", "jaxseg, Gaussian lattice rebuilt")
        ]
        lines.append(
            f"| {row['setting']} | {row['iterations']} | {' | '.join(timing)} "
            f"| {row['first_call']:.1f} | {row['agreement']:.4%} | {row['max_difference']:.1e} "
            f"| {row['rss_pydensecrf']:.0f} / {row['rss_jaxseg']:.0f} "
            f"| {row['xla_buffers']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    del argv
    image, _ = load_example(_IMAGE.value)
    rows = [
        benchmark(_IMAGE.value, setting, int(iterations), _REPEATS.value)
        for setting in SETTINGS
        for iterations in _ITERATIONS.value
    ]
    print(markdown(rows, image.shape))


if __name__ == "__main__":
    app.run(main)
