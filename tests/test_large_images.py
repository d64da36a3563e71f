"""Evaluating frames larger than a window: non-square sliding windows, and server PNGs."""

import numpy as np
from PIL import Image

from jaxseg import data
from jaxseg.data import cityscapes
from jaxseg.inference import _sliding_window_logits


def test_non_square_windows_cover_the_frame_and_average_back():
    images = np.random.default_rng(0).normal(size=(2, 20, 50, 3)).astype(np.float32)
    seen = []

    def per_pixel(crop):  # logits that depend on each pixel only: averaging must return them
        seen.append(crop.shape[1:3])
        return crop * 2.0 + 1.0

    logits = _sliding_window_logits(per_pixel, images, window=(8, 16), stride=(6, 12))
    np.testing.assert_allclose(np.asarray(logits), images * 2.0 + 1.0, rtol=1e-6)
    assert set(seen) == {(8, 16)}
    assert len(seen) == 3 * 4  # rows start 0, 6, 12 (flush); columns 0, 12, 24, 34 (flush)


def test_cityscapes_predictions_are_label_id_pngs(tmp_path):
    train_ids = np.arange(19, dtype=np.uint8).reshape(1, 19).repeat(3, axis=0)
    data.save_prediction("cityscapes", train_ids, tmp_path / "frankfurt_000000_000294.png")
    written = Image.open(tmp_path / "frankfurt_000000_000294.png")
    assert written.mode == "L"
    np.testing.assert_array_equal(np.asarray(written), cityscapes.PREDICTION_IDS[train_ids])


def test_other_predictions_stay_voc_palette_pngs(tmp_path):
    labels = np.arange(21, dtype=np.uint8).reshape(3, 7)
    data.save_prediction("voc_segmentation", labels, tmp_path / "a.png")
    written = Image.open(tmp_path / "a.png")
    assert written.mode == "P"
    np.testing.assert_array_equal(np.asarray(written), labels)
