"""Bit identity of the integer model across two jax versions (two virtual environments).

    python benchmarks/jax_versions.py OTHER_PYTHON
    # e.g. python3 -m venv /tmp/v2 && /tmp/v2/bin/pip install -e . "jax==0.10.1" "jaxlib==0.10.1"
    #      python benchmarks/jax_versions.py /tmp/v2/bin/python

Both interpreters decode the golden integer files (tests/data/golden_int_*.mlc) to image
hashes; the other one also encodes a lossless, a --max-error 2 and a plain file of a real
CT slice (pydicom's CT_small, passed as .npy), which this one decodes: exact / within the
bound / the other's own decoded hash. Exit status 0 when everything is identical.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMES = ("plain", "maxerr2", "lossless")

DECODE = r"""
import hashlib, json, sys, numpy as np, jax, medcodec
h = lambda a: hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16]
print(json.dumps({"jax": jax.__version__, **{p: h(medcodec.decompress(p)[0]) for p in sys.argv[1:]}}))
"""

ENCODE = r"""
import sys, numpy as np, medcodec
a = np.load(sys.argv[1]); d = sys.argv[2]
medcodec.compress(a, d + "/ll.mlc", iterations=2, max_error=0, overwrite=True)
medcodec.compress(a, d + "/be.mlc", iterations=4, max_error=2, overwrite=True)
medcodec.compress(a, d + "/pl.mlc", iterations=4, overwrite=True)
print("{}")
"""


def run(python: str, code: str, args: list[str]) -> dict:
    r = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, cwd=tempfile.gettempdir())
    if r.returncode:
        raise SystemExit(f"{python}: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    other = argv[0]
    golden = [str(REPO / "tests" / "data" / f"golden_int_{n}.mlc") for n in NAMES]
    here, there = run(sys.executable, DECODE, golden), run(other, DECODE, golden)
    ok = {k: v for k, v in here.items() if k != "jax"} == {k: v for k, v in there.items() if k != "jax"}
    print(f"golden files, jax {here['jax']} vs {there['jax']}: {'identical' if ok else 'DIFFERENT'}")
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file

    a = np.asarray(pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array)
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/a.npy", a)
        run(other, ENCODE, [f"{d}/a.npy", d])
        theirs = run(other, DECODE, [f"{d}/pl.mlc"])
        import medcodec

        ll = medcodec.decompress(f"{d}/ll.mlc")[0]
        be = medcodec.decompress(f"{d}/be.mlc")[0]
        mine = run(sys.executable, DECODE, [f"{d}/pl.mlc"])
        cross = bool((ll == a).all()) and int(np.abs(be.astype(np.int64) - a).max()) <= 2 \
            and mine[f"{d}/pl.mlc"] == theirs[f"{d}/pl.mlc"]
    print(f"encoded with jax {there['jax']}, decoded with {here['jax']}: lossless exact, bound held, "
          f"plain identical: {cross}")
    return 0 if ok and cross else 1


if __name__ == "__main__":
    raise SystemExit(main())
