"""CPU decode time of one 512x512 slice at 8 iterations under different XLA CPU flags.

    python benchmarks/cpu_decode_flags.py            # prints one line per flag set

Each flag set runs in a fresh process (XLA reads XLA_FLAGS at start-up), with the
compilation cache off, the shipped model and random codes; best and median of 5 warm
decodes of the jitted network (entropy decoding excluded). Also prints the achieved
GFLOP/s from the model's decoder FLOPs per pixel.
"""

import os
import subprocess
import sys

FLAG_SETS = ["", "--xla_cpu_multi_thread_eigen=false", "--xla_cpu_use_onednn=true",
             "--xla_cpu_enable_fast_math=true"]

CHILD = """
import time, numpy as np, jax.numpy as jnp
from medcodec import checkpoint
from medcodec.model import codec
from medcodec.model.config import flops_per_pixel
m = checkpoint.load(None); cfg = m.config; p = m.device_params
x = jnp.asarray(np.random.default_rng(0).uniform(-0.5, 0.5, (1, 512, 512, 1)).astype(np.float32))
codes, _, _ = codec.encode(p, x, config=cfg, iterations=8)
codec.decode(p, codes, config=cfg).block_until_ready()
ts = []
for _ in range(5):
    t = time.perf_counter(); codec.decode(p, codes, config=cfg).block_until_ready(); ts.append(time.perf_counter() - t)
flops = flops_per_pixel(cfg)["decoder"] * 512 * 512 * 8
print(f"best {min(ts):.3f} s, median {sorted(ts)[2]:.3f} s, {flops / min(ts) / 1e9:.0f} GFLOP/s")
"""


def main() -> int:
    for flags in FLAG_SETS:
        env = dict(os.environ, XLA_FLAGS=flags, MEDCODEC_XLA_CACHE="0")
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
        line = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr.strip()[-200:]}"
        print(f"XLA_FLAGS={flags or '(none)'}: {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
