"""CPU vs GPU bit identity of the integer model, in one command on a machine with a GPU.

    python benchmarks/gpu_bit_identity.py            # exit status 0: every case identical

Cases, each in a fresh process (XLA reads its settings at start-up; compilation cache off):

* the golden files tests/data/golden_int_*.mlc decoded on the CPU and on the GPU, the GPU
  with JAX's default matmul precision and with ``jax_default_matmul_precision`` forced to
  bfloat16 / tensorfloat32 / float32, ``precision`` "auto" / "bfloat16" / "float32" of
  ``medcodec.decompress``, and ``XLA_FLAGS=--xla_gpu_enable_triton_gemm=false``;
* the integer decoder network alone on random codes of a 512x512 slice at 8 iterations with
  each GEMM operand form (int8, float32-held, bfloat16-held) on the GPU vs the CPU;
* a lossless and a --max-error 2 file of a real CT crop encoded on the GPU, decoded on the
  CPU (and the other way round): exact / within the bound, no ReconstructionMismatchError.

Every decoded image is reduced to a SHA-256 prefix; the script prints a table of the hashes
and writes results/gpu_bit_identity.json. On a machine without a GPU the GPU cases are
reported as skipped (the CPU cases still run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GOLDEN = [str(REPO / "tests" / "data" / f"golden_int_{n}.mlc") for n in ("plain", "maxerr2", "lossless")]

DECODE = r"""
import hashlib, json, os, sys
import jax
prec = os.environ.get("MATMUL_PRECISION")
if prec:
    jax.config.update("jax_default_matmul_precision", prec)
import numpy as np, medcodec
h = lambda a: hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16]
out = {"platform": jax.devices()[0].platform}
for p in sys.argv[2:]:
    a, _ = medcodec.decompress(p, precision=sys.argv[1])
    out[os.path.basename(p)] = h(a)
print(json.dumps(out))
"""

NETWORK = r"""
import hashlib, json, os, sys
import jax, jax.numpy as jnp, numpy as np
prec = os.environ.get("MATMUL_PRECISION")
if prec:
    jax.config.update("jax_default_matmul_precision", prec)
from medcodec.model import checkpoint, codec
m = checkpoint.load(None)
codes = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), (8, 1, 32, 32, m.config.bits))
out = {"platform": jax.devices()[0].platform}
for op in ("int8", "float32", "bfloat16"):
    r = np.asarray(codec.decode(m.device_params, jnp.asarray(codes), config=m.config, compute_dtype=op))
    out[op] = hashlib.sha256(r.tobytes()).hexdigest()[:16]
print(json.dumps(out))
"""

ENCODE = r"""
import sys, numpy as np, pydicom, medcodec
from pydicom.data import get_testdata_file
a = np.asarray(pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array)
medcodec.compress(a, sys.argv[1], iterations=2, max_error=0, overwrite=True)
medcodec.compress(a, sys.argv[2], iterations=2, max_error=2, overwrite=True)
print("{}")
"""

CHECK = r"""
import json, sys, numpy as np, pydicom, medcodec
from pydicom.data import get_testdata_file
a = np.asarray(pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array).astype(np.int64)
ll, _ = medcodec.decompress(sys.argv[1]); be, _ = medcodec.decompress(sys.argv[2])
print(json.dumps({"lossless_exact": bool((ll == a).all()), "max_error": int(np.abs(be - a).max())}))
"""


def child(code: str, args: list[str], platform: str, **env) -> dict:
    e = dict(os.environ, JAX_PLATFORMS=platform, MEDCODEC_XLA_CACHE="0", **env)
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=e, cwd=REPO)
    if r.returncode:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def has_gpu() -> bool:
    r = child("import jax, json; print(json.dumps({'n': len(jax.devices('gpu'))}))", [], "cuda")
    return r.get("n", 0) > 0


def main() -> int:
    gpu = has_gpu()
    results = {}
    results["decode cpu"] = child(DECODE, ["auto", *GOLDEN], "cpu")
    results["network cpu"] = child(NETWORK, [], "cpu")
    if gpu:
        for prec in ("", "bfloat16", "tensorfloat32", "float32"):
            for p in ("auto", "bfloat16", "float32"):
                results[f"decode gpu matmul={prec or 'default'} precision={p}"] = child(
                    DECODE, [p, *GOLDEN], "cuda", MATMUL_PRECISION=prec)
            results[f"network gpu matmul={prec or 'default'}"] = child(NETWORK, [], "cuda", MATMUL_PRECISION=prec)
        results["decode gpu no-triton-gemm"] = child(DECODE, ["auto", *GOLDEN], "cuda",
                                                     XLA_FLAGS="--xla_gpu_enable_triton_gemm=false")
        with tempfile.TemporaryDirectory() as d:
            ll, be = os.path.join(d, "ll.mlc"), os.path.join(d, "be.mlc")
            child(ENCODE, [ll, be], "cuda")
            results["encoded gpu, decoded cpu"] = child(CHECK, [ll, be], "cpu")
            child(ENCODE, [ll, be], "cpu")
            results["encoded cpu, decoded gpu"] = child(CHECK, [ll, be], "cuda")
    ok = True
    ref_dec = {k: v for k, v in results["decode cpu"].items() if k != "platform"}
    ref_net = results["network cpu"]
    ops = [ref_net.get(op) for op in ("int8", "float32", "bfloat16")]
    ok &= len(set(ops)) == 1 and None not in ops
    for name, r in results.items():
        if name.startswith("decode"):
            same = {k: v for k, v in r.items() if k != "platform"} == ref_dec
        elif name.startswith("network"):
            same = all(r.get(op) == ops[0] for op in ("int8", "float32", "bfloat16"))
        else:
            same = r.get("lossless_exact") is True and r.get("max_error", 99) <= 2
        ok &= same
        print(f"{'OK  ' if same else 'DIFF'} {name}: {json.dumps(r)}")
    if not gpu:
        print("no GPU visible to JAX: GPU cases skipped")
    out = HERE / "results" / "gpu_bit_identity.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"gpu": gpu, "identical": bool(ok), "results": results}, indent=1))
    print(f"{'all identical' if ok else 'DIFFERENCES FOUND'}; wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
