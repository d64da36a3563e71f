"""`ModelSpec`: JSON round trips for every registered model, the module it builds, and the
errors for specs the registry cannot build."""

import json

import pytest

from configs import deeplab_v2
from jaxseg import checkpoint, models
from jaxseg.models import ModelSpec


@pytest.mark.parametrize("name", models.names())
def test_json_round_trip_rebuilds_the_same_module(name):
    spec = ModelSpec(name, 5, models.small_options(name))
    again = ModelSpec.from_json(spec.to_json())
    assert again == spec
    assert again.build("bfloat16") == models.create(
        name, num_classes=5, dtype="bfloat16", **models.small_options(name)
    )


def test_tuple_options_come_back_as_tuples(tmp_path):
    config = deeplab_v2.get_config()
    spec = ModelSpec.from_config(config, 21)
    checkpoint.write_model_spec(tmp_path, spec)
    read = checkpoint.read_model_spec(tmp_path)
    assert read.options["scales"] == tuple(config.model_kwargs.scales) == (1.0, 0.75, 0.5)
    assert read.build().scales == (1.0, 0.75, 0.5)


@pytest.mark.parametrize(
    ("name", "num_classes", "options", "error", "message"),
    [
        ("pspnet2", 21, {}, ValueError, "unknown model 'pspnet2'; known models: deeplab_v1"),
        ("unet", 21, {"widht": 8}, TypeError, "model 'unet' has no option 'widht'"),
        ("unet", 21, {"dtype": "bfloat16"}, TypeError, "has no option 'dtype'"),
        ("unet", 0, {}, ValueError, "num_classes must be a positive int, got 0"),
    ],
)
def test_a_spec_the_registry_cannot_build_is_refused(name, num_classes, options, error, message):
    with pytest.raises(error, match=message):
        ModelSpec(name, num_classes, options)


def test_model_json_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / checkpoint.MODEL_SPEC} not found"):
        checkpoint.read_model_spec(tmp_path)
    path = tmp_path / checkpoint.MODEL_SPEC
    path.write_text(json.dumps({"name": "unet", "num_classes": 3}))
    with pytest.raises(ValueError, match=f"{path}: expected a JSON object with exactly"):
        checkpoint.read_model_spec(tmp_path)
    path.write_text('{"name": "unet", "num_cl')
    with pytest.raises(ValueError, match=f"{path}: "):
        checkpoint.read_model_spec(tmp_path)
