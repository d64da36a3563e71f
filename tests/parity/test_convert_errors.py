"""Wrong input to `jaxseg.convert` is a clear error naming the file, key or field at fault."""

import functools
import pickle

import numpy as np
import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision

from jaxseg.convert import from_torch, load_state_dict


@functools.cache
def _resnet_state_dict(depth: int) -> dict:
    torch.manual_seed(0)
    return getattr(torchvision.models, f"resnet{depth}")().state_dict()


def test_unknown_source_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown source 'timm'.*torchvision, smp"):
        from_torch({}, source="timm", arch="resnet50")


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown torchvision arch 'resnet51'.*resnet50"):
        from_torch(_resnet_state_dict(18), source="torchvision", arch="resnet51")


def test_a_state_dict_must_be_a_mapping():
    with pytest.raises(ValueError, match="must be a mapping, got list"):
        from_torch([np.zeros(3)], source="torchvision", arch="resnet18")


def test_missing_key_is_named_with_its_shape():
    with pytest.raises(ValueError, match=r"lacks 'layer1\.2\.bn1\.bias' \(64,\)"):
        from_torch(_resnet_state_dict(18), source="torchvision", arch="resnet34")


def test_unexpected_key_is_named_with_its_shape():
    with pytest.raises(
        ValueError, match=r"unexpected key 'layer1\.2\.conv1\.weight' \(64, 64, 3, 3\)"
    ):
        from_torch(_resnet_state_dict(34), source="torchvision", arch="resnet18")


def test_misshapen_key_is_named_with_both_shapes():
    state_dict = dict(_resnet_state_dict(18), **{"conv1.weight": torch.zeros(64, 4, 7, 7)})
    message = r"'conv1\.weight' has shape \(64, 4, 7, 7\), expected \(64, 3, 7, 7\)"
    with pytest.raises(ValueError, match=message):
        from_torch(state_dict, source="torchvision", arch="resnet18")


def test_weights_of_another_library_name_the_missing_classifier():
    torch.manual_seed(0)
    state_dict = smp.DeepLabV3("resnet50", encoder_weights=None, classes=2).state_dict()
    with pytest.raises(ValueError, match=r"no classifier weight 'classifier\.4\.weight'"):
        from_torch(state_dict, source="torchvision", arch="deeplabv3_resnet50")


def test_a_segmentation_checkpoint_is_not_a_bare_backbone():
    state_dict = {f"backbone.{key}": value for key, value in _resnet_state_dict(18).items()}
    with pytest.raises(ValueError, match=r"lacks 'bn1\.bias' \(64,\)"):
        from_torch(state_dict, source="torchvision", arch="resnet18")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth: no such checkpoint file"):
        load_state_dict(tmp_path / "nowhere.pth")


def test_unknown_file_format(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07")
    with pytest.raises(ValueError, match=r"model\.onnx: unknown checkpoint format '\.onnx'"):
        load_state_dict(path)


def test_text_file_named_pth(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(ValueError, match=r"notes\.pth: not a PyTorch checkpoint"):
        load_state_dict(path)


def test_garbage_safetensors(tmp_path):
    path = tmp_path / "weights.safetensors"
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ValueError, match=r"weights\.safetensors: not a readable safetensors file"):
        load_state_dict(path)


def test_checkpoint_without_weights(tmp_path):
    path = tmp_path / "optimizer.pth"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}}, path)
    with pytest.raises(ValueError, match=r"optimizer\.pth: entry 'epoch' is a int, not a tensor"):
        load_state_dict(path)


def test_pickled_object_is_refused_without_running_it(tmp_path):
    path = tmp_path / "object.pth"
    with path.open("wb") as file:
        pickle.dump(functools.partial(print, "should never run"), file, protocol=2)
    with pytest.raises(ValueError, match=r"object\.pth: not a PyTorch checkpoint"):
        load_state_dict(path)
