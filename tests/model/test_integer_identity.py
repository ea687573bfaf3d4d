"""The integer model decodes to the same image in every process configuration.

Golden files (tests/data/golden_int_*.mlc, written with the shipped integer model by
``python -m tests.model.test_integer_identity``) decode to pinned image hashes here and in
subprocesses under other XLA CPU settings: 1 and 2 threads, the flags of
benchmarks/cpu_decode_flags.py, and ``--xla_cpu_max_isa=SSE4_2`` / ``AVX2``. A lossless and
a bounded-error file encoded under one setting decode under another with no refusal.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
MODEL = (Path(__file__).resolve().parents[2] / "checkpoints" / "DEFAULT").read_text().strip()
# name: (encode options, decoded-image sha256 prefix)
GOLDEN = {
    "plain": ({"iterations": 3}, "2d1ec44e7310ec82"),
    "maxerr2": ({"iterations": 2, "max_error": 2}, "36b568291e36c76c"),
    "lossless": ({"iterations": 2, "max_error": 0}, "835f24fa68a9515b"),
}
# XLA CPU settings of the subprocesses (name: (CPUs the process may use, XLA_FLAGS)); one
# thread: one CPU (XLA sizes its pools from the affinity mask) and no multi-threaded Eigen
SETTINGS = {
    "1-thread": ([0], "--xla_cpu_multi_thread_eigen=false"),
    "2-threads": ([0, 1], ""),
    "sse4_2": (None, "--xla_cpu_max_isa=SSE4_2"),
    "avx2": (None, "--xla_cpu_max_isa=AVX2"),
    "onednn": (None, "--xla_cpu_use_onednn=true"),
    "fast-math": (None, "--xla_cpu_enable_fast_math=true"),
}


def source_image() -> np.ndarray:
    """A real 64x96 CT crop (pydicom's CT_small), int16."""
    import pydicom
    from pydicom.data import get_testdata_file

    return np.asarray(pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array)[20:84, 16:112]


def image_hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16]


CHILD = r"""
import hashlib, json, sys, numpy as np, medcodec
out = {}
for path in sys.argv[1:]:
    a, _ = medcodec.decompress(path)
    out[path] = hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16]
print(json.dumps(out))
"""

ENCODE_CHILD = r"""
import sys, numpy as np, medcodec
a = np.load(sys.argv[1])
medcodec.compress(a, sys.argv[2], iterations=2, max_error=0, model_id=sys.argv[4])
medcodec.compress(a, sys.argv[3], iterations=2, max_error=3, model_id=sys.argv[4])
print("ok")
"""


def _run(code: str, args: list[str], setting: tuple) -> str:
    cpus, flags = setting
    env = dict(os.environ, XLA_FLAGS=flags, MEDCODEC_XLA_CACHE="0", JAX_PLATFORMS="cpu")
    env.pop("MEDCODEC_CHECKPOINTS", None)
    cmd = [sys.executable, "-c", code, *args]
    if cpus is not None:  # taskset rather than preexec_fn: no fork of this multithreaded process
        avail = sorted(os.sched_getaffinity(0))
        cmd = ["taskset", "-c", ",".join(str(avail[i % len(avail)]) for i in cpus), *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


def test_golden_files_are_written_by_the_default_integer_model():
    import medcodec

    for name in GOLDEN:
        assert medcodec.info(DATA / f"golden_int_{name}.mlc")["model_id"] == MODEL
    assert MODEL.startswith("tinyint-")


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_decoded_image_hash(name):
    import medcodec

    a, _ = medcodec.decompress(DATA / f"golden_int_{name}.mlc")
    assert image_hash(a) == GOLDEN[name][1]
    src = source_image()
    err = np.abs(a.astype(np.int64) - src)
    if name == "lossless":
        assert err.max() == 0
    elif name == "maxerr2":
        assert err.max() <= 2


def test_golden_hashes_in_other_xla_cpu_settings():
    """Every setting decodes every golden file to the pinned image (one child per setting)."""
    files = [str(DATA / f"golden_int_{n}.mlc") for n in GOLDEN]
    want = {f: GOLDEN[n][1] for f, n in zip(files, GOLDEN)}
    results = {s: json.loads(_run(CHILD, files, setting)) for s, setting in SETTINGS.items()}
    assert results == {s: want for s in SETTINGS}


def test_lossless_encoded_under_sse4_decodes_elsewhere(tmp_path):
    """Encoded with --xla_cpu_max_isa=SSE4_2, decoded with the default flags and 1 thread:
    exact (lossless) / within the bound, never a ReconstructionMismatchError."""
    rng = np.random.default_rng(0)
    a = (source_image().astype(np.int32) + rng.integers(-30, 31, (64, 96))).astype(np.int16)
    np.save(tmp_path / "a.npy", a)
    ll, be = tmp_path / "ll.mlc", tmp_path / "be.mlc"
    assert _run(ENCODE_CHILD, [str(tmp_path / "a.npy"), str(ll), str(be), MODEL], SETTINGS["sse4_2"]) == "ok"
    got = json.loads(_run(CHILD, [str(ll), str(be)], SETTINGS["1-thread"]))
    assert got[str(ll)] == image_hash(a)
    import medcodec

    b, _ = medcodec.decompress(be)  # this process, default settings
    assert np.abs(b.astype(np.int64) - a).max() <= 3
    assert got[str(be)] == image_hash(b)


def write_golden() -> None:
    """Rewrite the golden files and print their hashes (on purpose only)."""
    import medcodec

    src = source_image()
    for name, (opts, _) in GOLDEN.items():
        path = DATA / f"golden_int_{name}.mlc"
        medcodec.compress(src, path, overwrite=True, model_id=MODEL, **opts)
        a, _ = medcodec.decompress(path)
        print(name, path.stat().st_size, "bytes", image_hash(a))


if __name__ == "__main__":
    write_golden()
