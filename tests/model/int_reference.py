"""A pure-numpy int64 reference of the integer decoder, written from the number formats in
medcodec/model/integer.py's docstring, independently of its JAX code: convolutions as sums
over kernel offsets (no im2col, input and hidden convolutions separately), tables from
Python's math module, rounding by floor division."""

from __future__ import annotations

import math

import numpy as np


def rshift(v, s):
    """v / 2^s rounded half up (floor((v + 2^(s-1)) / 2^s)); s may be negative (exact)."""
    v = np.asarray(v, np.int64)
    s = np.broadcast_to(np.asarray(s, np.int64), v.shape)
    out = np.empty_like(v)
    pos = s > 0
    out[pos] = np.floor_divide(v[pos] + (np.int64(1) << (s[pos] - 1)), np.int64(1) << s[pos])
    out[~pos] = v[~pos] * (np.int64(1) << (-s[~pos]))
    return out


def ref_tables(q):
    n = 2 * q.lut_range * 2**q.lut_frac_bits
    one = 2**q.act_frac_bits
    sig = [round_half_even(one / (1 + math.exp(-(j - n // 2) / 2**q.lut_frac_bits))) for j in range(n)]
    tanh = [round_half_even(one * math.tanh((j - n // 2) / 2**q.lut_frac_bits)) for j in range(n)]
    return np.array(sig, np.int64), np.array(tanh, np.int64)


def round_half_even(x: float) -> int:
    return int(round(x))


def conv3(x, k):
    """SAME 3x3 convolution of int64 x (N, H, W, C) with int64 kernel (3, 3, C, O)."""
    n, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, w, k.shape[-1]), np.int64)
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("nhwc,co->nhwo", xp[:, dy:dy + h, dx:dx + w], k[dy, dx])
    return out


def d2s(x):
    n, h, w, c = x.shape
    out = np.zeros((n, 2 * h, 2 * w, c // 4), np.int64)
    for by in range(2):
        for bx in range(2):
            out[:, by::2, bx::2, :] = x[..., (by * 2 + bx) * (c // 4):(by * 2 + bx + 1) * (c // 4)]
    return out


def decode(ip: dict, config, codes: np.ndarray) -> np.ndarray:
    """Reconstruction (N, H, W, 1) int64 in Q(recon_frac_bits) from codes (T, N, h, w, bits).

    ``ip``: the integer weights of :func:`medcodec.model.integer.prepare` (only the integer
    weights, biases and shifts are used; the tables are recomputed here)."""
    q = config.quant
    sig, tanh = ref_tables(q)
    half = len(sig) // 2
    amax = 2**q.act_frac_bits - 1
    t_, n, hc, wc, _ = codes.shape
    f = config.factor
    states = []
    size = f
    for c in config.decoder_channels:
        z = np.zeros((n, hc * f // size, wc * f // size, c), np.int64)
        states.append([z, z.copy()])
        size //= 2
    recon = np.zeros((n, hc * f, wc * f, 1), np.int64)

    def lut(tab, v):
        return tab[np.clip(v, -half, half - 1) + half]

    for t in range(t_):
        b = codes[t].astype(np.int64)
        fb = ip["from_bits"]
        acc = np.einsum("nhwk,ko->nhwo", b, np.asarray(fb["w"], np.int64)) + fb["b"]
        x = np.clip(rshift(acc, fb["shift"]), -amax, amax)
        cin = config.decoder_channels[0]
        for i, ch in enumerate(config.decoder_channels):
            p = ip[f"lstm{i}"]
            w = np.asarray(p["w"], np.int64)
            kx = w[: 9 * cin].reshape(3, 3, cin, 4 * ch)
            kh = w[9 * cin:]
            c, h = states[i]
            acc = conv3(x, kx) + np.einsum("nhwc,co->nhwo", h, kh) + np.asarray(p["b"], np.int64)
            z = rshift(acc, p["shift"])
            gi, gf, gg, go = (z[..., j * ch:(j + 1) * ch] for j in range(4))
            a, cf = q.act_frac_bits, q.cell_frac_bits
            c = rshift(lut(sig, gf) * c, a) + rshift(lut(sig, gi) * lut(tanh, gg), 2 * a - cf)
            c = np.clip(c, -q.cell_range * 2**cf, q.cell_range * 2**cf - 1)
            h = np.clip(rshift(lut(sig, go) * lut(tanh, rshift(c, cf - q.lut_frac_bits)), a), -amax, amax)
            states[i] = [c, h]
            x = d2s(h)
            cin = ch // 4
        ti = ip["to_image"]
        acc = np.einsum("nhwc,co->nhwo", x, np.asarray(ti["w"], np.int64)) + np.asarray(ti["b"], np.int64)
        recon = np.clip(recon + rshift(acc, ti["shift"]), -(2**23), 2**23)
    return recon
