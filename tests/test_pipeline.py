"""Input pipeline: augmentation geometry, determinism, eval padding and per-process sharding."""

import itertools

import numpy as np
from PIL import Image

from jaxseg.data import pipeline


class FakeSource:
    """A few examples whose pixels encode their position, so crops can be traced back."""

    def __init__(self, sizes=((40, 50), (33, 27), (64, 64))):
        self.examples = []
        for i, (h, w) in enumerate(sizes):
            image = np.zeros((h, w, 3), np.uint8)
            image[..., 0] = np.arange(w)[None, :] % 256
            image[..., 1] = np.arange(h)[:, None] % 256
            image[..., 2] = 10 * i
            mask = ((np.arange(h)[:, None] + np.arange(w)[None, :]) % 21).astype(np.uint8)
            self.examples.append({"image": image, "segmentation_mask": mask, "file_name": f"ex{i}"})

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index):
        return self.examples[index]


def _take(dataset, count):
    return list(itertools.islice(iter(dataset), count))


def test_train_batches_have_crop_shape_and_valid_labels():
    batches = _take(pipeline.train_dataset(FakeSource(), global_batch_size=2, crop_size=48), 4)
    for batch in batches:
        assert batch["image"].shape == (2, 48, 48, 3) and batch["image"].dtype == np.float32
        assert batch["label"].shape == (2, 48, 48) and batch["label"].dtype == np.int32
        assert set(np.unique(batch["label"])) <= set(range(21)) | {255}
    # Images smaller than the crop are padded with the ignore label.
    assert any((b["label"] == 255).any() for b in batches)


def test_train_pipeline_is_deterministic_and_seed_dependent():
    def first(seed):
        dataset = pipeline.train_dataset(FakeSource(), global_batch_size=3, crop_size=32, seed=seed)
        return _take(dataset, 2)

    a, b, c = first(0), first(0), first(1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["image"], y["image"])
    assert not all(np.array_equal(x["label"], z["label"]) for x, z in zip(a, c, strict=True))


def test_augment_keeps_image_and_label_aligned():
    source = FakeSource(sizes=((60, 80),))
    augment = pipeline.TrainAugment(crop_size=40, scale_range=(1.0, 1.0), flip=True)
    for seed in range(6):
        out = augment(source[0], np.random.default_rng(seed))
        pixels = pipeline.denormalize(out["image"])
        # Label = (row + col) % 21 and the red channel = col, green = row: they must agree.
        expected = (pixels[..., 0].astype(int) + pixels[..., 1].astype(int)) % 21
        np.testing.assert_array_equal(out["label"], expected)


def test_normalize_round_trips():
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pipeline.denormalize(pipeline.normalize(image)), image)


def test_eval_batches_pad_with_ignore_and_mark_padding_invalid():
    source = FakeSource()
    batches = list(pipeline.eval_dataset(source, batch_size=2, pad_size=(64, 72)))
    assert len(batches) == 2
    valid = np.concatenate([b["valid"] for b in batches])
    np.testing.assert_array_equal(valid, [True, True, True, False])
    first = batches[0]
    assert first["image"].shape == (2, 64, 72, 3)
    assert (first["label"][0, 40:] == 255).all() and (first["label"][0, :, 50:] == 255).all()
    np.testing.assert_array_equal(first["label"][0, :40, :50], source[0]["segmentation_mask"])
    assert list(first["file_name"]) == ["ex0", "ex1"]


def test_eval_shrinks_images_larger_than_pad_size_keeping_aspect():
    source = FakeSource()
    batches = list(pipeline.eval_dataset(source, batch_size=1, pad_size=(32, 32)))
    sizes = [(int(b["height"][0]), int(b["width"][0])) for b in batches]
    assert sizes == [(26, 32), (32, 26), (32, 32)]  # 40x50, 33x27 and 64x64 fitted to 32x32
    first = batches[0]
    expected = pipeline._resize(source[0]["segmentation_mask"], (26, 32), Image.Resampling.NEAREST)
    np.testing.assert_array_equal(first["label"][0, :26, :32], expected)
    assert (first["label"][0, 26:] == 255).all()


def test_eval_size_scales_the_short_side_then_fits_the_pad():
    assert pipeline.eval_size(512, 683, (1024, 1024), short_side=512) == (512, 683)
    assert pipeline.eval_size(364, 500, (1024, 1024), short_side=512) == (512, 703)
    assert pipeline.eval_size(1000, 4000, (1024, 1024), short_side=512) == (256, 1024)
    assert pipeline.eval_size(1024, 2048, (1024, 2048)) == (1024, 2048)


def test_non_square_crops():
    dataset = pipeline.train_dataset(FakeSource(), global_batch_size=2, crop_size=(24, 40))
    batch = _take(dataset, 1)[0]
    assert batch["image"].shape == (2, 24, 40, 3) and batch["label"].shape == (2, 24, 40)


def _dominated(label: np.ndarray, ratio: float) -> bool:
    counts = np.bincount(label[label != 255].ravel())
    counts = counts[counts > 0]
    return len(counts) < 2 or counts.max() / counts.sum() >= ratio


def test_cat_max_ratio_redraws_crops_one_class_dominates():
    mask = np.zeros((100, 100), np.uint8)
    mask[40:60, 40:60] = 1  # one small object on a uniform background
    source = [
        {
            "image": np.zeros((100, 100, 3), np.uint8),
            "segmentation_mask": mask,
            "file_name": "object",
        }
    ]

    def dominated_share(ratio):
        augment = pipeline.TrainAugment(crop_size=24, scale_range=(1.0, 1.0), cat_max_ratio=ratio)
        crops = [augment(source[0], np.random.default_rng(seed))["label"] for seed in range(200)]
        return np.mean([_dominated(crop, 0.75) for crop in crops])

    assert dominated_share(1.0) > 0.8  # most random crops hold background only
    assert dominated_share(0.75) < 0.5  # redrawn up to 10 times: most now hold the object


def test_eval_indices_split_evenly_over_processes(monkeypatch):
    shards = []
    for process in range(3):
        monkeypatch.setattr(pipeline.jax, "process_count", lambda: 3)
        monkeypatch.setattr(pipeline.jax, "process_index", lambda p=process: p)
        shards.append(pipeline.eval_indices(10, global_batch_size=6))
    assert {len(s) for s in shards} == {4}
    real = np.concatenate(shards)
    assert sorted(real[real >= 0].tolist()) == list(range(10))


def test_worker_processes_give_the_same_batches_and_resume_exactly():
    def dataset(workers):
        return pipeline.train_dataset(
            FakeSource(), global_batch_size=2, crop_size=32, seed=3, num_workers=workers
        )

    expected = _take(dataset(0), 4)
    iterator = iter(dataset(1))
    first = [next(iterator) for _ in range(2)]
    state = iterator.get_state()
    resumed = iter(dataset(1))
    resumed.set_state(state)
    rest = [next(resumed) for _ in range(2)]
    for got, want in zip(first + rest, expected, strict=True):
        np.testing.assert_array_equal(got["image"], want["image"])
        np.testing.assert_array_equal(got["label"], want["label"])
