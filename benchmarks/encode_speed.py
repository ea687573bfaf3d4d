"""Rate-controlled encode time, and the files it chooses, before and after a change.

    python benchmarks/encode_speed.py record LABEL [--jobs image:target ...]
    python benchmarks/encode_speed.py timing LABEL [--runs 3] [--images ...]
    python benchmarks/encode_speed.py margins [--jobs image:target ...]
    python benchmarks/encode_speed.py gate [--jobs image:target ...]
    python benchmarks/encode_speed.py report BEFORE AFTER [--out encode_speed.md]

``record`` encodes the development images (``medcodec.evaluate.evaluation_images``) at
``--bpp`` 0.25/0.5/1/2 and ``--psnr`` 40/45/50 with ``ratecontrol.compress_to`` and appends
one JSON line per file to ``benchmarks/results/encode_speed_LABEL.jsonl``: bytes, PSNR, which
candidate won (layer, learned iterations, step or bound) and the seconds taken (jobs in
order of importance: the two of issue 16 first, so a partial run still answers it).
``timing`` times the two encodes of issue 16 warm (after one compiling encode), best of
``--runs``. ``report`` compares two labels, checks that every file after is as good (a
rate target: within the budget with PSNR >= before; a PSNR target: bytes <= before) and
writes ``benchmarks/results/encode_speed.md`` with the machine it ran on.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
IMAGES = ("ct_abdomen_vrun", "mr_head_atlas", "mr_shoulder_mr2", "cr_chest_rg1")
TARGETS = (("bpp", 1.0), ("psnr", 45.0), ("bpp", 0.25), ("bpp", 0.5), ("bpp", 2.0), ("psnr", 40.0), ("psnr", 50.0))
ISSUE = (("ct_abdomen_vrun", "bpp", 1.0), ("mr_head_atlas", "psnr", 45.0))  # issue 16's two encodes
DEFAULT_JOBS = [f"{i}:{t}={v:g}" for i, t, v in ISSUE] + [
    f"{i}:{t}={v:g}" for i in IMAGES for t, v in TARGETS if (i, t, v) not in ISSUE]


def _job(text: str) -> tuple[str, str, float]:
    image, _, target = text.partition(":")
    name, _, value = target.partition("=")
    return image, name, float(value)


def _winner(st) -> str:
    if st.transform_step is not None:
        return f"wavelet k={st.iterations} step={st.transform_step:.4g}"
    if st.error_bound is not None:
        return f"bounded k={st.iterations} E={st.error_bound}"
    if st.tiles:
        return f"tiles {st.tiles['min_iterations']}-{st.tiles['max_iterations']} (mean {st.tiles['mean_iterations']:.2f})"
    return f"uniform k={st.iterations}"


def _arrays(names):
    from medcodec.evaluate import evaluation_images

    return {e.name: a for e, a in evaluation_images(sorted(set(names)))}


def record(label: str, jobs: list[str]) -> None:
    from medcodec import ratecontrol

    parsed = [_job(j) for j in jobs]
    arrays = _arrays(i for i, _, _ in parsed)
    out = RESULTS / f"encode_speed_{label}.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        for image, name, value in parsed:
            t = time.perf_counter()
            st = ratecontrol.compress_to(arrays[image], Path(tmp) / "f.mlc", overwrite=True, **{name: value})
            row = {"image": image, "target": name, "value": value, "bytes": st.bytes, "bpp": st.bpp,
                   "psnr": st.psnr, "winner": _winner(st), "seconds": round(time.perf_counter() - t, 2)}
            print(json.dumps(row), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")


def timing(label: str, runs: int, images) -> None:
    from medcodec import ratecontrol

    jobs = [j for j in ISSUE if j[0] in images]
    arrays = _arrays(i for i, _, _ in jobs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for image, name, value in jobs:
            path = Path(tmp) / "f.mlc"
            encode = lambda: ratecontrol.compress_to(arrays[image], path, overwrite=True, **{name: value})  # noqa: E731
            t = time.perf_counter()
            encode()  # compiles the network for this shape
            first = time.perf_counter() - t
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                encode()
                times.append(time.perf_counter() - t)
            rows.append({"image": image, "target": name, "value": value, "first_s": round(first, 2),
                         "warm_s": [round(x, 2) for x in times], "best_s": round(min(times), 2)})
            print(json.dumps(rows[-1]), flush=True)
    with open(RESULTS / f"encode_speed_timing_{label}.json", "w") as f:
        json.dump(rows, f, indent=1)


def margins(jobs: list[str]) -> None:
    """How far the real learned-only files land from the floors rate control skips them by
    (``medcodec.ratecontrol.control``): for each job the full encode, the floor, and the
    best real uniform / adaptive-tiles file (their encodes run here whatever the floor says).
    A skip is safe while real PSNR - ceiling < PSNR_MARGIN_DB and real bytes / floor >
    1 - RATE_MARGIN."""
    import math

    from medcodec.format import payload_sizes
    from medcodec.model import checkpoint
    from medcodec.options import EncodeOptions
    from medcodec.pipeline import encode
    from medcodec.ratecontrol import control, tiles

    parsed = [_job(j) for j in jobs]
    arrays = _arrays(i for i, _, _ in parsed)
    factor = checkpoint.load(None).config.factor
    out = RESULTS / "encode_speed_margins.jsonl"
    with tempfile.TemporaryDirectory() as tmp:
        temps = {n: Path(tmp) / f"{n}.mlc" for n in ("full", "tiles", "uniform")}
        for image, name, value in parsed:
            array, options = arrays[image], EncodeOptions(**{name: value})
            bpp, psnr = options.budget_bpp(array.dtype.itemsize), options.psnr
            full = encode.compress(array, temps["full"], iterations=checkpoint.load(None).config.max_iterations,
                                   overwrite=True)
            c = tiles.costs(full.cell_sse, payload_sizes(temps["full"]), full.bytes)
            try:
                learned = control._learned_candidates(array, full, temps, options, bpp, None, factor, {})
            except Exception as e:  # out of reach for the network alone
                learned, why = [], type(e).__name__
            else:
                why = "none"
            row = {"image": image, "target": name, "value": value}
            if psnr is not None:
                row["floor_bytes"] = round(tiles.bits_floor(c, array.size / 10 ** (psnr / 10)) / 8.0)
                row["real_bytes"] = min((s.bytes for s, _ in learned), default=why)
                if learned:
                    row["real_over_floor"] = round(row["real_bytes"] / row["floor_bytes"], 3)
            else:
                floor = tiles.distortion_floor(c, bpp * array.size * (1 + control.RATE_MARGIN))
                row["ceiling_db"] = round(10 * math.log10(array.size / floor), 3) if floor > 0 else math.inf
                row["real_psnr"] = max((s.psnr for s, _ in learned), default=why)
                if learned:
                    row["real_minus_ceiling_db"] = round(row["real_psnr"] - row["ceiling_db"], 3)
            print(json.dumps(row), flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")


def gate(jobs: list[str]) -> None:
    """The gate's ratio (``medcodec.ratecontrol.control.GATE_RATIO``) per job: the wavelet
    layer's trial score over no learned iterations / over one, on a one-iteration encode of
    what rate control gates (a volume of PROBE_MIN_SLICES or more: its probe sample), with
    the real files' winners beside it in ``report``."""
    from medcodec.options import EncodeOptions
    from medcodec.ratecontrol import control

    parsed = [_job(j) for j in jobs]
    arrays = _arrays(i for i, _, _ in parsed)
    with tempfile.TemporaryDirectory() as tmp:
        for image, name, value in parsed:
            array, options = arrays[image], EncodeOptions(**{name: value})
            sample = control.probe_sample(array)
            gated = array if sample is None else sample
            _, score = control.first_iteration_scores(gated, options, Path(tmp) / "g.mlc",
                                                      options.budget_bpp(array.dtype.itemsize), {})
            row = {"image": image, "target": name, "value": value, "slices": len(gated.reshape((-1,) + array.shape[-2:])),
                   "score0": score[0], "score1": score[1],
                   "ratio": None if None in score.values() else round(score[0] / score[1], 4)}
            print(json.dumps(row), flush=True)
            with open(RESULTS / "encode_speed_gate.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")


def _load(label: str) -> dict:
    rows = [json.loads(line) for line in open(RESULTS / f"encode_speed_{label}.jsonl")]
    return {(r["image"], r["target"], r["value"]): r for r in rows}  # the last run of a job counts


def _as_good(before: dict, after: dict, voxels_bits: float) -> bool:
    if before["target"] == "psnr":
        return after["bytes"] <= before["bytes"] and after["psnr"] >= before["value"]
    return after["bytes"] * 8 <= voxels_bits and after["psnr"] >= before["psnr"] - 1e-9


def machine() -> str:
    import jax

    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()[:10]
    return "\n".join(["```", *lscpu, f"python {platform.python_version()}, jax {jax.__version__} "
                      f"({jax.default_backend()}), numpy {np.__version__}", "```"])


def _job_table(name: str, columns, cells) -> list[str]:
    """A markdown table of the jobs in ``RESULTS/name`` (JSON lines; none if absent): image,
    target, then ``cells(row)`` under ``columns``."""
    path = RESULTS / name
    if not path.exists():
        return []
    lines = ["| image | target | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for line in open(path):
        r = json.loads(line)
        lines.append(f"| {r['image']} | {r['target']} {r['value']:g} | " + " | ".join(cells(r)) + " |")
    return lines


def report(before_label: str, after_label: str, out: str = "encode_speed.md") -> int:
    from medcodec.ratecontrol.control import GATE_RATIO

    before, after = _load(before_label), _load(after_label)
    lines = ["| image | target | before: bytes, PSNR, winner, s | after: bytes, PSNR, winner, s | as good |",
             "|---|---|---|---|---|"]
    bad = 0
    for key in (k for k in before if k in after):
        b, a = before[key], after[key]
        budget = b["value"] * b["bytes"] * 8 / b["bpp"] if b["target"] == "bpp" else 0.0  # bits allowed
        ok = _as_good(b, a, budget)
        bad += not ok
        cell = lambda r: f"{r['bytes']}, {r['psnr']:.3f}, {r['winner']}, {r['seconds']:.1f}"  # noqa: E731
        lines.append(f"| {key[0]} | {key[1]} {key[2]:g} | {cell(b)} | {cell(a)} | {'yes' if ok else 'NO'} |")
    timings = []
    for label in (before_label, after_label):
        path = RESULTS / f"encode_speed_timing_{label}.json"
        if path.exists():
            for r in json.load(open(path)):
                timings.append(f"| {label} | {r['image']} | {r['target']} {r['value']:g} | {r['first_s']} | "
                               f"{r['warm_s']} | {r['best_s']} |")
    def gate_cells(r):
        left_out = r["ratio"] is not None and r["ratio"] <= GATE_RATIO
        return (str(r["slices"]), str(r["ratio"]), "yes" if left_out else "no")

    def margin_cells(r):
        if r["target"] == "psnr":
            return f"{r['floor_bytes']} bytes", f"{r['real_bytes']} bytes", f"x {r.get('real_over_floor', '-')}"
        return f"{r['ceiling_db']} dB", f"{r['real_psnr']} dB", f"{r.get('real_minus_ceiling_db', '-')} dB"

    gate_lines = _job_table("encode_speed_gate.jsonl", ("slices gated", "score over 0 / over 1", "network left out"),
                            gate_cells)
    margin_lines = _job_table("encode_speed_margins.jsonl", ("floor", "best real learned-only file", "real vs floor"),
                              margin_cells)
    text = "\n".join([
        "# Rate-controlled encode time (issue 16)", "", "Machine:", "", machine(), "",
        "## Time of issue 16's encodes (in-process `ratecontrol.compress_to`, seconds)", "",
        "| code | image | target | first (compiles) | warm runs | best |", "|---|---|---|---|---|---|", *timings, "",
        f"## Chosen files, `{before_label}` vs `{after_label}` "
        "(`python benchmarks/encode_speed.py record LABEL`)", "",
        "As good: a rate target within the budget with PSNR >= before; a PSNR target met with bytes <= before.", "",
        *lines, "", f"{len(lines) - 2 - bad} of {len(lines) - 2} as good.", "",
        "## The gate (`python benchmarks/encode_speed.py gate`)", "",
        "The wavelet layer's trial score (bytes for a PSNR target, squared error for a rate) over no learned "
        "iterations / over one, on a one-iteration encode; the network is left out at or below "
        f"{GATE_RATIO} (`medcodec.ratecontrol.control.GATE_RATIO`).", "",
        *gate_lines, "",
        "## The floors learned-only files are skipped by (`python benchmarks/encode_speed.py margins`)", "",
        "A rate target: the PSNR ceiling of any tile plan within 1.2 x the budget, vs the best real uniform or "
        "adaptive-tiles file (skipped where the best residual-layer file is > ceiling + 0.5 dB); a PSNR target: "
        "the size floor of any plan reaching it, vs the smallest real one (skipped where the best residual-layer "
        "file is < 0.8 x floor). Safe while real - ceiling < 0.5 dB and real / floor > 0.8.", "",
        *margin_lines, ""])
    (RESULTS / out).write_text(text)
    print(text)
    return 1 if bad else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("record")
    r.add_argument("label")
    r.add_argument("--jobs", nargs="*", default=DEFAULT_JOBS, help="image:target=value, e.g. ct_abdomen_vrun:bpp=1")
    t = sub.add_parser("timing")
    t.add_argument("label")
    t.add_argument("--runs", type=int, default=3)
    t.add_argument("--images", nargs="*", default=[i for i, _, _ in ISSUE])
    g = sub.add_parser("gate")
    g.add_argument("--jobs", nargs="*", default=DEFAULT_JOBS)
    m = sub.add_parser("margins")
    m.add_argument("--jobs", nargs="*", default=DEFAULT_JOBS)
    c = sub.add_parser("report")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("--out", default="encode_speed.md", help="file under benchmarks/results to write")
    args = p.parse_args(argv)
    if args.command == "record":
        record(args.label, args.jobs)
    elif args.command == "gate":
        gate(args.jobs)
    elif args.command == "margins":
        margins(args.jobs)
    elif args.command == "timing":
        timing(args.label, args.runs, args.images)
    else:
        return report(args.before, args.after, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
