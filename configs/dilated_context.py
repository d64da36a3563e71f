"""Dilated front end + large context module (arXiv 1511.07122) on VOC 2012 + SBD.

The paper trains the front end first, then the context module on its output; here the whole
net trains end to end from a trained front end: `--config.init_from=WORKDIR_OF_FRONTEND`
(the context module starts as the identity). Recipe as the front end's. Deviation: the
paper trains the context module alone on the frozen front end's score maps.
"""

from ml_collections import ConfigDict

from configs.dilated_frontend import frontend_config


def get_config() -> ConfigDict:
    """Front end + large context module VOC preset."""
    return frontend_config("dilated_context", num_steps=60_000, context="large")
