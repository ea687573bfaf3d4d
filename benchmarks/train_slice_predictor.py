"""Train the ConvLSTM slice predictor (medcodec.model.slice_predictor) on one CPU core.

    taskset -c 1 python benchmarks/train_slice_predictor.py [--minutes 20] [--out checkpoints]

Data: ONLY ``mr_head_pydeface`` (the training entry; never the atlas, never the EPI, which
the ablation evaluates on), rescaled to 0..3500 in uint16 so that the wavelet layer's
steps mean what they mean on the atlas (0..3517). Sequences along all three axes, every
1st, 2nd or 3rd slice (thin and thick spacing), random crops of ``--seq`` consecutive
(strided) slices and ``--crop`` px, random flips. Inputs look like decoded slices: every
slice of the three orientations is coded once with the wavelet layer over the constant
base at each step of ``--deltas`` (:func:`medcodec.coding.wavelet_layer.encode_slices`,
whose third output is exactly what a decoder reconstructs), one step per sequence; the
target is the ORIGINAL slice t, predicted from decoded slices < t. Loss (``--loss``): mean
|error| in the volume's normalised units (window -> [-0.5, 0.5]), slices 1..T-1, or the
mean of log(1 + |c| / eps) over the error's orthonormal Haar coefficients c (4 levels), closer
to what coded bits do. Adam, cosine decay.

Writes ``<out>/slicelstm-<hash8>/`` with ``params.npz`` (float32), ``config.json``,
``train_log.jsonl`` and a model card ``README.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medcodec import evaluate, prep  # noqa: E402
from medcodec.coding import interslice, wavelet_layer  # noqa: E402
from medcodec.model import slice_predictor as sp  # noqa: E402

TRAIN = "mr_head_pydeface"
FORBIDDEN = ("mr_head_atlas", "mr_epi_example4d")
PEAK = 3500


def training_volume() -> np.ndarray:
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    entry = next(e for e in entries() if e.name == TRAIN)
    assert entry.name not in FORBIDDEN
    v = load_volume(path_of(entry))
    return np.rint(v * (PEAK / float(v.max()))).astype(np.uint16)


def decoded_versions(vol: np.ndarray, deltas) -> list[dict]:
    """Per orientation: original (S, h, w) and {delta: decoded (S, h, w)}, all uint16."""
    window = prep.window_of(vol)
    out = []
    for axis in range(3):
        orig = np.ascontiguousarray(np.moveaxis(vol, axis, 0))
        bases = np.full(orig.shape, interslice._mid(window, orig.dtype), orig.dtype)
        dec = {}
        for d in deltas:
            t0 = time.perf_counter()
            dec[d] = np.stack([r[2] for r in wavelet_layer.encode_slices(orig, bases, d, window, threads=1)])
            print(f"  axis {axis} {orig.shape} step {d}: PSNR {prep.psnr(orig, dec[d]):.2f} dB "
                  f"({time.perf_counter() - t0:.1f} s)", flush=True)
        out.append({"orig": orig, "dec": dec})
    return out


def sampler(data, deltas, window, batch, seq, crop, rng, min_mean=0.05):
    """A batch: (decoded inputs (T, B, crop, crop), original targets (T, B, crop, crop)),
    normalised float32."""
    lo, hi = window
    xs, ys = [], []
    while len(xs) < batch:
        o = data[rng.integers(3)]
        stride = int(rng.integers(1, 4))
        s, h, w = o["orig"].shape
        span = (seq - 1) * stride + 1
        z, y, x = rng.integers(0, s - span + 1), rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
        sl = (slice(z, z + span, stride), slice(y, y + crop), slice(x, x + crop))
        tgt = (o["orig"][sl].astype(np.float32) - lo) / (hi - lo) - 0.5
        if np.mean(tgt + 0.5) < min_mean:  # mostly background: draw again
            continue
        inp = (o["dec"][deltas[rng.integers(len(deltas))]][sl].astype(np.float32) - lo) / (hi - lo) - 0.5
        if rng.random() < 0.5:
            tgt, inp = tgt[:, :, ::-1], inp[:, :, ::-1]
        if rng.random() < 0.5:
            tgt, inp = tgt[:, ::-1], inp[:, ::-1]
        if rng.random() < 0.5:
            tgt, inp = tgt[::-1], inp[::-1]  # either direction along z
        xs.append(inp)
        ys.append(tgt)
    return np.stack(xs, 1), np.stack(ys, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="training wall time (after data prep)")
    p.add_argument("--steps", type=int, default=100000, help="at most this many steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=12)
    p.add_argument("--crop", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--deltas", default="16,32,64,128,192")
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", choices=("pixel", "haarlog"), default="pixel",
                   help="pixel: mean |error|; haarlog: mean log(1 + |Haar coefficient of the error| / eps)")
    p.add_argument("--eps", type=float, default=0.005, help="haarlog scale (normalised units)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "checkpoints"))
    args = p.parse_args(argv)
    import jax
    import jax.numpy as jnp
    import optax

    t_start = time.perf_counter()
    deltas = tuple(int(d) for d in args.deltas.split(","))
    vol = training_volume()
    window = prep.window_of(vol)
    print(f"{TRAIN}: {vol.shape} {vol.dtype} window {window}; coding with the wavelet layer at {deltas}", flush=True)
    data = decoded_versions(vol, deltas)
    t_data = time.perf_counter() - t_start

    config = sp.SliceLSTMConfig(hidden=args.hidden)
    params = sp.init(jax.random.PRNGKey(args.seed), config)
    # steps are bounded by wall time; the schedule assumes a rate measured on the first steps
    opt = optax.adam(args.lr)
    opt_state = opt.init(params)

    def haar(e):
        """Orthonormal Haar bands of (..., H, W) (H, W multiples of 2^levels), flat."""
        out = []
        for _ in range(4):
            if e.shape[-1] % 2 or e.shape[-2] % 2:
                break
            a, b = e[..., 0::2, :], e[..., 1::2, :]
            lo_, hi_ = (a + b) / np.sqrt(2), (a - b) / np.sqrt(2)
            ll, lh = (lo_[..., 0::2] + lo_[..., 1::2]) / np.sqrt(2), (lo_[..., 0::2] - lo_[..., 1::2]) / np.sqrt(2)
            hl, hh = (hi_[..., 0::2] + hi_[..., 1::2]) / np.sqrt(2), (hi_[..., 0::2] - hi_[..., 1::2]) / np.sqrt(2)
            out += [lh.ravel(), hl.ravel(), hh.ravel()]
            e = ll
        return jnp.concatenate(out + [e.ravel()])

    def loss_fn(prm, x, y):
        state = sp.zero_state(prm, x.shape[1], x.shape[2], x.shape[3])
        _, pred = sp.scan_normalised(prm, state, x[:-1])
        err = pred - y[1:]
        if args.loss == "haarlog":  # coded bits grow with log |coefficient|
            return jnp.mean(jnp.log1p(jnp.abs(haar(err)) / args.eps))
        return jnp.mean(jnp.abs(err))

    @jax.jit
    def train_step(prm, st, x, y, lr_scale):
        loss, g = jax.value_and_grad(loss_fn)(prm, x, y)
        upd, st = opt.update(g, st, prm)
        upd = jax.tree_util.tree_map(lambda u: u * lr_scale, upd)
        return optax.apply_updates(prm, upd), st, loss

    eval_loss = jax.jit(loss_fn)
    rng = np.random.default_rng(args.seed)
    fixed = sampler(data, deltas, window, 32, args.seq, args.crop, np.random.default_rng(12345))
    base_fixed = float(jax.jit(lambda a, b: loss_fn(jax.tree_util.tree_map(jnp.zeros_like, params), a, b))(
        jnp.asarray(fixed[0]), jnp.asarray(fixed[1])))  # all-zero params: previous decoded slice as prediction
    print(f"fixed batch (32 sequences): {args.loss} loss of 'previous decoded slice' = {base_fixed:.6f}", flush=True)
    log, budget = [], args.minutes * 60.0
    t0 = time.perf_counter()
    step, losses = 0, []
    while step < args.steps:
        elapsed = time.perf_counter() - t0
        if elapsed > budget:
            break
        lr_scale = 0.5 * (1 + np.cos(np.pi * min(1.0, elapsed / budget)))  # cosine over wall time
        x, y = sampler(data, deltas, window, args.batch, args.seq, args.crop, rng)
        params, opt_state, loss = train_step(params, opt_state, jnp.asarray(x), jnp.asarray(y), lr_scale)
        losses.append(float(loss))
        step += 1
        if step % 100 == 0 or step == 1:
            fl = float(eval_loss(params, jnp.asarray(fixed[0]), jnp.asarray(fixed[1])))
            rec = {"step": step, "s": round(time.perf_counter() - t0, 1), "train_l1": float(np.mean(losses[-100:])),
                   "fixed_l1": fl, "fixed_prev_l1": base_fixed, "lr": args.lr * lr_scale}
            log.append(rec)
            print(json.dumps(rec), flush=True)
    t_train = time.perf_counter() - t0
    final_fixed = float(eval_loss(params, jnp.asarray(fixed[0]), jnp.asarray(fixed[1])))

    flat = [np.asarray(v, np.float32) for v in jax.tree_util.tree_leaves(params)]
    h = hashlib.sha256(json.dumps(dataclasses.asdict(config)).encode())
    for v in flat:
        h.update(v.astype("<f4").tobytes())
    folder = Path(args.out) / f"slicelstm-{h.hexdigest()[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    sp.save(folder / "params.npz", params)
    (folder / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1) + "\n")
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    n = sp.param_count(params)
    card = f"""# {folder.name}: ConvLSTM slice predictor (issue 18 ablation)

`medcodec.model.slice_predictor`, {config}, {n} parameters (float32 `params.npz`).
Predicts slice t from the decoded slices before it (state along z); output = residual on
the decoded slice t-1 in window-normalised units. Not used by the codec: measured by
`benchmarks/interslice_ablation.py`.

- Data: only `{TRAIN}` ({vol.shape}, rescaled to 0..{PEAK} uint16), slices along all
  three axes, z stride 1-3, {args.seq}-slice sequences, {args.crop} px crops, flips.
  Not the atlas, not the EPI (evaluation).
- Inputs: wavelet-layer reconstructions over the constant base at steps {list(deltas)}
  (one step per sequence); targets: the original slices.
- Loss: {"mean |prediction - original|" if args.loss == "pixel" else
           f"mean log(1 + |Haar coefficient of prediction - original| / {args.eps})"} (normalised units), Adam lr {args.lr} with cosine
  decay over the wall-time budget, batch {args.batch}.
- Steps: {step} in {t_train / 60:.1f} min of training (+{t_data:.0f} s coding the data),
  one core of {evaluate.machine_description()}.
- Loss: last 100 steps {np.mean(losses[-100:]):.6f}; fixed batch of 32 sequences
  {final_fixed:.6f} vs {base_fixed:.6f} for "previous decoded slice" (zero output)
  ({100 * (final_fixed / base_fixed - 1):+.1f} %). The fixed batch is drawn from the
  training volume (no held-out volume: the evaluation is the ablation).
- Command: `taskset -c 1 python benchmarks/train_slice_predictor.py --minutes {args.minutes:g} --steps {args.steps} \
--batch {args.batch} --seq {args.seq} --crop {args.crop} --lr {args.lr} --deltas {args.deltas} --hidden {args.hidden} \
--seed {args.seed} --loss {args.loss} --eps {args.eps}`
"""
    (folder / "README.md").write_text(card)
    print(card)
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
