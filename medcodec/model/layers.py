"""Building blocks of the recurrent codec: a strided ConvLSTM cell, the binarizer and
depth-to-space. All tensors are NHWC.

``flax.linen.ConvLSTMCell`` uses one kernel and stride for the input and the hidden path;
the codec needs a stride-2 input convolution, a (cheaper, often 1x1) hidden kernel and a
carry kept at the output resolution, hence this small cell.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _forget_bias_init(key, shape, dtype=jnp.float32):
    """Bias init that opens the forget gate (gate order i, f, g, o)."""
    n = shape[0] // 4
    return jnp.zeros(shape, dtype).at[n : 2 * n].set(1.0)


class ConvLSTMCell(nn.Module):
    """ConvLSTM with separate input and hidden kernels.

    Input x (N, H, W, Cin), carry (c, h) each (N, H/stride, W/stride, features).
    Returns the new carry and h.
    """

    features: int
    input_kernel: int = 3
    hidden_kernel: int = 1
    stride: int = 1
    dtype: jnp.dtype = jnp.float32  # convolution compute dtype; the state stays float32

    @nn.compact
    def __call__(self, carry, x):
        c, h = carry
        gates = nn.Conv(
            4 * self.features,
            (self.input_kernel, self.input_kernel),
            strides=(self.stride, self.stride),
            padding="SAME",
            bias_init=_forget_bias_init,
            dtype=self.dtype,
            name="input_conv",
        )(x)
        gates = gates + nn.Conv(
            4 * self.features,
            (self.hidden_kernel, self.hidden_kernel),
            padding="SAME",
            use_bias=False,
            dtype=self.dtype,
            name="hidden_conv",
        )(h)
        i, f, g, o = jnp.split(gates.astype(jnp.float32), 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (c, h), h


def binarize(x: jax.Array, rng: jax.Array | None = None) -> jax.Array:
    """Map x in [-1, 1] to {-1, +1}.

    With ``rng`` (training): stochastic sign, P(+1) = (1 + x) / 2, whose expectation is x
    (Toderici et al. 2016); without: deterministic sign with sign(0) = +1. Either way the
    gradient passes straight through.
    """
    if rng is None:
        b = jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)
    else:
        u = jax.random.uniform(rng, x.shape, x.dtype, -1.0, 1.0)
        b = jnp.where(u < x, 1.0, -1.0).astype(x.dtype)
    return x + jax.lax.stop_gradient(b - x)


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
    """(N, H, W, C * block^2) -> (N, H * block, W * block, C)."""
    n, h, w, c = x.shape
    oc = c // (block * block)
    x = x.reshape(n, h, w, block, block, oc)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h * block, w * block, oc)
