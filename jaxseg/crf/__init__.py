"""Dense CRF post-processing (DeepLab v1/v2) in pure JAX, matching pydensecrf.

Mean-field inference (`mean_field`) in the fully connected CRF of Krähenbühl & Koltun,
"Efficient Inference in Fully Connected CRFs with Gaussian Edge Potentials" (NIPS 2011), with
each kernel filtered on the permutohedral lattice (`lattice`) of Adams, Baek & Davis
(Eurographics 2010). Every numerical choice follows Krähenbühl's C++ code as shipped in
pydensecrf, so the marginals agree with it to float32 rounding.

Agreement with pydensecrf (tests/test_crf.py, benchmarks/crf.py): on its stored outputs and on
genuine VOC images the marginals differ by at most a few 1e-5 after 5 iterations, and labels
agree on at least 99.5% of the pixels (all of them in the benchmark). The float32
arithmetic differs in order (and XLA's exp is not the C library's), which moves the logits by
about 1e-6 per iteration; where two labels are nearly tied and the pairwise terms couple them
strongly, mean field amplifies such a difference about twofold per iteration, so after 10
iterations a pixel in some 10,000 can differ by slightly more than 1e-3 (1.4e-3 the largest
seen). pydensecrf does the same against itself: perturbing its input by 1e-6 moves those
pixels by 5e-4.
"""

from jaxseg.crf.mean_field import DEEPLAB_VOC_CRF, UNARY_CLIP, dense_crf, dense_crf_batch

__all__ = ["DEEPLAB_VOC_CRF", "UNARY_CLIP", "dense_crf", "dense_crf_batch"]
