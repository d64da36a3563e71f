"""jaxseg: classic semantic-segmentation networks in JAX/Flax."""
