"""Peak memory of decoding a 512x512x600 volume: decoding streams slice batches, so the
peak is the output array plus one batch, not the whole volume's network activations.

    python benchmarks/decode_memory.py [--slices 600] [--iterations 2]

Encodes a 600-slice volume (the real development CT slice, shifted a little per slice),
then decodes it in a fresh process and reports that process's peak RSS (VmHWM) next to
the size of the decoded array and the RSS after importing JAX and loading the model; also
the encoding process's peak.
Writes benchmarks/results/decode_memory.txt.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# VmHWM (peak RSS of this process image, in kB): ru_maxrss would carry the parent's peak
# across fork/exec on Linux.
CHILD = """
import sys
from medcodec import api
from medcodec.model import checkpoint
def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
checkpoint.load(None).device_params
base = hwm()
out, h = api.decompress(sys.argv[1])
print(base, hwm(), out.nbytes, out.shape)
"""


def _hwm_kb() -> int:
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slices", type=int, default=600)
    p.add_argument("--iterations", type=int, default=2)
    args = p.parse_args(argv)
    from medcodec import api
    from medcodec.data.catalog import entries
    from medcodec.data.fetch import load_volume, path_of

    e = next(x for x in entries("eval") if x.name == "ct_abdomen_vrun")
    ct = load_volume(path_of(e))[0].astype(np.int16)
    vol = np.stack([np.roll(ct, i % 7, axis=1) for i in range(args.slices)])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.mlc"
        api.compress(vol, path, iterations=args.iterations)
        encode_peak_kb = _hwm_kb()
        r = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
        base_kb, peak_kb, nbytes, shape = r.stdout.split(" ", 3)
        size = path.stat().st_size
    lines = [f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
             f"volume {shape.strip()} int16, {args.iterations} iterations, file {size / 1e6:.1f} MB",
             f"decoded array: {int(nbytes) / 2**20:.0f} MiB",
             f"RSS after importing JAX and loading the model: {int(base_kb) / 1024:.0f} MiB",
             f"peak RSS of the decoding process: {int(peak_kb) / 1024:.0f} MiB "
             f"(= base + {(int(peak_kb) - int(base_kb)) / 1024:.0f} MiB)",
             f"peak RSS of the encoding process (volume in memory, codes kept until the file is "
             f"written): {encode_peak_kb / 1024:.0f} MiB"]
    print("\n".join(lines))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "decode_memory.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
