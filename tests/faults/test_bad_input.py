"""Bad input at every door: one clear line naming the field or file, nothing written over,
nothing left behind, and the rest of a batch of images still predicted."""

import ast
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from jaxseg import checkpoint, config_checks, data, errors
from jaxseg.data import __main__ as prepare_cli
from jaxseg.data.images import read_rgb
from jaxseg.inference import Predictor
from jaxseg.models import ModelSpec
from jaxseg.train import train_and_evaluate
from tests.faults.conftest import tiny_config
from tests.test_train import REPO


def _clean_exit(fn) -> str:
    """The one-line message `errors.run_with_clean_errors` exits with."""
    with pytest.raises(SystemExit) as exit_:
        errors.run_with_clean_errors(fn)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def photos(shared_dir):
    return sorted((shared_dir / "data" / "voc_samples" / "JPEGImages").glob("*.jpg"))[:2]


@pytest.fixture(scope="module")
def model_workdir(tmp_path_factory):
    """A workdir holding an initialised tiny model, as `python -m jaxseg.convert` writes."""
    workdir, config = tmp_path_factory.mktemp("model"), tiny_config()
    num_classes, _ = data.dataset_info(config.dataset)
    spec = ModelSpec.from_config(config, num_classes)
    model = spec.build()
    variables = model.init(jax.random.PRNGKey(0), np.zeros((1, 48, 48, 3), np.float32))
    checkpoint.write_weights(workdir, spec, variables)
    return workdir, model


def _predict(workdir, out, *paths, flags=()) -> subprocess.CompletedProcess:
    command = [sys.executable, "predict.py", f"--workdir={workdir}", f"--out={out}", *flags,
               *map(str, paths)]  # fmt: skip
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)


# Item 4 and 12: batch sizes and other fields are checked before anything is written.
def test_eval_batch_not_divisible_by_devices_fails_before_the_workdir_exists(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run(
        [sys.executable, "train.py", "--config=quickstart", f"--workdir={tmp_path / 'run'}",
         "--config.eval.batch_size=3", "--config.batch_size=2", "--config.dataset=shapes/tiny",
         f"--config.data_dir={tmp_path / 'data'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "config.eval.batch_size=3" in result.stderr and "(2)" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [(["num_steps=0"], "config.num_steps=0"),
     (["class_weights=(1.0, 2.0)"], "config.class_weights has 2 values"),
     (["class_weights=(1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0)"], "non-negative"),
     (["eval_every=2", "eval.scales=(0.0, 1.0)"], "config.eval.scales")],
)  # fmt: skip
def test_bad_fields_are_named_and_leave_no_workdir(tmp_path, overrides, named):
    config = tiny_config()
    for override in overrides:
        field, value = override.split("=")
        *parents, name = field.split(".")
        target = config
        for parent in parents:
            target = target[parent]
        target[name] = ast.literal_eval(value)
    message = _clean_exit(lambda: train_and_evaluate(config, tmp_path / "run"))
    assert named in message
    assert not (tmp_path / "run").exists()


def test_class_weights_match_the_class_count_and_none_means_unset():
    config = tiny_config()
    num_classes, _ = data.dataset_info(config.dataset)
    config.class_weights = (None,)  # what --config.class_weights=None parses to
    assert config_checks.normalized_class_weights(config, num_classes) is None
    config.class_weights = tuple(range(1, num_classes + 1))
    weights = config_checks.normalized_class_weights(config, num_classes)
    assert weights == tuple(float(w) for w in range(1, num_classes + 1))


# Item 11: misspelt fields, unknown model options, unusable paths.
def test_misspelt_config_field_is_one_line_naming_it(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "--config=quickstart", f"--workdir={tmp_path}",
         "--config.batchsize=3"], cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "batchsize" in lines[0] and "batch_size" in lines[0]


def test_unknown_model_option_is_one_line_naming_the_options(tmp_path):
    config = tiny_config()
    config.model = "unet"  # quick start's PSPNet options do not fit a U-Net
    message = _clean_exit(lambda: train_and_evaluate(config, tmp_path / "run"))
    assert "config.model_kwargs" in message and "'unet'" in message and "options" in message


def test_workdir_below_a_file_is_one_line_naming_the_path(tmp_path):
    (tmp_path / "file").write_text("")
    message = _clean_exit(lambda: train_and_evaluate(tiny_config(), tmp_path / "file" / "run"))
    assert str(tmp_path / "file") in message


# Item 9: an empty manual folder is named with the files that belong there.
@pytest.mark.parametrize(
    ("name", "expected"),
    [("voc_segmentation/2012", "VOCtrainval_11-May-2012.tar"), ("camvid", "train.txt")],
)
def test_empty_manual_dir_says_which_files_belong_there(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError, match="is empty") as error:
        prepare_cli.prepare(name, manual_dir=str(tmp_path), data_dir=str(tmp_path / "data"))
    assert expected in str(error.value)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*.array_record*"))


# Item 8: 16-bit and EXIF-rotated images are read as photo tools show them.
def test_16_bit_png_keeps_its_contrast(tmp_path, photos):
    grey = np.asarray(Image.open(photos[0]).convert("L"))
    path = tmp_path / "deep.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode.startswith("I")
    np.testing.assert_array_equal(read_rgb(path), np.repeat(grey[..., None], 3, axis=-1))


def test_exif_orientation_turns_the_image_upright(tmp_path, photos):
    pixels = np.asarray(Image.open(photos[0]).convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF Orientation 6: the stored image must turn 90 degrees clockwise
    path = tmp_path / "portrait.png"
    Image.fromarray(pixels).save(path, exif=exif)
    np.testing.assert_array_equal(read_rgb(path), np.rot90(pixels, k=-1))


# Items 5, 12 and 13: predict.py.
def test_predict_never_overwrites_inputs(tmp_path, model_workdir):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((40, 50, 3), 90, np.uint8)).save(folder / "photo.png")
    before = (folder / "photo.png").read_bytes()
    result = _predict(model_workdir[0], folder, folder / "photo.png")
    assert result.returncode != 0 and "would overwrite the input" in result.stderr
    assert (folder / "photo.png").read_bytes() == before


def test_predict_names_outputs_apart_and_goes_on_past_a_bad_image(tmp_path, model_workdir, photos):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    first, second = tmp_path / "a" / "photo.jpg", tmp_path / "b" / "photo.jpg"
    first.write_bytes(photos[0].read_bytes())
    second.write_bytes(photos[1].read_bytes())
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:100])
    out = tmp_path / "out"
    result = _predict(model_workdir[0], out, first, broken, second)
    assert result.returncode != 0
    assert "1 of 3 images could not be read" in result.stderr and str(broken) in result.stderr
    for stem, photo in (("photo", photos[0]), ("photo-2", photos[1])):
        labels = np.asarray(Image.open(out / f"{stem}.png"))
        assert labels.shape == Image.open(photo).size[::-1]


@pytest.mark.parametrize("flags", [["--scales=0"], ["--scales=-1,1"]])
def test_predict_rejects_scales_of_zero_or_below(tmp_path, model_workdir, photos, flags):
    result = _predict(model_workdir[0], tmp_path / "out", photos[0], flags=flags)
    assert result.returncode != 0 and "--scales" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_to_an_existing_file_is_one_line(tmp_path, model_workdir, photos):
    (tmp_path / "taken").write_text("")
    result = _predict(model_workdir[0], tmp_path / "taken", photos[0])
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert str(tmp_path / "taken") in result.stderr


def test_predictor_compiles_once_per_size_bucket(model_workdir):
    workdir, model = model_workdir
    predictor = Predictor(model, checkpoint.load_variables(workdir), pad_multiple=64)
    rng = np.random.default_rng(0)
    sizes = [(40, 50), (60, 64), (70, 100), (100, 120), (128, 128), (40, 130), (64, 150)]
    for height, width in sizes:  # buckets 64x64, 128x128 and 64x192
        image = rng.integers(0, 256, (height, width, 3), np.uint8)
        assert predictor(image).shape == (height, width)
    assert predictor.compiled_shapes() == 3
