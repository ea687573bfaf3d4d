"""Rate control with and without inter-slice prediction on the MR atlas, whole files.

    python benchmarks/interslice_ratecontrol.py [--psnr 42 45 48 51]

For each PSNR target: ``compress_to(psnr=...)`` (inter-slice prediction on, the default)
and ``interslice=False`` (every slice alone: medcodec's best intra-slice rate control);
rate from the bytes on disk, PSNR of the decoded file. Writes
``results/interslice_ratecontrol.md`` with the BD-rate of the two curves.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from medcodec import api, evaluate, prep  # noqa: E402
from medcodec.pipeline import decode  # noqa: E402
from medcodec.ratecontrol import compress_to  # noqa: E402
from rd_compare import bd_rate  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--psnr", type=float, nargs="+", default=[42.0, 45.0, 48.0, 51.0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    _, vol = next(evaluate.evaluation_images(["mr_head_atlas"]))
    rows = {True: [], False: []}
    lines = ["# Rate control with and without inter-slice prediction (MR atlas, whole files)", "",
             f"Machine: {evaluate.machine_description()}; `python benchmarks/interslice_ratecontrol.py`.", "",
             "| target dB | interslice | bpp (file) | PSNR dB | inter slices | encode s |", "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.psnr:
            for inter in (True, False):
                path = Path(tmp) / f"{target}_{inter}.mlc"
                t0 = time.perf_counter()
                stats = compress_to(vol, path, psnr=target, interslice=inter, overwrite=True)
                seconds = time.perf_counter() - t0
                decoded, _ = decode.decompress(path)
                q = prep.psnr(vol, decoded)
                facts = api.info(path)
                rows[inter].append((stats.bpp, q))
                n = "-" if facts["interslice"] is None else facts["interslice"]["inter_slices"]
                lines.append(f"| {target:g} | {'on' if inter else 'off'} | {stats.bpp:.4f} | {q:.2f} | {n} | {seconds:.1f} |")
                print(lines[-1], flush=True)
    lines += ["", f"BD-rate of inter-slice prediction against intra-slice rate control: "
                  f"{bd_rate(sorted(rows[False]), sorted(rows[True])):+.1f} %"]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "interslice_ratecontrol.md").write_text("\n".join(lines) + "\n")
    print(lines[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
