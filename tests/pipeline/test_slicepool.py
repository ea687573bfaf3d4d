"""Residual layers coded in worker processes: same results as in-process, errors come back
as medcodec's own, and a user's script without a main guard is never re-run."""

import subprocess
import sys

import numpy as np
import pytest

from medcodec.coding import wavelet_layer as tr
import os
import medcodec
from medcodec import prep
from medcodec.pipeline import slicepool
from medcodec.errors import ContainerError


def _slices(rng, n=5):
    return [(rng.normal(size=(33, 47)) * 300 + 2000).astype(np.uint16) for _ in range(n)]


def test_workers_give_the_in_process_results_in_order(rng):
    window = (0.0, 4095.0)
    base = np.full((33, 47), 2000, np.uint16)
    jobs = [(x, base, 40.0, window) for x in _slices(rng)]
    here = slicepool.run(tr.encode_slice, jobs, workers=1)
    there = slicepool.run(tr.encode_slice, jobs, workers=3)
    assert [(lv, d) for lv, d, _ in there] == [(lv, d) for lv, d, _ in here]
    np.testing.assert_array_equal([f for _, _, f in there], [f for _, _, f in here])
    with slicepool.Pool(2) as pool:  # really other processes
        pool.map(tr.encode_slice, jobs)
        procs = list(pool._procs)
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
    assert all(p.returncode == 0 for p in procs)  # and they end with the pool
    dec = [(base, lv, d, 40.0, window) for lv, d, _ in here]
    np.testing.assert_array_equal(slicepool.run(tr.decode_slice, dec, workers=2),
                                  [tr.decode_slice(*j) for j in dec])


def test_a_worker_error_is_raised_here_as_the_same_error():
    base = np.zeros((20, 20), np.uint16)
    garbage = (base, tr._levels(base.shape), b"\x01\x02\x03", 10.0, (0.0, 100.0))
    with pytest.raises(ContainerError, match="not a whole number of 32-bit words"):
        slicepool.run(tr.decode_slice, [garbage] * 4, workers=2)
    with pytest.raises(ValueError, match="not a slice job"):
        slicepool.run(os.system, [("true",)], workers=2)


def test_a_host_program_that_is_not_python_is_never_started(monkeypatch, rng):
    """Embedded interpreters may report their host application as sys.executable."""
    monkeypatch.setattr(slicepool.sys, "executable", "/opt/viewer/bin/viewer")
    base = np.full((33, 47), 2000, np.uint16)
    jobs = [(x, base, 40.0, (0.0, 4095.0)) for x in _slices(rng, 3)]
    with slicepool.Pool(2) as pool:
        coded = pool.map(tr.encode_slice, jobs)
        assert pool._procs == [] and pool.parts(3) == [[0, 1, 2]]
    assert [d for _, d, _ in coded] == [tr.encode_slice(*j)[1] for j in jobs]


def test_default_workers_need_enough_slices(monkeypatch):
    monkeypatch.delenv("MEDCODEC_SLICE_WORKERS", raising=False)
    assert slicepool.default_workers(0) == 1
    assert slicepool.default_workers(slicepool.MIN_SLICES_PER_WORKER * 2 - 1) == 1
    assert 1 <= slicepool.default_workers(10_000) <= slicepool.os.cpu_count()
    monkeypatch.setenv("MEDCODEC_SLICE_WORKERS", "3")
    assert slicepool.default_workers(10_000) == 3 and slicepool.default_workers(8) == 2
    monkeypatch.setenv("MEDCODEC_SLICE_WORKERS", "1")
    assert slicepool.default_workers(10_000) == 1


def test_files_decode_the_same_with_and_without_workers(tmp_path, tiny_model_id, rng):
    vol = (rng.normal(size=(9, 40, 50)) * 200 + 1000).astype(np.uint16)
    st = medcodec.compress(vol, tmp_path / "w.mlc", iterations=1, transform_step=20.0, workers=2)
    medcodec.compress(vol, tmp_path / "w1.mlc", iterations=1, transform_step=20.0, workers=1)
    assert (tmp_path / "w.mlc").read_bytes() == (tmp_path / "w1.mlc").read_bytes()
    serial, _ = medcodec.decompress(tmp_path / "w.mlc", workers=1)
    np.testing.assert_array_equal(medcodec.decompress(tmp_path / "w.mlc", workers=2)[0], serial)
    assert prep.psnr(vol, serial) == pytest.approx(st.psnr)
    medcodec.compress(vol, tmp_path / "b.mlc", iterations=1, max_error=4, workers=3)
    medcodec.compress(vol, tmp_path / "b1.mlc", iterations=1, max_error=4, workers=1)
    assert (tmp_path / "b.mlc").read_bytes() == (tmp_path / "b1.mlc").read_bytes()
    bounded, _ = medcodec.decompress(tmp_path / "b.mlc", workers=3)
    np.testing.assert_array_equal(bounded, medcodec.decompress(tmp_path / "b.mlc", workers=1)[0])
    assert prep.max_abs_error(vol, bounded) <= 4


def test_a_script_without_main_guard_runs_once(tmp_path, tiny_model_id, rng):
    """multiprocessing's spawn would import the script again in every worker; ours do not."""
    vol = (rng.normal(size=(8, 30, 30)) * 200 + 1000).astype(np.uint16)
    medcodec.compress(vol, tmp_path / "w.mlc", iterations=1, transform_step=20.0)
    marker = tmp_path / "runs.txt"
    script = tmp_path / "user_script.py"
    script.write_text("import medcodec\n"
                      f"open({str(marker)!r}, 'a').write('ran\\n')\n"
                      f"a, _ = medcodec.decompress({str(tmp_path / 'w.mlc')!r}, workers=2)\n"
                      "print(a.shape)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(8, 30, 30)" in done.stdout and marker.read_text() == "ran\n"
