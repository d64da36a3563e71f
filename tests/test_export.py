"""Exported StableHLO and ONNX files reproduce jaxseg's logits, at another batch size than
the one the export checked, for every registered model on its small version."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg import checkpoint, export, models

SIZE = 40
# jax2onnx 0.17 fails on a pad in SegNet's graph when the batch is symbolic.
CANNOT_EXPORT = {("segnet", "onnx"): "pad"}


@functools.cache
def _model(name: str):
    """The small model, its weights, and its logits on a batch of 3 (both formats reuse them);
    jitted, since op-by-op initialisation and inference cost more than the export itself."""
    model = models.create(name, num_classes=3, **models.small_options(name))
    init = jax.jit(lambda rng, x: model.init(rng, x, train=False))
    variables = init(jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE, 3)))
    images = np.random.default_rng(5).normal(size=(3, SIZE, SIZE, 3)).astype(np.float32)
    expected = np.asarray(jax.jit(export.logits_function(model, variables))(images))
    return model, variables, images, expected


def _run(fmt: str, serialized: bytes, images: np.ndarray) -> np.ndarray:
    if fmt == "onnx":
        onnxruntime = pytest.importorskip("onnxruntime")
        session = onnxruntime.InferenceSession(serialized, providers=["CPUExecutionProvider"])
        return session.run(None, {"images": images})[0]
    return np.asarray(jax.export.deserialize(serialized).call(images))


@pytest.mark.parametrize("fmt", ["stablehlo", "onnx"])
@pytest.mark.parametrize("name", models.names())
def test_export_reproduces_logits(name, fmt):
    if fmt == "onnx":
        pytest.importorskip("jax2onnx")
    model, variables, images, expected = _model(name)
    if (name, fmt) in CANNOT_EXPORT:
        with pytest.raises(ValueError, match=f"failed at the '{CANNOT_EXPORT[name, fmt]}' op"):
            export.export_model(model, variables, fmt, SIZE, SIZE)
        return
    serialized, error = export.export_model(model, variables, fmt, SIZE, SIZE, batch=1)
    assert error < export.MAX_RELATIVE_ERROR
    got = _run(fmt, serialized, images)
    assert got.shape == expected.shape == (3, SIZE, SIZE, 3)
    assert export.relative_error(got, expected) < export.MAX_RELATIVE_ERROR


def test_export_workdir_writes_a_reloadable_file(tmp_path):
    model, variables, *_ = _model("unet")
    spec = models.ModelSpec("unet", 3, models.small_options("unet"))
    checkpoint.write_weights(tmp_path, spec, variables)
    out = tmp_path / "unet.stablehlo"
    summary = export.export_workdir(tmp_path, "stablehlo", out, SIZE, SIZE, batch=2)
    assert "max relative error" in summary
    images = np.zeros((2, SIZE, SIZE, 3), np.float32)
    np.testing.assert_allclose(
        _run("stablehlo", out.read_bytes(), images),
        np.asarray(jax.jit(export.logits_function(model, variables))(images)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_unknown_format_and_missing_workdir_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json not found"):
        export.export_workdir(tmp_path, "onnx", tmp_path / "x.onnx", SIZE, SIZE)
    model, variables, *_ = _model("unet")
    with pytest.raises(ValueError, match="--format=tflite: expected one of onnx, stablehlo"):
        export.export_model(model, variables, "tflite", SIZE, SIZE)


@pytest.mark.parametrize("pool", ["max_pool", "avg_pool"])
def test_planar_pooling_gives_the_same_numbers(pool):
    from jaxseg.nn import pooling

    x = np.random.default_rng(0).normal(size=(2, 11, 9, 5)).astype(np.float32)
    fn = getattr(pooling, pool)
    expected = fn(x, 3, 2, 1, ceil_mode=True)
    with pooling.planar_pooling():
        got = jax.jit(lambda v: fn(v, 3, 2, 1, ceil_mode=True))(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-6, atol=1e-6)
