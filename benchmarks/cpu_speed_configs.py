"""Decode/encode seconds and FLOPs per pixel per iteration of candidate configs on this CPU.

    python benchmarks/cpu_speed_configs.py

Random weights (speed does not depend on them): one 512x512 slice, 8 iterations (1 bpp raw
for 32 code bits per 16x16 block), best of 3 after compiling.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from medcodec.model import codec
from medcodec.model.config import CONFIGS, TODERICI_2017, CodecConfig, flops_per_pixel

CANDIDATES = {
    "tiny (default)": CONFIGS["tiny"],
    "tiny, 3x3 hidden": CodecConfig(name="tiny-h3", hidden_kernel=3),
    "half width": CodecConfig(name="half", stem_channels=16, encoder_channels=(32, 48, 48),
                              decoder_channels=(48, 48, 32, 16)),
    "double width": CodecConfig(name="double", stem_channels=64, encoder_channels=(128, 192, 192),
                                decoder_channels=(192, 192, 128, 64)),
    "toderici2017 (1x1 hidden)": TODERICI_2017,
}


def best_of(fn, repeats=3):
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    x = jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (1, 512, 512, 1)).astype(np.float32))
    print(f"{'config':28} {'enc kFLOP/px/it':>16} {'dec kFLOP/px/it':>16} {'encode s':>9} {'decode s':>9}")
    for name, cfg in CANDIDATES.items():
        p = codec.init(cfg, jax.random.PRNGKey(0))
        f = flops_per_pixel(cfg)
        codes = codec.encode(p, x, config=cfg, iterations=8)[0]
        enc = best_of(lambda: codec.encode(p, x, config=cfg, iterations=8))
        dec = best_of(lambda: codec.decode(p, codes, config=cfg))
        print(f"{name:28} {f['encode_total'] / 1e3:16.1f} {f['decoder'] / 1e3:16.1f} {enc:9.2f} {dec:9.2f}")


if __name__ == "__main__":
    main()
