"""Integer vs float model quality on every development evaluation image (shared/DATA.md).

    python benchmarks/int_quality.py --models tiny-1bc2381c tinyint-XXXXXXXX [--iterations 4 8 16]
    python benchmarks/int_quality.py --models tiny-1bc2381c --out results/q_float.json   # one model
    python benchmarks/int_quality.py --table results/q_float.json results/q_int.json     # merge

Each image (a volume: all its slices) is scaled by its own min..max to [-0.5, 0.5] as the
encoder does, padded to the code grid by edge replication, encoded with the largest
iteration count (codes of fewer iterations are a prefix), decoded at every count, turned
back into integer pixels (rounded, clipped to the original range), and scored by PSNR with
peak = max - min over the real pixels. Prints a markdown table and writes
results/int_quality.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def run_model(model, vol: np.ndarray, iterations: list[int], batch: int) -> dict[int, float]:
    import jax.numpy as jnp

    from medcodec.model import codec

    cfg, params = model.config, model.device_params
    lo, hi = float(vol.min()), float(vol.max())
    x = (vol.astype(np.float64) - lo) / (hi - lo) - 0.5
    z, h, w = x.shape
    f = cfg.factor
    ph, pw = -h % f, -w % f
    xp = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="edge").astype(np.float32)
    sse = {k: 0.0 for k in iterations}
    for s in range(0, z, batch):
        xb = jnp.asarray(xp[s:s + batch, :, :, None])
        codes, _, _ = codec.encode(params, xb, config=cfg, iterations=max(iterations))
        for k in iterations:
            rec = np.asarray(codec.decode(params, codes[:k], config=cfg))[:, :h, :w, 0]
            pix = np.clip(np.rint((rec.astype(np.float64) + 0.5) * (hi - lo) + lo), lo, hi)
            sse[k] += float(np.sum((pix - vol[s:s + batch]) ** 2))
    n = vol.size
    return {k: round(10 * np.log10((hi - lo) ** 2 / (sse[k] / n)), 3) for k in iterations}


def main(argv=None) -> int:
    from medcodec.data.fetch import load_role
    from medcodec.evaluate import machine_description
    from medcodec.model import checkpoint

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", help="float model id, integer model id (or one of them)")
    p.add_argument("--table", nargs=2, help="print the table of two earlier one-model results")
    p.add_argument("--iterations", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--batch", type=int, default=16, help="slices per call")
    p.add_argument("--out", default=str(HERE / "results" / "int_quality.json"))
    args = p.parse_args(argv)
    if args.table:
        return table(*(json.loads(Path(f).read_text()) for f in args.table))
    models = [checkpoint.load(m) for m in args.models]
    rows = []
    for name, vol in load_role("eval").items():
        vol = np.asarray(vol, np.float64)
        row = {"image": name, "shape": list(vol.shape)}
        for m in models:
            t = time.time()
            row[m.model_id] = run_model(m, vol, args.iterations, args.batch)
            row[f"{m.model_id}_seconds"] = round(time.time() - t, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = {"machine": machine_description(), "models": [m.model_id for m in models], "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    if len(models) == 2:
        table(res, res)
    return 0


def table(fa: dict, fb: dict) -> int:
    """Markdown table: first model of ``fa`` against the last model of ``fb``, per image."""
    a, b = fa["models"][0], fb["models"][-1]
    rows_b = {r["image"]: r for r in fb["rows"]}
    ks = list(fa["rows"][0][a])
    print(f"\n{fa['machine']}\n\n{a} (float) vs {b} (integer), PSNR dB\n")
    print("| image | " + " | ".join(f"@{k} float / integer (diff)" for k in ks) + " |")
    print("|---|" + "---|" * len(ks))
    for r in fa["rows"]:
        ra, rb = r[a], rows_b[r["image"]][b]
        print(f"| {r['image']} | " + " | ".join(f"{ra[k]:.2f} / {rb[k]:.2f} ({rb[k] - ra[k]:+.2f})" for k in ks) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
