"""Pure-functional core of the recurrent residual codec.

Images are float32 (N, H, W, 1), normalised to [-0.5, 0.5], H and W multiples of
``config.factor``. Iteration t codes the residual of reconstruction t-1 (reconstruction 0
is all zeros) and the decoder adds its output to the reconstruction (plain additive
reconstruction). Iterations run in ``jax.lax.scan``; the scan length is static, so each
distinct iteration count compiles once and a file holding K iterations decodes any
prefix k <= K: iteration t depends only on iterations <= t.

Codes are int8 in {-1, +1} of shape (T, N, H/F, W/F, bits). ``code_mask`` (N, H/F, W/F, 1)
zeroes code positions that lie in bucket padding outside the coded area, so the encoder's
internal decoder and the real decoder see exactly the same input there.

Spatially adaptive iterations: ``iteration_map`` (N, H/F, W/F, 1) int32 gives each code cell
(an FxF pixel block) its own iteration count k. From iteration k+1 on, the cell's codes are
zero (nothing stored) and the decoder's update is not added to its pixels, so its
reconstruction stays that of iteration k. Encoder and decoder apply the same map inside the
scan, so the encoder's internal reconstruction is still exactly the decoder's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from . import integer
from .config import CodecConfig
from .layers import binarize
from .networks import Decoder, Encoder, zero_states


def init(config: CodecConfig, rng: jax.Array) -> dict:
    """Random initial parameters {'encoder': ..., 'decoder': ...}."""
    f = config.factor
    x = jnp.zeros((1, f, f, 1), jnp.float32)
    enc_state, dec_state = zero_states(config, 1, f, f)
    k1, k2 = jax.random.split(rng)
    enc = Encoder(config).init(k1, enc_state, x)["params"]
    b = jnp.zeros((1, 1, 1, config.bits), jnp.float32)
    dec = Decoder(config).init(k2, dec_state, b)["params"]
    return {"encoder": enc, "decoder": dec}


def prepare_params(config: CodecConfig, params: dict) -> dict:
    """Inference parameters: for an integer model (``config.quant``) the float weights plus
    ``int_decoder``, the integer decoder's weights and tables (:func:`integer.prepare`);
    float models' parameters unchanged."""
    if not config.integer:
        return params
    return {**params, "int_decoder": integer.prepare(config, params["decoder"])}


def _states(config: CodecConfig, n: int, h: int, w: int, qat: bool = False):
    """Initial (encoder, decoder) states and reconstruction: the integer decoder's state
    and its Q16 reconstruction are int32."""
    enc_state, dec_state = zero_states(config, n, h, w)
    if config.integer and not qat:
        return enc_state, integer.zero_int_states(config, n, h, w), jnp.zeros((n, h, w, 1), jnp.int32)
    return enc_state, dec_state, jnp.zeros((n, h, w, 1), jnp.float32)


def _as_float(config: CodecConfig, recon, qat: bool = False):
    return integer.to_float(recon, config) if config.integer and not qat else recon


def _check_shape(config: CodecConfig, x: jax.Array) -> None:
    f = config.factor
    if x.ndim != 4 or x.shape[-1] != 1 or x.shape[1] % f or x.shape[2] % f:
        raise ValueError(f"expected (N, H, W, 1) with H, W multiples of {f}, got {x.shape}")


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _resolve(config: CodecConfig, compute_dtype: str | None):
    """(float convolutions' dtype, integer decoder's GEMM operand or None).

    Float models: ``compute_dtype`` (None = "float32") is the convolutions' dtype. Integer
    models: it picks the integer decoder's GEMM operand type (None = "int8"; "float32",
    "bfloat16"), which changes only the speed, never the integers; their encoder is float32.
    """
    if config.integer:
        operand = compute_dtype or "int8"
        if operand not in integer.OPERANDS:
            raise ValueError(f"compute_dtype of an integer model must be one of {', '.join(integer.OPERANDS)}, "
                             f"got {operand!r}")
        return jnp.float32, operand
    return _dtype(compute_dtype or "float32"), None


def _dtype(compute_dtype: str):
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {compute_dtype!r}")
    return COMPUTE_DTYPES[compute_dtype]


def _active(iteration_map, t, factor):
    """(code-cell mask, pixel mask) of the cells still iterating at step t (0-based)."""
    cells = (iteration_map > t).astype(jnp.float32)
    return cells, jnp.repeat(jnp.repeat(cells, factor, axis=1), factor, axis=2)


def _decode_step(params, config, dec_state, recon, bits, code_mask, iteration_map, t, dtype, qat=False,
                 operand="int8"):
    """Decoder half of an iteration, shared by the encoder's closed loop and the decoder.

    Integer models run :func:`integer.decoder_step` (state and reconstruction int32) or,
    with ``qat`` (training), its float simulation."""
    if code_mask is not None:
        bits = bits * code_mask
    if iteration_map is not None:
        cells, pixels = _active(iteration_map, t, config.factor)
        bits = bits * cells
    if config.integer and not qat:
        dec_state, delta = integer.decoder_step(params["int_decoder"], config, dec_state, bits, operand)
        if iteration_map is not None:
            delta = delta * pixels.astype(jnp.int32)
        lim = integer.recon_limit(config)
        return dec_state, jnp.clip(recon + delta, -lim, lim), bits
    if config.integer:
        dec_state, delta = integer.qat_decoder_step(params["decoder"], config, dec_state, bits)
    else:
        dec_state, delta = Decoder(config, dtype).apply({"params": params["decoder"]}, dec_state, bits)
    if iteration_map is not None:
        delta = delta * pixels
    return dec_state, recon + delta, bits


def _step(params, config, carry, x, code_mask, rng, dtype=jnp.float32, iteration_map=None, t=0, qat=False,
          operand="int8"):
    """One iteration: encode the residual, binarize, decode, add. Returns carry, bits.

    ``dtype`` is the convolutions' compute dtype; states, residuals and the reconstruction
    stay float32 either way (int32 for the integer decoder). ``t`` is the 0-based iteration
    (used with ``iteration_map``).
    """
    enc_state, dec_state, recon = carry
    enc_state, pre = Encoder(config, dtype).apply({"params": params["encoder"]}, enc_state,
                                                  x - _as_float(config, recon, qat))
    bits = binarize(pre, rng)
    dec_state, recon, bits = _decode_step(params, config, dec_state, recon, bits, code_mask,
                                          iteration_map, t, dtype, qat, operand)
    return (enc_state, dec_state, recon), bits


def _cell_sum(values, factor):
    """(N, H, W, 1) -> (N, H/F, W/F): sums over each FxF code cell."""
    n, h, w, _ = values.shape
    return values.reshape(n, h // factor, factor, w // factor, factor).sum(axis=(2, 4))


@functools.partial(jax.jit, static_argnames=("config", "iterations", "compute_dtype"))
def encode(params: dict, x: jax.Array, *, config: CodecConfig, iterations: int,
           code_mask: jax.Array | None = None, pixel_mask: jax.Array | None = None,
           iteration_map: jax.Array | None = None, compute_dtype: str | None = None):
    """Encode x with ``iterations`` iterations (inference: deterministic sign).

    Returns (codes int8 (T, N, h, w, bits), sse float32 (T, N, h, w), recon (N, H, W, 1)):
    sse[t] is the squared error of reconstruction t+1 per code cell (FxF block), summed over
    ``pixel_mask`` (all pixels if None), in normalised units; recon is the final
    reconstruction, as the decoder makes it. Codes of cells past their ``iteration_map``
    count are 0.
    """
    _check_shape(config, x)
    n, h, w, _ = x.shape
    weights = jnp.ones_like(x) if pixel_mask is None else pixel_mask
    dtype, operand = _resolve(config, compute_dtype)

    def body(carry, t):
        carry, bits = _step(params, config, carry, x, code_mask, None, dtype, iteration_map, t, operand=operand)
        sse = _cell_sum(jnp.square(x - _as_float(config, carry[2])) * weights, config.factor)
        return carry, (bits.astype(jnp.int8), sse)

    carry = _states(config, n, h, w)
    carry, (codes, sse) = jax.lax.scan(body, carry, jnp.arange(iterations))
    return codes, sse, _as_float(config, carry[2])


@functools.partial(jax.jit, static_argnames=("config", "compute_dtype"))
def decode(params: dict, codes: jax.Array, *, config: CodecConfig,
           code_mask: jax.Array | None = None, iteration_map: jax.Array | None = None,
           compute_dtype: str | None = None) -> jax.Array:
    """Reconstruct (N, H, W, 1) from codes (T, N, h, w, bits), all T iterations (each cell
    only up to its ``iteration_map`` count when given).

    With an ``iteration_map`` the loop stops after the batch's largest count: later
    iterations would add nothing to any pixel, so skipping them leaves the result exactly
    as it was and saves their FLOPs (a batch whose tiles all stopped at 2 of 11 stored
    iterations runs 2). The trip count is a traced value, so this compiles once per shape.
    """
    t, n, h, w, _ = codes.shape
    f = config.factor
    dtype, operand = _resolve(config, compute_dtype)
    _, dec_state, recon = _states(config, n, h * f, w * f)
    steps = t if iteration_map is None else jnp.minimum(t, jnp.max(iteration_map))

    def body(carry):
        i, dec_state, recon = carry
        bits = jax.lax.dynamic_index_in_dim(codes, i, keepdims=False).astype(jnp.float32)
        dec_state, recon, _ = _decode_step(params, config, dec_state, recon, bits,
                                           code_mask, iteration_map, i, dtype, operand=operand)
        return i + 1, dec_state, recon

    _, _, recon = jax.lax.while_loop(lambda c: c[0] < steps, body, (jnp.int32(0), dec_state, recon))
    return _as_float(config, recon)


def train_forward(params: dict, x: jax.Array, rng: jax.Array | None, *, config: CodecConfig,
                  iterations: int, compute_dtype: str = "float32") -> jax.Array:
    """Differentiable training path: mean |residual| after each iteration, shape (T,).

    ``rng`` drives the stochastic binarizer (``config.stochastic_binarizer``); pass None for
    deterministic sign with a straight-through gradient. ``compute_dtype`` "bfloat16" runs
    the convolutions in bf16 (parameters, states and the loss stay float32). An integer
    model trains through the float simulation of its integer decoder
    (:func:`integer.qat_decoder_step`, straight-through rounding: quantization-aware).
    """
    dtype = _dtype(compute_dtype)
    _check_shape(config, x)
    n, h, w, _ = x.shape
    use_rng = rng is not None and config.stochastic_binarizer
    keys = jax.random.split(rng if use_rng else jax.random.PRNGKey(0), iterations)

    def body(carry, key):
        carry, _ = _step(params, config, carry, x, None, key if use_rng else None, dtype, qat=True)
        return carry, jnp.mean(jnp.abs(x - carry[2]))

    carry = _states(config, n, h, w, qat=True)
    # Unrolled on CPU: XLA:CPU runs the backward pass of convolutions inside a while loop
    # ~25x slower than unrolled (measured: 2.9 s vs 0.11 s per iteration, batch 16x64x64).
    # GPUs run the loop well and compile a rolled loop much faster.
    _, l1 = jax.lax.scan(body, carry, keys, unroll=jax.default_backend() == "cpu")
    return l1
