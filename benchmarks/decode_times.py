"""End-to-end decode time of four files, in one process and with worker processes.

    python benchmarks/decode_times.py [--repeats 3] [--out benchmarks/results]

Public API only (``medcodec.compress``, ``medcodec.ratecontrol.compress_to``,
``medcodec.decompress``; images from ``medcodec.evaluate.evaluation_images``):

- the development CT abdomen slice (512x512), uniform 8 iterations
  (``medcodec.compress(..., iterations=8)``), and at 1 bpp by rate control
  (``medcodec.ratecontrol.compress_to(..., bpp=1.0)``), for comparison in the same run;
- the MR atlas volume (116x150x155) at 1 bpp by rate control
  (``medcodec.ratecontrol.compress_to(..., bpp=1.0)``);
- the MR atlas volume lossless (``medcodec.compress(..., iterations=2, max_error=0)``: two
  learned iterations under the bounded-error layer, as ``medcodec encode --lossless`` and
  ``benchmarks/bounded_error.py`` write it).

Each file is decoded once untimed (compiling, warming the cache), then timed ``--repeats``
times with ``medcodec.decompress(path, workers=1)`` (no worker processes) and with
``workers=2``; prints and writes the best and the worst of the repeats, with the machine, the
load average before and after (the timings mean little on a busy machine) and the measured
float32 matrix rate (a 1024^3 matmul under ``jax.jit``, as ``benchmarks/speed.py`` measures
it; hosts of the same name differ), to ``decode_times.txt``. Every decode is checked against the first. About 5 minutes on a
2-core CPU whose matrix rate is 0.19 TFLOP/s, most of it the rate-control encodes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import medcodec
from medcodec import ratecontrol
from medcodec.evaluate import evaluation_images, machine_description


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def matmul_tflops(n: int = 1024, repeats: int = 20) -> float:
    """Best float32 ``a @ a`` rate in TFLOP/s on the default JAX device."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = min(timed(lambda: f(a).block_until_ready())[0] for _ in range(repeats))
    return 2 * n**3 / best / 1e12


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    images = dict((e.name, a) for e, a in evaluation_images(["ct_abdomen_vrun", "mr_head_atlas"]))
    load = "load average %.2f %.2f %.2f" % os.getloadavg()
    lines = [f"# python benchmarks/decode_times.py --repeats {args.repeats} - {machine_description()}; "
             f"{load} at the start; float32 matmul {matmul_tflops():.2f} TFLOP/s",
             "# file | bpp (from bytes) | encode s | decode s, workers=1: best / worst | workers=2: best / worst"]
    print(lines[0], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("CT 512x512, uniform 8 iterations", "ct_abdomen_vrun",
             lambda a, path: medcodec.compress(a, path, iterations=8)),
            ("CT 512x512, rate control --bpp 1", "ct_abdomen_vrun",
             lambda a, path: ratecontrol.compress_to(a, path, bpp=1.0)),
            ("MR atlas 116x150x155, rate control --bpp 1", "mr_head_atlas",
             lambda a, path: ratecontrol.compress_to(a, path, bpp=1.0)),
            ("MR atlas 116x150x155, lossless", "mr_head_atlas",
             lambda a, path: medcodec.compress(a, path, iterations=2, max_error=0)),
        ]
        for i, (label, name, encode) in enumerate(cases):
            array = images[name]
            path = Path(tmp) / f"{i}.mlc"
            encode_s, stats = timed(lambda: encode(array, path))
            first, _ = medcodec.decompress(path, workers=1)  # compile, warm
            if "lossless" in label and not np.array_equal(first, array):
                raise SystemExit(f"{label}: not bit-exact")
            times = {}
            for workers in (1, 2):
                medcodec.decompress(path, workers=workers)  # warm (worker start-up) untimed
                ts = []
                for _ in range(args.repeats):
                    t, (out, _) = timed(lambda: medcodec.decompress(path, workers=workers))
                    if not np.array_equal(out, first):
                        raise SystemExit(f"{label}: workers={workers} decoded differently")
                    ts.append(t)
                times[workers] = ts
            line = (f"{label} | {stats.bpp:.3f} bpp | encode {encode_s:.1f} s | "
                    f"workers=1: {min(times[1]):.3f} / {max(times[1]):.3f} s | "
                    f"workers=2: {min(times[2]):.3f} / {max(times[2]):.3f} s")
            print(line, flush=True)
            lines.append(line)
    lines.append("# %s at the end" % ("load average %.2f %.2f %.2f" % os.getloadavg()))
    print(lines[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decode_times.txt").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'decode_times.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
