"""Dense CRF against pydensecrf: its stored outputs, and pydensecrf run live on VOC images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxseg import crf
from jaxseg.crf import hash_table
from jaxseg.crf.reference import PYDENSECRF_DEFAULTS, network_like_probs, pydensecrf_marginals

CROP = (200, 250)


def _assert_matches(ours, reference, outliers=0.0):
    """The acceptance criterion: labels agree on >= 99.5% of pixels, marginals within 1e-3
    (on all but a fraction `outliers` of the pixels, which stay within 1e-2)."""
    ours, reference = np.asarray(ours), np.asarray(reference)
    agreement = np.mean(ours.argmax(-1) == reference.argmax(-1))
    assert agreement >= 0.995, f"labels agree on only {agreement:.4%} of pixels"
    error = np.abs(ours - reference).max(-1)
    assert np.mean(error > 1e-3) <= outliers, f"{np.sum(error > 1e-3)} pixels off by > 1e-3"
    assert error.max() <= (1e-2 if outliers else 1e-3), f"a marginal is off by {error.max():.3g}"


def _pydensecrf(image, probs, iterations, settings):
    """pydensecrf's marginals; the test is skipped where pydensecrf is not installed."""
    pytest.importorskip("pydensecrf.densecrf")
    return pydensecrf_marginals(image, probs, iterations, settings)


@pytest.fixture(scope="module")
def reference(shared_dir):
    """pydensecrf's stored marginals after 5 and 10 iterations, with their inputs."""
    return dict(np.load(shared_dir / "fixtures" / "densecrf_reference.npz"))


@pytest.fixture(scope="module")
def voc_crops(shared_dir):
    """Three genuine VOC val images with network-like probabilities from their masks."""
    root = shared_dir / "data" / "voc_samples"
    ids = (root / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[:3]
    crops = []
    for seed, name in enumerate(ids):
        image = np.asarray(Image.open(root / "JPEGImages" / f"{name}.jpg").convert("RGB"))
        mask = np.asarray(Image.open(root / "SegmentationClass" / f"{name}.png"))
        top, left = (image.shape[0] - CROP[0]) // 2, (image.shape[1] - CROP[1]) // 2
        window = (slice(top, top + CROP[0]), slice(left, left + CROP[1]))
        crops.append((image[window], network_like_probs(mask[window], seed)))
    return crops


@pytest.mark.parametrize("iterations", [5, 10])
def test_matches_stored_pydensecrf_marginals(reference, iterations):
    settings = {name: float(reference[name]) for name in PYDENSECRF_DEFAULTS}
    ours = crf.dense_crf(reference["image"], reference["probs"], iterations=iterations, **settings)
    _assert_matches(ours, reference[f"q{iterations}"])
    np.testing.assert_allclose(np.asarray(ours).sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "settings", [PYDENSECRF_DEFAULTS, crf.DEEPLAB_VOC_CRF], ids=["pydensecrf", "deeplab"]
)
def test_matches_pydensecrf_run_live_on_voc_images(voc_crops, settings):
    """Strictly after 5 iterations. After 10, a pixel in 10,000 may be off by more than 1e-3:
    where two labels are nearly tied, mean field amplifies float32 rounding about twofold per
    iteration (pydensecrf itself moves by 5e-4 there when its input moves by 1e-6)."""
    for image, probs in voc_crops:
        for iterations, outliers in ((5, 0.0), (10, 1e-4)):
            expected = _pydensecrf(image, probs, iterations, settings)
            ours = crf.dense_crf(image, probs, iterations=iterations, **settings)
            _assert_matches(ours, expected, outliers)


def test_many_distinct_lattice_points_match_pydensecrf(voc_crops):
    """Colour noise with srgb=1 makes almost every (pixel, vertex) its own lattice point, the
    worst case for the hash table and the lattice size."""
    image, probs = voc_crops[0]
    image, probs = image[:48, :64], probs[:48, :64] / probs[:48, :64].sum(-1, keepdims=True)
    noisy = np.random.default_rng(1).integers(0, 256, image.shape, dtype=np.uint8)
    settings = dict(PYDENSECRF_DEFAULTS, bilateral_sxy=5.0, bilateral_srgb=1.0)
    expected = _pydensecrf(noisy, probs, 5, settings)
    _assert_matches(crf.dense_crf(noisy, probs, iterations=5, **settings), expected)


def test_batch_and_jit_agree_with_single_images(voc_crops):
    images = np.stack([image[:64, :80] for image, _ in voc_crops[:2]])
    probs = np.stack([p[:64, :80] for _, p in voc_crops[:2]])
    probs /= probs.sum(-1, keepdims=True)
    singles = np.stack(
        [crf.dense_crf(*pair, iterations=4) for pair in zip(images, probs, strict=True)]
    )
    batched = crf.dense_crf_batch(images, probs, iterations=4)
    under_jit = jax.jit(lambda i, p: crf.dense_crf_batch(i, p, iterations=4))(images, probs)
    np.testing.assert_allclose(batched, singles, rtol=0, atol=1e-6)
    np.testing.assert_allclose(under_jit, singles, rtol=0, atol=1e-6)


def test_hash_table_deduplicates_like_numpy_unique():
    """Many distinct keys (the table half full) force collisions and long probe sequences."""
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 3000, size=(2, 4000)).astype(np.uint32)
    keys[:, 2000:] = keys[:, :2000][:, rng.permutation(2000)]
    table, owner = hash_table.insert(jnp.asarray(keys))
    _, first, inverse = np.unique(keys.T, axis=0, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(np.asarray(owner), first[inverse.ravel()])
    absent = keys[:, :50] + np.uint32(5000)
    queries = np.concatenate([keys[:, ::7], absent], axis=1)
    found = np.asarray(hash_table.lookup(table, jnp.asarray(keys), jnp.asarray(queries)))
    np.testing.assert_array_equal(found[:-50], first[inverse.ravel()][::7])
    assert np.all(found[-50:] == -1)


@pytest.mark.parametrize(
    ("image", "probs", "error", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), np.full((8, 8, 2), 0.5), TypeError, "uint8"),
        (np.zeros((8, 8), np.uint8), np.full((8, 8, 2), 0.5), ValueError, r"\(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 9, 2), 0.5), ValueError, "matching image"),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 2), 0.7), ValueError, "sum to 1"),
        (np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 2), [1.5, -0.5]), ValueError, "negative"),
        (np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 2), np.int32), TypeError, "floating"),
    ],
)
def test_malformed_inputs_get_clear_errors(image, probs, error, match):
    with pytest.raises(error, match=match):
        crf.dense_crf(image, probs)


@pytest.mark.parametrize(
    ("setting", "error", "match"),
    [
        ({"iterations": -1}, ValueError, "iterations"),
        ({"iterations": 2.5}, TypeError, "iterations"),
        ({"bilateral_srgb": 0.0}, ValueError, "bilateral_srgb"),
        ({"gaussian_sxy": jnp.float32(3.0)}, TypeError, "gaussian_sxy"),
    ],
)
def test_bad_settings_get_clear_errors(setting, error, match):
    image, probs = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 2), 0.5, np.float32)
    with pytest.raises(error, match=match):
        crf.dense_crf(image, probs, **setting)
    with pytest.raises(error, match=match):
        crf.dense_crf_batch(image[None], probs[None], **setting)


def test_unknown_batch_setting_is_named():
    image, probs = np.zeros((1, 8, 8, 3), np.uint8), np.full((1, 8, 8, 2), 0.5, np.float32)
    with pytest.raises(TypeError, match="bilateral_rgb"):
        crf.dense_crf_batch(image, probs, bilateral_rgb=13.0)


@pytest.mark.slow
def test_integration_crf_on_a_trained_model_keeps_or_improves_shapes_miou(tmp_path):
    """Integration: train a narrow PSPNet briefly on `shapes/tiny`, then evaluate its val
    split with and without the CRF (DeepLab's VOC settings, as `evaluate` applies them)."""
    from configs import quickstart
    from jaxseg import evaluate, train

    config = quickstart.get_config()
    config.model_kwargs.width, config.model_kwargs.head_features = 8, 32
    config.dataset, config.crop_size, config.batch_size = "shapes/tiny", 96, 4
    config.num_steps, config.checkpoint_every, config.eval_every = 150, 150, 0
    train.train_and_evaluate(config, tmp_path)
    plain = evaluate.evaluate_workdir(config, tmp_path)
    config.eval.crf = True
    refined = evaluate.evaluate_workdir(config, tmp_path)
    assert refined["mean_iou"] >= plain["mean_iou"], (plain["mean_iou"], refined["mean_iou"])
    assert refined["pixel_accuracy"] >= plain["pixel_accuracy"]
