"""What every jaxseg TFDS builder shares: the segmentation features, stored as encoded bytes.

Images and masks are handed to TFDS as encoded PNG/JPEG bytes, so preparing and reading a
dataset needs no TensorFlow; masks are single-channel PNGs (lossless class indices).
"""

import inspect

import tensorflow_datasets as tfds
from etils import epath


class SegmentationBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the dataset builders: `image`, `segmentation_mask` and `file_name` features."""

    IMAGE_FORMAT = "png"
    """Encoding of the stored images: 'png', or 'jpeg' to keep JPEG sources byte for byte."""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        """The subclass's file (TFDS's own lookup imports `importlib_resources`)."""
        return epath.Path(inspect.getfile(cls))

    def segmentation_info(self, **info) -> tfds.core.DatasetInfo:
        """`DatasetInfo` with the shared features; `info` adds description, homepage, ..."""
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(
                        shape=(None, None, 3), encoding_format=self.IMAGE_FORMAT
                    ),
                    "segmentation_mask": tfds.features.Image(
                        shape=(None, None, 1), encoding_format="png"
                    ),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "segmentation_mask"),
            **info,
        )
