"""Encoder and decoder networks of one codec iteration (Flax modules).

Each module maps (recurrent state, input) -> (recurrent state, output) for a single
iteration; :mod:`medcodec.model.codec` runs them in ``lax.scan``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from .config import CodecConfig
from .layers import ConvLSTMCell, depth_to_space

State = tuple  # tuple of (c, h) pairs, one per ConvLSTM layer


class Encoder(nn.Module):
    """Residual (N, H, W, 1) -> pre-binarization codes (N, H/F, W/F, bits) in [-1, 1]."""

    config: CodecConfig
    dtype: jnp.dtype = jnp.float32  # compute dtype of the convolutions (bfloat16 on GPU/TPU)

    @nn.compact
    def __call__(self, state: State, residual: jax.Array):
        cfg = self.config
        x = nn.Conv(cfg.stem_channels, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype,
                    name="stem")(residual)
        new_state = []
        for i, features in enumerate(cfg.encoder_channels):
            carry, x = ConvLSTMCell(
                features, cfg.input_kernel, cfg.hidden_kernel, stride=2, dtype=self.dtype, name=f"lstm{i}"
            )(state[i], x)
            new_state.append(carry)
        x = nn.Conv(cfg.bits, (1, 1), use_bias=False, dtype=self.dtype, name="to_bits")(x)
        return tuple(new_state), jnp.tanh(x.astype(jnp.float32))


class Decoder(nn.Module):
    """Codes (N, H/F, W/F, bits) -> additive update of the reconstruction (N, H, W, 1)."""

    config: CodecConfig
    dtype: jnp.dtype = jnp.float32  # compute dtype of the convolutions (bfloat16 on GPU/TPU)

    @nn.compact
    def __call__(self, state: State, bits: jax.Array):
        cfg = self.config
        x = nn.Conv(cfg.decoder_channels[0], (1, 1), dtype=self.dtype, name="from_bits")(bits)
        new_state = []
        for i, features in enumerate(cfg.decoder_channels):
            carry, x = ConvLSTMCell(
                features, cfg.input_kernel, cfg.hidden_kernel, stride=1, dtype=self.dtype, name=f"lstm{i}"
            )(state[i], x)
            new_state.append(carry)
            x = depth_to_space(x, 2)
        x = nn.Conv(1, (1, 1), dtype=self.dtype, name="to_image")(x)
        return tuple(new_state), x.astype(jnp.float32)


def zero_states(cfg: CodecConfig, n: int, h: int, w: int, dtype=jnp.float32):
    """Initial (all-zero) encoder and decoder states for images of padded size h x w."""
    enc = []
    size = 2
    for c in cfg.encoder_channels:
        size *= 2
        z = jnp.zeros((n, h // size, w // size, c), dtype)
        enc.append((z, z))
    dec = []
    size = cfg.factor
    for c in cfg.decoder_channels:
        z = jnp.zeros((n, h // size, w // size, c), dtype)
        dec.append((z, z))
        size //= 2
    return tuple(enc), tuple(dec)
