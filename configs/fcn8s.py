"""FCN-8s (arXiv 1411.4038): FCN-16s plus scores from pool3, trained from a trained FCN-16s.

As the paper (Sec. 4.2, "continuing in this fashion"): initialise from FCN-16s
(`--config.init_from=WORKDIR_OF_FCN16S`; the pool3 scorer starts at zero) and fine-tune as
FCN-16s was, at FCN-32s's learning rate divided by 100 (the paper states no other rate).
Otherwise FCN-32s's recipe.
"""

from ml_collections import ConfigDict

from configs.fcn32s import fcn_config


def get_config() -> ConfigDict:
    """FCN-8s VGG16 VOC preset (fine-tunes FCN-16s)."""
    return fcn_config("fcn8s", lr=1e-6)
