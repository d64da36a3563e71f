"""FCN-16s (arXiv 1411.4038): FCN-32s plus scores from pool4, trained from a trained FCN-32s.

As the paper (Sec. 4.2): initialise from FCN-32s (`--config.init_from=WORKDIR_OF_FCN32S`; the
new pool4 scorer starts at zero, so the net starts with FCN-32s's predictions) and fine-tune
with the learning rate decreased by a factor of 100. Otherwise FCN-32s's recipe.
"""

from ml_collections import ConfigDict

from configs.fcn32s import fcn_config


def get_config() -> ConfigDict:
    """FCN-16s VGG16 VOC preset (fine-tunes FCN-32s)."""
    return fcn_config("fcn16s", lr=1e-6)
