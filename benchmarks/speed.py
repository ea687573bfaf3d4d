"""Encode/decode speed of the network against OpenJPEG and HTJ2K, on this machine, in one run.

    python benchmarks/speed.py                       # CPU here; on a GPU machine the same
    python benchmarks/speed.py --volume-slices 300 --dtypes float32 bfloat16
    python benchmarks/speed.py --models tiny-1bc2381c DEFAULT --iterations 8   # float vs integer, same run

Cases: one 512x512 slice (latency), a 512x512xS volume in slice batches (throughput), at
the iteration counts that give about 0.5, 1 and 2 bpp with the shipped model. Times the
jitted network (``codec.encode`` / ``codec.decode``, after compilation, inputs already on
the device) and JPEG 2000 / HTJ2K (imagecodecs, one CPU thread) on the same real CT slice.
Also measures the device's dense matrix rate, so the network's achieved FLOP/s is put
against what the hardware can do, and (with ``--save-codes``) saves codes and decoded
slices so reconstructions can be compared across devices. Writes a CSV and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from medcodec.model import checkpoint
from medcodec.model import codec
from medcodec.model.config import flops_per_pixel

HERE = Path(__file__).resolve().parent


def timeit(fn, min_seconds: float = 2.0, min_runs: int = 3) -> float:
    """Median seconds per call of fn() (which must block until its result is ready)."""
    fn()  # compile / warm
    times = []
    t_end = time.perf_counter() + min_seconds
    while len(times) < min_runs or time.perf_counter() < t_end:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def matmul_rate(dtype) -> float:
    """Measured dense matmul TFLOP/s of the default device (4096^3 on GPU, 1024^3 on CPU)."""
    n = 4096 if jax.default_backend() != "cpu" else 1024
    a = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a: a @ a)
    return 2 * n**3 / timeit(lambda: f(a).block_until_ready(), 1.0) / 1e12


def real_slice(npy: str | None = None) -> np.ndarray:
    """A real 512x512 CT slice (the development CT, or a carried .npy copy on an offline
    machine), normalised like the codec normalises (float32 [-0.5, 0.5])."""
    if npy:
        v = np.load(npy).astype(np.float32)
    else:
        from medcodec.data.catalog import entries
        from medcodec.data.fetch import load_volume, path_of

        e = next(x for x in entries("eval") if x.name == "ct_abdomen_vrun")
        v = load_volume(path_of(e))[0]
    return ((v - v.min()) / (v.max() - v.min()) - 0.5).astype(np.float32)


def _at_rate(encode, bpp: float, size: int, lo: float, hi: float, more_bits_up: bool):
    """Bisect a codec's quality parameter until its stream is within 5 % of ``bpp``;
    returns (parameter, stream)."""
    mid = lo
    for _ in range(24):
        mid = (lo + hi) / 2
        data = encode(mid)
        rate = 8 * len(data) / size
        if abs(rate - bpp) < 0.05 * bpp:
            break
        if (rate < bpp) == more_bits_up:
            lo = mid
        else:
            hi = mid
    return mid, data


def classical(slice_u16: np.ndarray, bpp: float) -> list[dict]:
    """OpenJPEG (JPEG 2000) and HTJ2K encode/decode MP/s at about ``bpp``, one thread."""
    try:
        import imagecodecs as ic
    except ImportError:
        return []
    rows = []
    mp = slice_u16.size / 1e6
    cases = {"jpeg2k": (lambda q: ic.jpeg2k_encode(slice_u16, level=q, bitspersample=12, numthreads=1),
                        lambda b: ic.jpeg2k_decode(b, numthreads=1), 20.0, 100.0, True)}
    if hasattr(ic, "htj2k_encode"):
        cases["htj2k"] = (lambda q: ic.htj2k_encode(slice_u16, level=q), ic.htj2k_decode, 0.0, 64.0, False)
    for name, (enc, dec, lo, hi, up) in cases.items():
        try:
            q, data = _at_rate(enc, bpp, slice_u16.size, lo, hi, up)
            te, td = timeit(lambda: enc(q), 1.0), timeit(lambda: dec(data), 1.0)
        except Exception as e:  # a codec missing from this build
            print(f"{name}: {e}", file=sys.stderr)
            continue
        rows.append({"codec": name, "case": "slice", "dtype": "-", "iterations": "-",
                     "bpp": round(8 * len(data) / slice_u16.size, 3), "encode_mp_s": round(mp / te, 1),
                     "decode_mp_s": round(mp / td, 1), "encode_ms": round(te * 1e3, 2),
                     "decode_ms": round(td * 1e3, 2)})
    return rows


def network(model, x: np.ndarray, iterations: int, dtype: str, batch: int, case: str) -> dict:
    """Time encode and decode of x (N, 512, 512, 1) in batches of ``batch`` slices. An
    integer model runs its default GEMM form (int8) whatever ``dtype`` says."""
    cfg, params = model.config, model.device_params
    if cfg.integer:
        dtype = "int8"
    n = x.shape[0]
    xb = jax.device_put(x[:batch])
    codes, _, _ = codec.encode(params, xb, config=cfg, iterations=iterations, compute_dtype=dtype)
    te = timeit(lambda: codec.encode(params, xb, config=cfg, iterations=iterations,
                                     compute_dtype=dtype)[0].block_until_ready())
    td = timeit(lambda: codec.decode(params, codes, config=cfg, compute_dtype=dtype).block_until_ready())
    batches = -(-n // batch)
    te, td = te * batches, td * batches
    mp = x[:, :, :, 0].size / 1e6
    fl = flops_per_pixel(cfg)
    return {"codec": model.model_id, "case": case, "dtype": dtype, "iterations": iterations,
            "bpp": round(iterations * cfg.bpp_per_iteration, 3), "encode_mp_s": round(mp / te, 3),
            "decode_mp_s": round(mp / td, 3), "encode_ms": round(te * 1e3, 1), "decode_ms": round(td * 1e3, 1),
            "decode_tflops": round(fl["decoder"] * iterations * mp * 1e6 / td / 1e12, 2),
            "encode_tflops": round(fl["encode_total"] * iterations * mp * 1e6 / te / 1e12, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="model id (default: the shipped checkpoint)")
    p.add_argument("--models", nargs="+", help="several model ids timed in the same run (DEFAULT: the default)")
    p.add_argument("--iterations", type=int, nargs="+", default=[4, 8, 16],
                   help="iteration counts (raw code rate 0.125 bpp each: 0.5, 1, 2 bpp)")
    p.add_argument("--dtypes", nargs="+", default=None, help="default: float32 (+bfloat16 on GPU)")
    p.add_argument("--volume-slices", type=int, default=None, help="default 300 on GPU, 16 on CPU")
    p.add_argument("--batch", type=int, default=None, help="slices per call (default 64 GPU, 4 CPU)")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--slice-npy", help="the CT slice as .npy (machines without the data cache)")
    p.add_argument("--save-codes", help="save codes + decoded slice (.npz) for cross-device checks")
    args = p.parse_args(argv)
    gpu = jax.default_backend() != "cpu"
    dtypes = args.dtypes or (["float32", "bfloat16"] if gpu else ["float32"])
    slices = args.volume_slices or (300 if gpu else 16)
    batch = args.batch or (64 if gpu else 4)
    ids = [None if m == "DEFAULT" else m for m in (args.models or [args.model])]
    models = [checkpoint.load(m) for m in ids]
    model = models[0]
    s = real_slice(args.slice_npy)
    dev = jax.devices()[0]
    from medcodec.evaluate import cpu_model

    machine = f"{dev.device_kind} ({dev.platform}), host {cpu_model()} {os.cpu_count()} cores, jax {jax.__version__}"
    rows = []
    peak = {d: round(matmul_rate(jnp.float32 if d == "float32" else jnp.bfloat16), 1) for d in dtypes}
    for model in models:
        for dtype in (dtypes[:1] if model.config.integer else dtypes):
            for k in args.iterations:
                rows.append(network(model, s[None, :, :, None], k, dtype, 1, "slice"))
                vol = np.broadcast_to(s[None, :, :, None], (slices, 512, 512, 1))
                rows.append(network(model, np.ascontiguousarray(vol), k, dtype, min(batch, slices),
                                    f"volume{slices}"))
                print(json.dumps(rows[-2]), json.dumps(rows[-1]), flush=True)
    model = models[0]
    u16 = np.round((s + 0.5) * 4095).astype(np.uint16)
    for bpp in (0.5, 1.0, 2.0):
        rows.extend(classical(u16, bpp))
    for r in rows:
        r["machine"] = machine
        r["peak_tflops"] = peak.get(r["dtype"], "")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = out / f"speed_{dev.platform}.csv"
    keys = sorted({k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99)
    with open(name, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    print(f"\n{machine}; matrix peak measured: {peak} TFLOP/s")
    print(f"{'codec':16} {'case':10} {'dtype':9} {'it':>3} {'bpp':>6} {'enc MP/s':>9} {'dec MP/s':>9} "
          f"{'enc ms':>9} {'dec ms':>9}")
    for r in rows:
        print(f"{r['codec'][:16]:16} {r['case']:10} {r['dtype']:9} {r['iterations']!s:>3} {r['bpp']:>6} "
              f"{r['encode_mp_s']:>9} {r['decode_mp_s']:>9} {r['encode_ms']:>9} {r['decode_ms']:>9}")
    print(f"wrote {name}")
    if args.save_codes:
        cfg, params = model.config, model.device_params
        x = jax.device_put(s[None, :, :, None])
        codes, _, _ = codec.encode(params, x, config=cfg, iterations=max(args.iterations))
        saved = {"codes": np.asarray(codes), "x": s}
        for dtype in dtypes:
            saved[f"recon_{dtype}"] = np.asarray(codec.decode(params, codes, config=cfg, compute_dtype=dtype))
        np.savez_compressed(args.save_codes, **saved)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
