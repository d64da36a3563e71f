"""PyTorch weights to jaxseg: `from_torch(state_dict, source=..., arch=...)`, checkpoint files
(`load_state_dict`), ImageNet backbones for `--config.backbone_init` (`load_backbone`), and
`python -m jaxseg.convert` to write a checkpoint folder that eval/predict/train read.

One adapter module per source (`torchvision`, `smp`) lists its architectures.
"""

from jaxseg.convert.api import SOURCES, convert, from_torch, load_backbone
from jaxseg.convert.files import load_state_dict

__all__ = ["SOURCES", "convert", "from_torch", "load_backbone", "load_state_dict"]
