"""Ablation (issue 18): does a ConvLSTM along z earn its place as the inter-slice reference?

    python benchmarks/interslice_ablation.py --checkpoint checkpoints/slicelstm-<hash> [--out benchmarks/results]

Same run, same volumes and steps as ``benchmarks/interslice.py`` (MR atlas 1.5 mm, atlas
every 3rd slice 4.5 mm, EPI first volume), key slice every N = 16:

(a) intra: every slice alone over the constant base;
(b) non-learned inter (:func:`medcodec.coding.interslice.encode_volume`): reference =
    decoded slice t-1;
(c) ConvLSTM inter: reference = the ConvLSTM's prediction of slice t from the decoded
    slices of the chain before it (state reset at each key slice), then the same per-band
    int8 weights, the same intra/inter switch by coded size; decoded again by a separate
    loop and checked equal to the encoder's slices;
(d) per-slice 3-way choice (intra / previous slice / ConvLSTM), same side bytes (the mode
    byte holds 3 values).

Bytes counted as in ``benchmarks/interslice.py``: FRAMING 33 bytes per slice, and for the
inter coders 1 mode byte + 1 weight byte per band per slice. The ConvLSTM's weights are not
counted in the rate (they would ship with the codec); their int8 cost per voxel of each
volume is reported apart. Writes ``interslice_ablation.md``, ``.csv`` and ``.png``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from interslice import DELTAS, FRAMING, clipped_bd, curve, plot, volumes  # noqa: E402
from medcodec import evaluate, prep  # noqa: E402
from medcodec.coding import interslice, wavelet_layer  # noqa: E402
from medcodec.coding.interslice import INTER, INTRA, SliceRecord  # noqa: E402
from medcodec.model import slice_predictor as sp  # noqa: E402

KEY = 16
LSTM = 2  # mode of (d) for "reference from the ConvLSTM"; in (c) INTER means the ConvLSTM


def encode_lstm(vol, bases, delta, window, params, key=KEY, three_way=False, rho=wavelet_layer.RHO):
    """Closed-loop coding of (S, h, w) with the ConvLSTM reference: (records, finals).
    (c): mode INTER = ConvLSTM reference, kept when its stream plus the weight bytes is
    smaller than the intra stream (the rule of :func:`interslice.encode_volume`).
    ``three_way`` (d): the cheapest of intra / ConvLSTM (LSTM) / previous slice (INTER),
    ties to the earlier. The ConvLSTM state advances on every slice of a chain."""
    shape = vol.shape[1:]
    levels, nb = interslice.wavelet.levels_for(*shape), interslice.band_count(shape)
    mid = interslice._mid(window, vol.dtype)
    finals = np.empty_like(vol)
    records = [None] * len(vol)
    zero = np.zeros(nb, np.int8)
    stepper = sp.Stepper(params, shape, window)
    for chain in interslice.chains(len(vol), key):
        stepper.reset()
        prev = None
        for t in chain:
            data, final = interslice._coded(vol[t], bases[t], delta, window, rho)
            record, cost = SliceRecord(INTRA, zero, (levels, data)), len(data)
            if prev is not None:
                tb = interslice._bands_of(vol[t], mid)
                refs = [(LSTM if three_way else INTER, stepper.step(prev))]
                if three_way:
                    refs.append((INTER, prev))
                for mode, ref in refs:
                    rb = interslice._bands_of(ref, mid)
                    w = interslice._weights(tb, rb)
                    base = interslice._predicted(rb, w, mid, window, vol.dtype)
                    data_p, final_p = interslice._coded(vol[t], base, delta, window, rho)
                    if len(data_p) + nb < cost:  # the weights cost a byte per band
                        record, cost, final = SliceRecord(mode, w, (levels, data_p)), len(data_p) + nb, final_p
            records[t], finals[t] = record, final
            prev = final
    return records, finals


def decode_lstm(bases, records, delta, window, params, key=KEY, three_way=False, rho=wavelet_layer.RHO):
    """A separate decoder of :func:`encode_lstm`'s records: the final slices (S, h, w)."""
    shape = bases.shape[1:]
    mid = interslice._mid(window, bases.dtype)
    out = np.empty(bases.shape, bases.dtype)
    stepper = sp.Stepper(params, shape, window)
    lstm_mode = LSTM if three_way else INTER
    for chain in interslice.chains(len(records), key):
        stepper.reset()
        prev = None
        for t in chain:
            r = records[t]
            if prev is None and r.mode != INTRA:
                raise ValueError("a key slice must be intra")
            if prev is not None:
                lstm_ref = stepper.step(prev)
            if r.mode == INTRA:
                base = bases[t]
            else:
                ref = lstm_ref if r.mode == lstm_mode else prev
                base = interslice._predicted(interslice._bands_of(ref, mid), r.weights, mid, window, bases.dtype)
            out[t] = prev = wavelet_layer.decode_slice(base, *r.record, delta, window, rho)
    return out


def _row(name, coder, delta, vol, records, decoded, inter, t_enc, t_dec):
    side = (1 + len(records[0].weights)) * len(records) if inter else 0
    nbytes = sum(len(r.record[1]) + FRAMING for r in records) + side
    modes = [r.mode for r in records]
    return {"volume": name, "coder": coder, "param": delta, "bytes": nbytes, "bpp": 8.0 * nbytes / vol.size,
            "psnr": prep.psnr(vol, decoded), "intra_slices": modes.count(INTRA),
            "prev_slices": modes.count(INTER) if coder != "convlstm inter" else 0,
            "lstm_slices": modes.count(LSTM) if coder != "convlstm inter" else modes.count(INTER),
            "slices": len(records), "encode_s": t_enc, "decode_s": t_dec}


def rows_of(name, vol, params, untrained_check=False):
    window = prep.window_of(vol)
    bases = np.full(vol.shape, interslice._mid(window, vol.dtype), vol.dtype)
    rows = []
    sp.Stepper(params, vol.shape[1:], window).step(vol[0])  # compile (jax, numba) before timing
    interslice.decode_volume(bases[:2], interslice.encode_volume(vol[:2], bases[:2], 64, window, KEY, threads=1)[0],
                             64, window, threads=1)
    for delta in DELTAS:
        for coder, inter in (("intra", False), ("non-learned inter", True)):
            t0 = time.perf_counter()
            records, finals = interslice.encode_volume(vol, bases, delta, window, KEY, inter=inter, threads=1)
            t1 = time.perf_counter()
            decoded = interslice.decode_volume(bases, records, delta, window, threads=1)
            t2 = time.perf_counter()
            if not np.array_equal(decoded, finals):
                raise SystemExit(f"{name} {coder} delta {delta}: decode differs from the encoder's slices")
            rows.append(_row(name, coder, delta, vol, records, decoded, inter, t1 - t0, t2 - t1))
            if inter:
                nonlearned = records
        for coder, three in (("convlstm inter", False), ("3-way intra/prev/convlstm", True)):
            t0 = time.perf_counter()
            records, finals = encode_lstm(vol, bases, delta, window, params, three_way=three)
            t1 = time.perf_counter()
            decoded = decode_lstm(bases, records, delta, window, params, three_way=three)
            t2 = time.perf_counter()
            if not np.array_equal(decoded, finals):
                raise SystemExit(f"{name} {coder} delta {delta}: decode differs from the encoder's slices")
            rows.append(_row(name, coder, delta, vol, records, decoded, True, t1 - t0, t2 - t1))
            if untrained_check and not three:
                same = all(a.mode == b.mode and a.record == b.record and np.array_equal(a.weights, b.weights)
                           for a, b in zip(records, nonlearned))
                if not same:
                    raise SystemExit(f"{name} delta {delta}: zero-output ConvLSTM differs from the non-learned coder")
        print("  " + "  ".join(f"{r['coder']}: {r['bpp']:.3f} bpv {r['psnr']:.2f} dB" for r in rows[-4:])
              + f"  (step {delta})", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="folder with params.npz (default: untrained, zero output)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--tag", default="", help="suffix of the output names (a second checkpoint)")
    p.add_argument("--only", type=int, default=0, help="only the first N volumes (smoke runs)")
    args = p.parse_args(argv)
    import jax

    if args.checkpoint:
        params, label = sp.load(Path(args.checkpoint) / "params.npz"), Path(args.checkpoint).name
    else:
        params, label = sp.init(jax.random.PRNGKey(0)), "untrained (zero output head)"
    n_params = sp.param_count(params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, sizes = [], {}
    for i, (name, vol) in enumerate(volumes()):
        if args.only and i >= args.only:
            break
        print(f"{name}: {vol.shape} {vol.dtype}", flush=True)
        sizes[name] = vol.size
        rows += rows_of(name, vol, params, untrained_check=not args.checkpoint)
    stem = ("interslice_ablation" if args.checkpoint else "interslice_ablation_untrained") + \
        (f"_{args.tag}" if args.tag else "")
    with open(out / f"{stem}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cfg = sp.config_of(params)
    lines = ["# Inter-slice ablation: ConvLSTM reference vs decoded slice t-1 (issue 18)", "",
             f"Machine: {evaluate.machine_description()}; one core (`taskset -c 1`); "
             f"`python benchmarks/interslice_ablation.py"
             + (f" --checkpoint checkpoints/{label}" + (f" --tag {args.tag}" if args.tag else "") + "`." if args.checkpoint else "` (untrained)."), "",
             f"ConvLSTM: `{label}`, {cfg}, {n_params} parameters; int8 weights would cost "
             f"{8 * n_params} bits = " + ", ".join(f"{8 * n_params / n:.4f} bpv on {name}" for name, n in sizes.items())
             + " (not in the rates below).", "",
             f"Key slice every N = {KEY}; steps {list(DELTAS)}; bytes as `benchmarks/interslice.py` "
             f"({FRAMING} framing bytes per slice, inter coders +1 mode byte +1 byte per band per slice). "
             "BD-rate over 40-55 dB (negative: fewer bits for the same PSNR):", "",
             "| volume | coder | vs intra | vs non-learned inter | slices intra/prev/lstm (step 64) | "
             "encode s (step 64) | decode s (step 64) | encode s (all steps) | decode s (all steps) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["volume"] for r in rows):
        sub = [r for r in rows if r["volume"] == name]
        intra, nl = curve(sub, "intra"), curve(sub, "non-learned inter")
        for coder in dict.fromkeys(r["coder"] for r in sub):
            mine = [r for r in sub if r["coder"] == coder]
            at = next(r for r in mine if r["param"] == 64)
            lines.append(f"| {name} | {coder} | {clipped_bd(intra, curve(sub, coder)):+.1f} % | "
                         f"{clipped_bd(nl, curve(sub, coder)):+.1f} % | "
                         f"{at['intra_slices']}/{at['prev_slices']}/{at['lstm_slices']} | {at['encode_s']:.2f} | "
                         f"{at['decode_s']:.2f} | {sum(r['encode_s'] for r in mine):.1f} | "
                         f"{sum(r['decode_s'] for r in mine):.1f} |")
    lines += ["", "Every point's stream was decoded again (a separate loop for (c), (d)) and checked equal "
              "to the encoder's slices. Sanity: without `--checkpoint` (zero output head) the script asserts "
              "(c) == (b) byte for byte (modes, weights, streams) at every point; that run passed on all "
              "3 volumes x 9 steps (branch convlstm-predictor, commit 2762636).", "",
              f"Per point: `{stem}.csv`; curves: `{stem}.png`."]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    plot(rows, out / f"{stem}.png")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
