"""pydensecrf run as the stored fixture was made, and the network-like probabilities fed to it:
what `dense_crf` is checked against (tests/test_crf.py) and timed against (benchmarks/crf.py).

`pydensecrf_marginals` needs the PyPI package `pydensecrf2` (it imports as `pydensecrf`).
"""

import numpy as np
from scipy import ndimage

PYDENSECRF_DEFAULTS = {
    "gaussian_sxy": 3.0,
    "gaussian_compat": 3.0,
    "bilateral_sxy": 80.0,
    "bilateral_srgb": 13.0,
    "bilateral_compat": 10.0,
}
"""pydensecrf's example settings, those of the stored fixture (and `dense_crf`'s defaults)."""


def network_like_probs(mask: np.ndarray, seed: int, num_classes: int = 21) -> np.ndarray:
    """A noisy, smoothed stand-in for a network's softmax (H, W, K) from a genuine mask: the
    recipe of shared/fixtures/densecrf_reference.npz (see its README)."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(*mask.shape, num_classes)), (4, 4, 0))
    labels = np.where(mask == 255, 0, mask)
    onehot = ndimage.gaussian_filter(np.eye(num_classes)[labels], (6, 6, 0))
    logits = 3.0 * noise + 4.0 * onehot
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    return (probs / probs.sum(-1, keepdims=True)).astype(np.float32)


def pydensecrf_marginals(
    image: np.ndarray, probs: np.ndarray, iterations: int, settings: dict[str, float]
) -> np.ndarray:
    """pydensecrf's marginals (H, W, K) of a uint8 `image` and softmax `probs`, with the
    `dense_crf` keyword `settings`, set up as in the stored fixture."""
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    height, width, num_labels = probs.shape
    model = dcrf.DenseCRF2D(width, height, num_labels)
    model.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs.transpose(2, 0, 1))))
    model.addPairwiseGaussian(sxy=settings["gaussian_sxy"], compat=settings["gaussian_compat"])
    model.addPairwiseBilateral(
        sxy=settings["bilateral_sxy"],
        srgb=settings["bilateral_srgb"],
        rgbim=np.ascontiguousarray(image),
        compat=settings["bilateral_compat"],
    )
    marginals = np.array(model.inference(iterations)).reshape(num_labels, height, width)
    return marginals.transpose(1, 2, 0)
