"""Training throughput (steps/s, patches/s, achieved TFLOP/s) per config and compute dtype.

    python benchmarks/train_throughput.py --configs tiny --dtypes float32 bfloat16 --batch 64

Random patches (throughput does not depend on content); prints one JSON line per case with
the compile time, so the trade-off between width and training speed is measured on the
machine that will train. FLOPs count convolutions only (forward x3 for forward+backward).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from medcodec.train import loop as T
from medcodec.model import codec
from medcodec.model.config import flops_per_pixel, named_config


def measure(config, dtype: str, batch: int, patch: int, iterations: int, seconds: float) -> dict:
    mesh = T.make_mesh()
    opt = T.make_optimizer(1e-3, 1000)
    params = codec.init(config, jax.random.PRNGKey(0))
    opt_state = opt.init(params)
    params, opt_state = T.replicate((params, opt_state), mesh)
    step = T.make_train_step(config, opt, iterations, mesh, dtype)
    x = T.global_batch(np.random.default_rng(0).uniform(-0.5, 0.5, (batch, patch, patch, 1))
                       .astype(np.float32), mesh)
    key = jax.random.PRNGKey(1)
    t0 = time.time()
    params, opt_state, m = step(params, opt_state, x, key)
    jax.block_until_ready(m["loss"])
    compile_s = time.time() - t0
    n, t0 = 0, time.time()
    while time.time() - t0 < seconds:
        params, opt_state, m = step(params, opt_state, x, key)
        n += 1
        if n % 10 == 0:
            jax.block_until_ready(m["loss"])
    jax.block_until_ready(m["loss"])
    dt = time.time() - t0
    flops = 3 * flops_per_pixel(config)["encode_total"] * batch * patch * patch * iterations
    return {"config": config.name, "dtype": dtype, "batch": batch, "patch": patch,
            "iterations": iterations, "compile_s": round(compile_s, 1),
            "steps_per_s": round(n / dt, 2), "patches_per_s": round(n * batch / dt, 1),
            "tflops": round(flops * n / dt / 1e12, 2), "device": str(jax.devices()[0].device_kind),
            "devices": len(jax.devices())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["tiny"])
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--batch", type=int, nargs="+", default=[64])
    p.add_argument("--patch", type=int, default=64)
    p.add_argument("--iterations", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    for name in args.configs:
        for dtype in args.dtypes:
            for b in args.batch:
                print(json.dumps(measure(named_config(name), dtype, b, args.patch, args.iterations,
                                         args.seconds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
