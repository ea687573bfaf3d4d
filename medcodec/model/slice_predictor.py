"""A small ConvLSTM that predicts slice t of a volume from the decoded slices before it,
scanned along the slice axis (``lax.scan``, state carried from slice to slice).

Ablation for the inter-slice coder (:mod:`medcodec.coding.interslice`, measured by
``benchmarks/interslice_ablation.py``): the prediction replaces the reference
"decoded slice t-1" of the non-learned coder; the per-band weights, the intra/inter switch
and the key slices stay as they are.

Per step the network sees the decoded slice t-1 normalised to the volume's window
(:func:`medcodec.prep.normalise`: [-0.5, 0.5]), at half resolution (space-to-depth by
``config.factor``: (h, w) -> (h/f, w/f, f*f)), and outputs a residual in the same
normalised units on top of it:

    prediction_t = decoded_{t-1} + (hi - lo) * residual_t

The output head is zero-initialised, so an untrained model predicts exactly the previous
decoded slice (the non-learned reference). Layers: 3x3 conv to ``hidden`` features (tanh),
a ConvLSTM cell (3x3 conv over [features, h] -> 4 gates), a 3x3 conv head to f*f channels.
Float32, not integer-exact: a measurement, not a file format.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class SliceLSTMConfig:
    """hidden: ConvLSTM features; factor: space-to-depth factor (2: half resolution);
    kernel: conv kernel side."""

    hidden: int = 16
    factor: int = 2
    kernel: int = 3


TINY = SliceLSTMConfig(hidden=4, factor=2, kernel=3)


class _Conv(nn.Module):
    """A 'SAME' zero-padded conv as one matmul over the k*k shifted copies (im2col):
    on a CPU its gradient is ~10x faster than XLA's convolution's. Params as nn.Conv's."""

    features: int
    kernel: int
    kernel_init: object = nn.initializers.lecun_normal()
    bias_init: object = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        k, ci = self.kernel, x.shape[-1]
        w = self.param("kernel", self.kernel_init, (k, k, ci, self.features))
        b = self.param("bias", self.bias_init, (self.features,))
        xp = jnp.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
        h, wd = x.shape[1:3]
        patches = jnp.concatenate([xp[:, i:i + h, j:j + wd] for i in range(k) for j in range(k)], -1)
        return patches @ w.reshape(k * k * ci, self.features) + b


class _Net(nn.Module):
    config: SliceLSTMConfig

    @nn.compact
    def __call__(self, carry, x):
        """carry: (c, h) each (B, h/f, w/f, hidden); x: (B, h/f, w/f, f*f) normalised
        decoded slice t-1 -> (carry, residual (B, h/f, w/f, f*f))."""
        cfg = self.config
        k = cfg.kernel
        c, h = carry
        feat = jnp.tanh(_Conv(cfg.hidden, k, name="stem")(x))
        gates = _Conv(4 * cfg.hidden, k, name="lstm")(jnp.concatenate([feat, h], -1))
        i, f, o, g = jnp.split(gates, 4, -1)
        c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        out = _Conv(cfg.factor ** 2, k, name="head", kernel_init=nn.initializers.zeros)(h)
        return (c, h), out


def config_of(params) -> SliceLSTMConfig:
    """The config a parameter tree was made with (read from its kernel shapes)."""
    p = params["params"]
    kernel = p["stem"]["kernel"].shape[0]
    hidden = p["stem"]["kernel"].shape[-1]
    factor = int(round(np.sqrt(p["head"]["kernel"].shape[-1])))
    return SliceLSTMConfig(hidden=hidden, factor=factor, kernel=kernel)


def init(key, config: SliceLSTMConfig = SliceLSTMConfig()):
    """Parameters (a Flax tree) of a model with ``config``; output head zero."""
    f = config.factor
    z = jnp.zeros((1, 4, 4, config.hidden))
    return _Net(config).init(key, (z, z), jnp.zeros((1, 4, 4, f * f)))


def param_count(params) -> int:
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


def _to_depth(x, f):
    """(B, H, W) -> (B, H/f, W/f, f*f); H, W multiples of f."""
    b, hh, ww = x.shape
    return x.reshape(b, hh // f, f, ww // f, f).transpose(0, 1, 3, 2, 4).reshape(b, hh // f, ww // f, f * f)


def _from_depth(x, f):
    """Inverse of :func:`_to_depth`."""
    b, h, w, _ = x.shape
    return x.reshape(b, h, w, f, f).transpose(0, 1, 3, 2, 4).reshape(b, h * f, w * f)


def _padded_shape(h, w, f):
    return -(-h // f) * f, -(-w // f) * f


def _pad(x, f):
    """Edge-pad (B, H, W) to multiples of f."""
    hh, ww = _padded_shape(x.shape[-2], x.shape[-1], f)
    return jnp.pad(x, ((0, 0), (0, hh - x.shape[-2]), (0, ww - x.shape[-1])), mode="edge")


def zero_state(params, batch: int, height: int, width: int):
    """The state at a key slice: zeros, each (batch, ceil(h/f), ceil(w/f), hidden)."""
    cfg = config_of(params)
    hh, ww = _padded_shape(height, width, cfg.factor)
    z = jnp.zeros((batch, hh // cfg.factor, ww // cfg.factor, cfg.hidden), jnp.float32)
    return (z, z)


def step_normalised(params, state, prev):
    """One step: state, normalised decoded slice t-1 (B, h, w) float32 ->
    (state, normalised prediction of slice t (B, h, w) = prev + residual)."""
    cfg = config_of(params)
    f = cfg.factor
    h, w = prev.shape[-2:]
    state, out = _Net(cfg).apply(params, state, _to_depth(_pad(prev, f), f))
    return state, prev + _from_depth(out, f)[:, :h, :w]


def scan_normalised(params, state, decoded):
    """Scan along slices: decoded (T, B, h, w) normalised -> (state, predictions (T, B, h, w)),
    prediction[i] the prediction of slice i + 1 from decoded slices 0..i."""
    return jax.lax.scan(lambda s, x: step_normalised(params, s, x), state, decoded)


def _norm(x, window):
    lo, hi = window
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    return ((jnp.asarray(x, jnp.float32) - lo) * scale - 0.5).astype(jnp.float32)


@jax.jit
def _step_jit(params, state, prev_norm):
    return step_normalised(params, state, prev_norm)


@jax.jit
def _scan_jit(params, decoded_norm):
    state = zero_state(params, 1, *decoded_norm.shape[-2:])
    return scan_normalised(params, state, decoded_norm[:, None])[1][:, 0]


def _to_pixels(prev, pred_norm, prev_norm, window):
    """prev (pixels) + (hi - lo) * (pred_norm - prev_norm): float64, exactly prev for a zero
    residual."""
    lo, hi = window
    residual = np.asarray(pred_norm, np.float64) - np.asarray(prev_norm, np.float64)
    return np.asarray(prev, np.float64) + (hi - lo) * residual


def predict_volume(params, decoded: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """decoded (S, h, w) in pixels, window (lo, hi) (default: the slices' own) ->
    predictions (S - 1, h, w) float64 in pixels, row i the prediction of slice i + 1 from
    decoded slices 0..i, one scan from a zero state."""
    window = window if window is not None else (float(np.min(decoded)), float(np.max(decoded)))
    xn = _norm(decoded[:-1], window)
    pred = _scan_jit(params, xn)
    return _to_pixels(decoded[:-1], pred, xn, window)


class Stepper:
    """Slice-by-slice use in a closed-loop coder: ``reset()`` at a key slice, then
    ``step(decoded_prev)`` -> prediction of the next slice (h, w) float64 in pixels."""

    def __init__(self, params, shape: tuple[int, int], window: tuple[float, float]):
        self.params, self.shape, self.window = params, shape, window
        self.reset()

    def reset(self) -> None:
        self.state = zero_state(self.params, 1, *self.shape)

    def step(self, prev: np.ndarray) -> np.ndarray:
        xn = _norm(prev[None], self.window)
        self.state, pred = _step_jit(self.params, self.state, xn)
        return _to_pixels(prev, pred[0], xn[0], self.window)


def save(path, params) -> None:
    """Parameters to an .npz (flattened '/'-joined names)."""
    flat = {"/".join(str(getattr(k, "key", k)) for k in kp): np.asarray(v)
            for kp, v in jax.tree_util.tree_flatten_with_path(params)[0]}
    np.savez(path, **flat)


def load(path):
    """Inverse of :func:`save`."""
    with np.load(path) as z:
        tree: dict = {}
        for name in z.files:
            node = tree
            *parents, leaf = name.split("/")
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = jnp.asarray(z[name])
    return tree
