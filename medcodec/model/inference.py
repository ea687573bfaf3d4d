"""The network for the pipelines: numpy batches in, JAX computations launched (asynchronously)."""

from __future__ import annotations

import numpy as np



def launch_decoder(params, cfg, codes: np.ndarray, mask, iteration_map=None, compute_dtype: str | None = None):
    """Start the decoder network on a batch of codes (k, batch, hc/F, wc/F, bits); JAX runs
    it asynchronously, so the caller can entropy-decode the next batch meanwhile."""
    import jax.numpy as jnp

    from . import codec

    imap = None if iteration_map is None else jnp.asarray(iteration_map)
    return codec.decode(params, jnp.asarray(codes), config=cfg, code_mask=jnp.asarray(mask), iteration_map=imap,
                        compute_dtype=compute_dtype)


def launch_encoder(params, cfg, x: np.ndarray, iterations: int, mask, pixel_mask, iteration_map=None):
    """Run the encoder on a normalised batch (batch, hc, wc): (codes, per-cell errors, reconstruction)."""
    import jax.numpy as jnp

    from . import codec

    return codec.encode(params, jnp.asarray(x[..., None]), config=cfg, iterations=iterations,
                        code_mask=jnp.asarray(mask), pixel_mask=jnp.asarray(pixel_mask),
                        iteration_map=None if iteration_map is None else jnp.asarray(iteration_map))
