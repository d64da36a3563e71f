"""Checkpoint files and the conversion CLI: `.pth` and `.safetensors` layouts, a converted
folder that predict/eval/train read, and ImageNet backbones for `--config.backbone_init`."""

import functools
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision
from ml_collections import ConfigDict
from PIL import Image
from safetensors.torch import save_file

from jaxseg import checkpoint, models
from jaxseg.convert import from_torch, load_backbone, load_state_dict
from jaxseg.convert.__main__ import main
from jaxseg.data import pipeline
from jaxseg.inference import predict_image
from jaxseg.pretrained import load_initial_weights
from jaxseg.train import TrainState
from tests import torch_reference
from tests.parity import parity_harness as harness

REPO = harness.__file__.rsplit("/tests/", 1)[0]


@functools.cache
def _resnet18() -> torch.nn.Module:
    torch.manual_seed(18)
    return torch_reference.randomize_batchnorm(torchvision.models.resnet18())


@functools.cache
def _deeplabv3() -> torch.nn.Module:
    """torchvision's deeplabv3_resnet50 with the auxiliary head, 21 VOC classes."""
    torch.manual_seed(3)
    model = torchvision.models.segmentation.deeplabv3_resnet50(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=True
    )
    return torch_reference.randomize_batchnorm(model)


def _assert_same_weights(loaded: dict, state_dict: dict) -> None:
    assert sorted(loaded) == sorted(state_dict)
    for key, value in state_dict.items():
        np.testing.assert_array_equal(loaded[key], value.numpy().astype(np.float32), err_msg=key)


def _zero_state(module) -> TrainState:
    """A train state whose variables are all zeros, shaped as `module`'s."""
    shapes = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))
    variables = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=variables["params"],
        batch_stats=variables.get("batch_stats", {}),
        opt_state=None,
        rng=None,
        ema_params={},
    )


def _init_config(init_from=None, backbone_init=None) -> ConfigDict:
    return ConfigDict({"init_from": init_from, "backbone_init": backbone_init})


@pytest.mark.parametrize("layout", ["bare", "state_dict", "model", "data_parallel"])
def test_pth_layouts(tmp_path, layout):
    state_dict = _resnet18().state_dict()
    contents = {
        "bare": state_dict,
        "state_dict": {"state_dict": state_dict, "epoch": 3},
        "model": {"model": state_dict, "optimizer": {"lr": 0.1}},
        "data_parallel": {f"module.{key}": value for key, value in state_dict.items()},
    }[layout]
    torch.save(contents, tmp_path / "weights.pth")
    _assert_same_weights(load_state_dict(tmp_path / "weights.pth"), state_dict)


def test_safetensors_load_and_convert_without_torch(tmp_path):
    state_dict = _resnet18().state_dict()
    path = tmp_path / "resnet18.safetensors"
    save_file({key: value.contiguous() for key, value in state_dict.items()}, path)
    _assert_same_weights(load_state_dict(path), state_dict)
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from jaxseg.convert import from_torch, load_state_dict\n"
        f"module, variables = from_torch(load_state_dict({str(path)!r}), source='torchvision',"
        " arch='resnet18')\n"
        "assert 'torch' not in {m.split('.')[0] for m in sys.modules if sys.modules[m]}\n"
        "print(variables['params']['layer4_1']['conv2']['kernel'].shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(3, 3, 512, 512)"


def test_cli_writes_a_folder_that_predict_and_train_use(tmp_path, shared_dir):
    model = _deeplabv3()
    source = tmp_path / "deeplab.pth"
    torch.save({"model": model.state_dict(), "epoch": 30}, source)
    out = tmp_path / "converted"
    main(
        ["--source", "torchvision", "--arch", "deeplabv3_resnet50", str(source), "--out", str(out)]
    )

    spec = checkpoint.read_model_spec(out)
    options = {"depth": 50, "output_stride": 8, "multi_grid": None, "aux": True}
    assert spec == models.ModelSpec("deeplab_v3", 21, options)
    module, variables = spec.build(), checkpoint.load_variables(out)

    # predict.py's path on a genuine VOC image gives PyTorch's labels.
    jpeg = sorted((shared_dir / "data/voc_samples/VOC2012/JPEGImages").glob("*.jpg"))[0]
    image = np.asarray(Image.open(jpeg).convert("RGB"))[:97, :131]
    labels = predict_image(module, variables, image)
    with torch.no_grad():
        normalized = torch.from_numpy(pipeline.normalize(image).transpose(2, 0, 1)[None].copy())
        reference = model(normalized)["out"][0].argmax(0).numpy()
    assert (labels == reference).mean() >= harness.MIN_ARGMAX_AGREEMENT

    # train.py --config.init_from=DIR puts exactly these weights into a fresh train state.
    state = load_initial_weights(_zero_state(module), _init_config(init_from=str(out)))
    jax.tree.map(np.testing.assert_array_equal, state.params, variables["params"])
    jax.tree.map(np.testing.assert_array_equal, state.batch_stats, variables["batch_stats"])


def test_cli_refuses_to_overwrite_and_explains_bad_input(tmp_path):
    source = tmp_path / "resnet18.pth"
    torch.save(_resnet18().state_dict(), source)
    with pytest.raises(SystemExit, match=r"resnet18 is a backbone .*--config\.backbone_init="):
        main(["--source", "torchvision", "--arch", "resnet18", str(source), "--out", str(tmp_path)])
    with pytest.raises(
        SystemExit, match=r"resnet18\.pth: torchvision fcn_resnet50: .* 'classifier\.4\.weight'"
    ):
        main(["--source", "torchvision", "--arch", "fcn_resnet50", str(source), "--out", "x"])
    (tmp_path / "out/checkpoints/0").mkdir(parents=True)
    torch.save(smp.Unet("resnet34", encoder_weights=None, classes=2).state_dict(), source)
    with pytest.raises(SystemExit, match="already holds checkpoints"):
        main(
            ["--source", "smp", "--arch", "unet_resnet34", str(source), "--out", f"{tmp_path}/out"]
        )


def test_backbone_init_from_a_torchvision_resnet_file(tmp_path):
    resnet = _resnet18()
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(resnet.state_dict(), path)
    segmenter = models.create("pspnet", 5, depth=18, output_stride=32, head_features=16)
    before = _zero_state(segmenter)
    state = load_initial_weights(before, _init_config(backbone_init=str(path)))

    # The trainer's backbone now computes torchvision's features.
    images = harness.random_images((45, 61))
    with torch.no_grad():
        reference = harness.resnet_stages(resnet, images)
    backbone = {"params": state.params["backbone"], "batch_stats": state.batch_stats["backbone"]}
    features = segmenter.backbone.apply(backbone, torch_reference.from_torch(images))
    for name, expected in reference.items():
        assert harness.relative_error(features[name], expected) < harness.EVAL_TOLERANCE, name
    # The head keeps its own initial values.
    jax.tree.map(np.testing.assert_array_equal, state.params["ppm"], before.params["ppm"])


def test_backbone_from_segmentation_checkpoints(tmp_path):
    unet = smp.Unet("resnet34", encoder_weights=None, classes=2)
    torch.save(unet.state_dict(), tmp_path / "unet.pth")
    encoder = {k[len("encoder.") :]: v for k, v in unet.state_dict().items() if "encoder." in k}
    _, expected = from_torch(encoder, source="torchvision", arch="resnet34")
    jax.tree.map(np.testing.assert_array_equal, load_backbone(tmp_path / "unet.pth"), expected)

    torch.save(_deeplabv3().state_dict(), tmp_path / "deeplab.pth")
    backbone = load_backbone(tmp_path / "deeplab.pth")
    assert backbone["params"]["layer3_5"]["conv3"]["kernel"].shape == (1, 1, 256, 1024)


def test_backbone_file_that_is_no_resnet(tmp_path):
    torch.save({"head.weight": torch.zeros(3, 3)}, tmp_path / "head.pth")
    with pytest.raises(ValueError, match=r"head\.pth: not a ResNet checkpoint"):
        load_backbone(tmp_path / "head.pth")
