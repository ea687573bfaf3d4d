"""CPU decode time of one 512x512 slice at 8 iterations under different XLA CPU flags and
compute dtypes.

    python benchmarks/cpu_decode_flags.py     # prints one line per case, writes results/cpu_decode_flags.txt

Each case runs in a fresh process (XLA reads XLA_FLAGS at start-up), with the compilation
cache off, the shipped model and the codes of a real CT slice; best and median of 5 warm
decodes of the jitted network (entropy decoding excluded), the achieved GFLOP/s from the
decoder's FLOPs per pixel, and for bfloat16 the mean absolute difference from float32 in
grey levels of a 12-bit range. bfloat16 on a CPU is only worth a look on processors with
bf16 instructions (AVX-512 BF16, AMX).
"""

import os
import subprocess
import sys

CASES = [("", "float32"), ("--xla_cpu_multi_thread_eigen=false", "float32"),
         ("--xla_cpu_use_onednn=true", "float32"), ("--xla_cpu_enable_fast_math=true", "float32"),
         ("", "bfloat16"), ("--xla_cpu_use_onednn=true", "bfloat16")]

CHILD = """
import sys, time, numpy as np, jax.numpy as jnp
sys.path.insert(0, "BENCH")
from speed import real_slice
from medcodec.model import checkpoint
from medcodec.model import codec
from medcodec.model.config import flops_per_pixel
m = checkpoint.load(None); cfg = m.config; p = m.device_params
x = jnp.asarray(real_slice()[None, :, :, None])
codes, _, _ = codec.encode(p, x, config=cfg, iterations=8)
ref = np.asarray(codec.decode(p, codes, config=cfg))
out = np.asarray(codec.decode(p, codes, config=cfg, compute_dtype="DTYPE"))
ts = []
for _ in range(5):
    t = time.perf_counter(); codec.decode(p, codes, config=cfg, compute_dtype="DTYPE").block_until_ready()
    ts.append(time.perf_counter() - t)
flops = flops_per_pixel(cfg)["decoder"] * 512 * 512 * 8
diff = float(np.mean(np.abs(out - ref))) * 4095
print(f"best {min(ts):.3f} s, median {sorted(ts)[2]:.3f} s, {flops / min(ts) / 1e9:.0f} GFLOP/s, "
      f"mean |difference from float32| {diff:.2f} grey levels of 4095")
"""


def main() -> int:
    from medcodec.evaluate import machine_description

    here = os.path.dirname(os.path.abspath(__file__))
    lines = [f"# python benchmarks/cpu_decode_flags.py - {machine_description()}, idle machine"]
    for flags, dtype in CASES:
        env = dict(os.environ, XLA_FLAGS=flags, MEDCODEC_XLA_CACHE="0")
        child = CHILD.replace("BENCH", here).replace("DTYPE", dtype)
        out = subprocess.run([sys.executable, "-c", child], env=env, capture_output=True, text=True, timeout=600)
        line = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr.strip()[-200:]}"
        lines.append(f"{dtype}, XLA_FLAGS={flags or '(none)'}: {line}")
        print(lines[-1], flush=True)
    with open(os.path.join(here, "results", "cpu_decode_flags.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
