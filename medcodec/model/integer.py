"""The integer-exact decoder: the same integers, hence the same image, on every machine.

A model whose config has ``quant`` (:class:`~medcodec.model.config.QuantConfig`) decodes
with this network instead of the float one; the encoder stays float (it only chooses the
codes) but its closed loop runs this decoder, so encoder and decoder agree bit for bit.

Number formats (Qn: an integer v standing for v / 2^n):

* codes b in {-1, 0, +1}; activations h (and the ``from_bits`` output x) in Q7 (Q5 for x),
  clipped to |v| <= 127;
* weights: per output channel a power-of-two scale 2^-e, |w_q| <= 127 (8 bits); biases in
  accumulator units, |b_q| <= 2^20;
* the ConvLSTM gate accumulator of output channel n is in Q(T_n); sigmoid and tanh are
  1024-entry tables over z in [-8, 8) at a step of 1/64, with outputs in Q7 (0..128,
  -128..128); the cell state c is Q12 int32, clipped to |c| < 16; the reconstruction Q16.
* rescaling is an arithmetic shift with round-half-up: ``(v + 2^(s-1)) >> s``.

The GEMMs run as int8 x int8 -> int32 by default (the faster form on the CPU; integer
arithmetic, exact by construction) or, as an equivalent choice per backend, on the same
integers held in float32 or bfloat16. Why the float forms, too, give the same integers in
any summation order: every convolution is one GEMM (im2col + ``dot_general``, so no
Winograd or FFT algorithm can be picked) on float operands that hold integers: |activation| <= 127 and |weight| <= 127 are exact in float32, TF32 (11
significant bits) and bfloat16 (8), so the backend's input rounding changes nothing; each
product is below 2^14, and every partial sum, in any order and any split, is bounded by
sum |a||w| + |b| <= K * 127 * 127 + 2^20, which for the largest window of the shipped
model (K = 3*3*96 + 96 = 960 for the first ConvLSTM, input and hidden convolution in one
GEMM) is 16,532,416 < 2^24: every partial sum is an exactly representable integer, so
float addition is exact and associative on it. :func:`prepare` checks this bound for every
layer and refuses a config that breaks it. Everything after the GEMM (bias, tables,
shifts, cell update, depth-to-space, reconstruction) is int32 arithmetic.
"""

from __future__ import annotations

import numpy as np

from ..errors import CheckpointError
from .config import CodecConfig, QuantConfig

F32_EXACT = 2**24  # integers of magnitude <= 2^24 are exact in float32


# ---------------------------------------------------------------- numpy: weights and tables

def weight_exponent(m: np.ndarray, wmax: int) -> np.ndarray:
    """Per channel, the largest integer e with rint(m * 2^e) <= wmax (m = max |w| >= 0)."""
    m = np.asarray(m, np.float64)
    safe = np.where(m > 0, m, 1.0)
    e = np.floor(np.log2(wmax / safe)).astype(np.int64)  # an estimate, corrected exactly below
    for _ in range(3):
        e = np.where(np.rint(np.ldexp(safe, e)) > wmax, e - 1, e)
        e = np.where(np.rint(np.ldexp(safe, e + 1)) <= wmax, e + 1, e)
    return np.where(m > 0, e, 0)


def tables(q: QuantConfig) -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, tanh) lookup tables, int32, entry j for z = (j - n/2) / 2^lut_frac_bits."""
    n = 2 * q.lut_range * 2**q.lut_frac_bits
    z = (np.arange(n, dtype=np.float64) - n // 2) / 2**q.lut_frac_bits
    one = 2**q.act_frac_bits
    sig = np.rint(one / (1.0 + np.exp(-z))).astype(np.int32)
    tanh = np.rint(one * np.tanh(z)).astype(np.int32)
    return sig, tanh


def _quantize_matrix(blocks, in_frac, q: QuantConfig, bias=None, min_exponent=None):
    """Quantize a GEMM whose rows come in ``blocks`` of float weights (K_i, N), block i
    multiplying activations in Q(in_frac[i]). Returns (W_q int8 (K, N), b_q int32 (N,),
    T int32 (N,)): the accumulator of output n is in Q(T_n)."""
    wmax = q.weight_max
    t = None
    for w, a in zip(blocks, in_frac):
        e = weight_exponent(np.abs(w).max(axis=0), wmax) + a
        t = e if t is None else np.minimum(t, e)
    if min_exponent is not None:
        t = np.maximum(t, min_exponent)
    rows = [np.clip(np.rint(np.ldexp(np.asarray(w, np.float64), t - a)), -wmax, wmax) for w, a in zip(blocks, in_frac)]
    wq = np.concatenate(rows, axis=0).astype(np.int8)
    if bias is None:
        bq = np.zeros(wq.shape[1], np.int32)
    else:
        bq = np.clip(np.rint(np.ldexp(np.asarray(bias, np.float64), t)), -q.bias_max, q.bias_max).astype(np.int32)
    return wq, bq, t.astype(np.int32)


def accumulator_bounds(config: CodecConfig) -> dict[str, int]:
    """{layer: the largest |partial sum| any GEMM order can reach} (all < 2^24)."""
    q = config.quant
    out = {"from_bits": config.bits * 1 * q.weight_max + q.bias_max}
    cin = config.decoder_channels[0]
    for i, c in enumerate(config.decoder_channels):
        k = config.input_kernel**2 * cin + config.hidden_kernel**2 * c
        out[f"lstm{i}"] = k * q.act_max * q.weight_max + q.bias_max
        cin = c // 4
    out["to_image"] = cin * q.act_max * q.weight_max + q.bias_max
    return out


def prepare(config: CodecConfig, decoder_params: dict) -> dict:
    """The integer decoder's parameters (numpy) from the float decoder weights.

    Exact numpy arithmetic only (frexp-free exponent search with ldexp, rint), so every
    machine derives the same integers from the same checkpoint.
    """
    q = config.quant
    if q is None:
        raise CheckpointError(f"config {config.name!r} has no integer decoder")
    if config.hidden_kernel != 1:
        raise CheckpointError("the integer decoder supports 1x1 hidden kernels only")
    for name, bound in accumulator_bounds(config).items():
        if bound >= F32_EXACT:
            raise CheckpointError(f"integer decoder layer {name}: partial sums reach {bound} >= 2^24, "
                                  "float32 sums would not be exact (lower weight_max)")
    p = {k: {kk: np.asarray(vv, np.float64) if not isinstance(vv, dict) else
             {k3: np.asarray(v3, np.float64) for k3, v3 in vv.items()} for kk, vv in v.items()}
         for k, v in decoder_params.items()}
    out = {}
    fb = p["from_bits"]
    wq, bq, t = _quantize_matrix([fb["kernel"].reshape(config.bits, -1)], [0], q, fb["bias"],
                                 min_exponent=q.from_bits_frac_bits)
    out["from_bits"] = {"w": wq, "b": bq, "shift": t - q.from_bits_frac_bits}
    in_frac = q.from_bits_frac_bits
    for i, c in enumerate(config.decoder_channels):
        lp = p[f"lstm{i}"]
        kx = lp["input_conv"]["kernel"]
        kh = lp["hidden_conv"]["kernel"]
        wx = kx.reshape(-1, kx.shape[-1])
        wh = kh.reshape(-1, kh.shape[-1])
        wq, bq, t = _quantize_matrix([wx, wh], [in_frac, q.act_frac_bits], q, lp["input_conv"]["bias"],
                                     min_exponent=q.lut_frac_bits)
        out[f"lstm{i}"] = {"w": wq, "b": bq, "shift": t - q.lut_frac_bits}
        in_frac = q.act_frac_bits
    ti = p["to_image"]
    wq, bq, t = _quantize_matrix([ti["kernel"].reshape(-1, 1)], [q.act_frac_bits], q, ti["bias"])
    out["to_image"] = {"w": wq, "b": bq, "shift": t - q.recon_frac_bits}
    sig, tanh = tables(q)
    out["tables"] = {"sigmoid": sig, "tanh": tanh}
    return out


# ---------------------------------------------------------------- JAX: the integer network

def shift_round(v, s):
    """v / 2^s rounded half up, for int32 v and per-channel int32 s of any sign."""
    import jax.numpy as jnp

    pos = jnp.maximum(s, 0)
    neg = jnp.maximum(-s, 0)
    half = jnp.where(pos > 0, jnp.left_shift(jnp.int32(1), jnp.maximum(pos - 1, 0)), 0)
    return jnp.left_shift(jnp.right_shift(v + half, pos), neg)


OPERANDS = ("int8", "float32", "bfloat16")


def _gemm(x, w, operand: str = "int8"):
    """x (..., K) @ w (K, N), both holding integers of magnitude <= 127, as int32: one GEMM.

    ``operand`` is only a speed choice, every one gives the same integers: "int8" (int8 x
    int8 -> int32, exact by construction; 5x faster than float32 on this project's CPU,
    benchmarks/int_gemm.py), "float32" or "bfloat16" (the integers held in floats; exact
    because |v| <= 127 is exact in both, products and every partial sum stay below 2^24,
    and ``precision=HIGHEST`` keeps float32 operands from being rounded to bf16/TF32).
    """
    import jax
    import jax.numpy as jnp

    dims = (((x.ndim - 1,), (0,)), ((), ()))
    if operand == "int8":
        return jax.lax.dot_general(x.astype(jnp.int8), w.astype(jnp.int8), dims, preferred_element_type=jnp.int32)
    dt = jnp.float32 if operand == "float32" else jnp.bfloat16
    y = jax.lax.dot_general(x.astype(dt), w.astype(dt), dims, precision=jax.lax.Precision.HIGHEST,
                            preferred_element_type=jnp.float32)
    return y.astype(jnp.int32)


def im2col3(x):
    """(N, H, W, C) -> (N, H, W, 9C): the 3x3 SAME windows, rows ordered (dy, dx, c) as a
    flattened (3, 3, C, out) kernel."""
    import jax.numpy as jnp

    n, h, w, c = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.concatenate([xp[:, dy:dy + h, dx:dx + w, :] for dy in range(3) for dx in range(3)], axis=-1)


def _lookup(table, idx):
    """table[idx] for indices already clipped into range (no second bounds check)."""
    return table.at[idx].get(mode="promise_in_bounds")


def _lstm(p, tabs, q: QuantConfig, carry, x, operand):
    import jax.numpy as jnp

    c, h = carry
    small = jnp.int8 if operand == "int8" else jnp.float32
    patches = jnp.concatenate([im2col3(x.astype(small)), h.astype(small)], axis=-1)
    acc = _gemm(patches, p["w"], operand) + p["b"]
    half = tabs["sigmoid"].shape[0] // 2
    idx = jnp.clip(shift_round(acc, p["shift"]), -half, half - 1) + half
    # one lookup for all four gates: sigmoid for i, f, o and tanh for g, from the tables
    # side by side (g's indices offset by one table length)
    n = c.shape[-1]
    both = jnp.concatenate([tabs["sigmoid"], tabs["tanh"]])
    offset = jnp.concatenate([jnp.zeros(2 * n, jnp.int32), jnp.full(n, 2 * half, jnp.int32), jnp.zeros(n, jnp.int32)])
    si, sf, tg, so = jnp.split(_lookup(both, idx + offset), 4, axis=-1)
    tanh = tabs["tanh"]
    a = q.act_frac_bits
    cf = q.cell_frac_bits
    cmax = q.cell_range * 2**cf
    c = shift_round(sf * c, a) + shift_round(si * tg, 2 * a - cf)
    c = jnp.clip(c, -cmax, cmax - 1)
    ci = jnp.clip(shift_round(c, cf - q.lut_frac_bits), -half, half - 1) + half
    h = jnp.clip(shift_round(so * _lookup(tanh, ci), a), -q.act_max, q.act_max)
    return (c, h), h


def _depth_to_space(x):
    n, h, w, c = x.shape
    oc = c // 4
    return x.reshape(n, h, w, 2, 2, oc).transpose(0, 1, 3, 2, 4, 5).reshape(n, h * 2, w * 2, oc)


def decoder_step(ip: dict, config: CodecConfig, state, bits, operand: str = "int8"):
    """One decoder iteration: codes (N, h, w, bits) in {-1, 0, 1} -> (state, delta int32
    (N, H, W, 1) in Q(recon_frac_bits)). ``state``: ((c, h) int32 per layer). ``operand``:
    the GEMMs' operand type (:func:`_gemm`; the result does not depend on it)."""
    import jax.numpy as jnp

    if operand not in OPERANDS:
        raise ValueError(f"operand must be one of {', '.join(OPERANDS)}, got {operand!r}")
    q = config.quant
    fb = ip["from_bits"]
    x = jnp.clip(shift_round(_gemm(bits, fb["w"], operand) + fb["b"], fb["shift"]), -q.act_max, q.act_max)
    new_state = []
    for i in range(len(config.decoder_channels)):
        carry, x = _lstm(ip[f"lstm{i}"], ip["tables"], q, state[i], x, operand)
        new_state.append(carry)
        x = _depth_to_space(x)
    ti = ip["to_image"]
    delta = shift_round(_gemm(x, ti["w"], operand) + ti["b"], ti["shift"])
    return tuple(new_state), delta


def recon_limit(config: CodecConfig) -> int:
    """|reconstruction| is clipped to 2^23 in Q16 units, so its float32 image is exact."""
    return 2**23


def to_float(recon_q, config: CodecConfig):
    """Q16 int32 reconstruction -> float32 (exact: |v| <= 2^23, power-of-two scale)."""
    import jax.numpy as jnp

    return recon_q.astype(jnp.float32) * jnp.float32(2.0 ** -config.quant.recon_frac_bits)


# ---------------------------------------------------------------- JAX: quantization-aware training

def _ste_round(x):
    import jax

    return x + jax.lax.stop_gradient(jax.numpy.round(x) - x)


def _fake_weights(blocks, in_frac, q: QuantConfig, min_exponent=None):
    """Fake-quantized float weights (straight-through), same scales as :func:`prepare`."""
    import jax
    import jax.numpy as jnp

    t = None
    for w, a in zip(blocks, in_frac):
        m = jax.lax.stop_gradient(jnp.max(jnp.abs(w), axis=0))
        e = jnp.floor(jnp.log2((q.weight_max + 0.5) / jnp.maximum(m, 1e-12))) + a
        t = e if t is None else jnp.minimum(t, e)
    if min_exponent is not None:
        t = jnp.maximum(t, min_exponent)
    out = []
    for w, a in zip(blocks, in_frac):
        s = jnp.exp2(t - a)
        out.append(jnp.clip(_ste_round(w * s), -q.weight_max, q.weight_max) / s)
    return out, t


def _fake_act(x, frac, q: QuantConfig):
    s = 2.0**frac
    return _clip_ste(_ste_round(x * s), -q.act_max, q.act_max) / s


def _clip_ste(x, lo, hi):
    import jax.numpy as jnp

    return jnp.clip(x, lo, hi)


def _fake_table(fn, z, q: QuantConfig):
    """sigmoid/tanh as the table computes it: z rounded to the table's step and range,
    the output rounded to Q7; gradients straight through both roundings."""
    import jax.numpy as jnp

    s = 2.0**q.lut_frac_bits
    zq = jnp.clip(_ste_round(z * s), -q.lut_range * s, q.lut_range * s - 1) / s
    one = 2.0**q.act_frac_bits
    return _ste_round(fn(zq) * one) / one


def qat_decoder_step(params: dict, config: CodecConfig, state, bits):
    """Float simulation of :func:`decoder_step` for training: (state, delta float32)."""
    import jax
    import jax.numpy as jnp

    q = config.quant
    fb = params["from_bits"]
    (w,), _ = _fake_weights([fb["kernel"].reshape(config.bits, -1)], [0], q, q.from_bits_frac_bits)
    x = _fake_act(bits @ w + fb["bias"], q.from_bits_frac_bits, q)
    in_frac = q.from_bits_frac_bits
    new_state = []
    cs = 2.0**q.cell_frac_bits
    for i, c_feat in enumerate(config.decoder_channels):
        lp = params[f"lstm{i}"]
        kx = lp["input_conv"]["kernel"]
        kh = lp["hidden_conv"]["kernel"]
        (wx, wh), _ = _fake_weights([kx.reshape(-1, kx.shape[-1]), kh.reshape(-1, kh.shape[-1])],
                                    [in_frac, q.act_frac_bits], q, q.lut_frac_bits)
        c, h = state[i]
        patches = jnp.concatenate([im2col3(x), h], axis=-1)
        gates = jax.lax.dot_general(patches, jnp.concatenate([wx, wh], axis=0),
                                    (((3,), (0,)), ((), ()))) + lp["input_conv"]["bias"]
        gi, gf, gg, go = jnp.split(gates, 4, axis=-1)
        sg = lambda z: _fake_table(jax.nn.sigmoid, z, q)  # noqa: E731
        th = lambda z: _fake_table(jnp.tanh, z, q)  # noqa: E731
        c = sg(gf) * c + sg(gi) * th(gg)
        c = jnp.clip(_ste_round(c * cs), -q.cell_range * cs, q.cell_range * cs - 1) / cs
        h = _fake_act(sg(go) * th(c), q.act_frac_bits, q)
        new_state.append((c, h))
        x = _depth_to_space(h)
        in_frac = q.act_frac_bits
    ti = params["to_image"]
    (w,), _ = _fake_weights([ti["kernel"].reshape(-1, 1)], [q.act_frac_bits], q)
    delta = x @ w + ti["bias"]
    r = 2.0**q.recon_frac_bits
    return tuple(new_state), _ste_round(delta * r) / r


def zero_int_states(config: CodecConfig, n: int, h: int, w: int, dtype=None):
    """All-zero decoder states (int32 by default) for images of padded size h x w."""
    import jax.numpy as jnp

    from .networks import zero_states

    return zero_states(config, n, h, w, jnp.int32 if dtype is None else dtype)[1]
