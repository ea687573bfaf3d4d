"""``medcodec convert``: a tree with a real DICOM series, a multi-frame DICOM file, NIfTI, NRRD
and MHA volumes and a corrupt file, converted on a Dask LocalCluster on loopback, killed
(SIGKILL) mid-run, resumed; originals byte-identical, outputs verified, manifest complete."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medcodec import api, convert, prep
from medcodec.model import checkpoint
from medcodec.cli import main
from medcodec.io.images import from_sitk, read_image

FIELDS = {"input", "output", "voxels", "bytes_in", "bytes_out", "ratio", "bpp", "psnr", "max_error",
          "seconds", "status", "error"}


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    checkpoint.load.cache_clear()
    yield
    checkpoint.load.cache_clear()


def _volume(path: Path, array: np.ndarray, spacing, origin) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))


@pytest.fixture
def archive(tmp_path, mr_series_dir) -> Path:
    """src/ with a real 2-slice MR series, a real multi-frame RT dose file, a NIfTI, an NRRD
    and an MHA volume (different shapes), a corrupt .nii.gz and a text file."""
    import pydicom

    src = tmp_path / "src"
    shutil.copytree(mr_series_dir, src / "patient1" / "mr")
    (src / "patient1" / "dose").mkdir()
    shutil.copy(Path(pydicom.__file__).parent / "data/test_files/rtdose.dcm", src / "patient1/dose/rd.dcm")
    rng = np.random.default_rng(7)
    (src / "vols" / "deep").mkdir(parents=True)
    ct = np.cumsum(rng.integers(-20, 21, size=(4, 40, 52)), axis=2).astype(np.int16) - 1000
    _volume(src / "vols/ct.nii.gz", ct, (0.7, 0.8, 2.5), (10.0, -20.0, 30.0))
    smooth = np.sin(np.linspace(0, 6, 3 * 36 * 44)).reshape(3, 36, 44).astype(np.float32)
    _volume(src / "vols/ct.nrrd", smooth, (1.0, 1.0, 3.0), (0.0, 0.0, 0.0))  # same stem as ct.nii.gz
    _volume(src / "vols/deep/mr.mha", rng.integers(0, 255, (2, 24, 30)).astype(np.uint8),
            (2.0, 2.0, 4.0), (1.0, 2.0, 3.0))
    (src / "broken.nii.gz").write_bytes(b"\x1f\x8b" + os.urandom(300))  # gzip magic, garbage
    (src / "notes.txt").write_text("not an image\n")
    return src


def _snapshot(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        out[p.relative_to(root).as_posix()] = (digest, st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def _records(manifest: Path) -> list[dict]:
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


def _wait_for_ok(manifest: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if manifest.exists() and any('"status": "ok"' in ln for ln in manifest.read_text().splitlines()):
            return
        if proc.poll() is not None:
            raise AssertionError(f"conversion ended (rc {proc.returncode}) before the kill: "
                                 f"{proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError("no item finished in time")


def test_discovery_names_are_stable_and_unique(archive, tmp_path):
    items = convert.discover(archive, tmp_path / "dst")
    by_id = {it.id: it for it in items}
    uid = "1.3.12.2.1107.5.2.32.35119.2010011420292594820699190.0.0.0"
    assert set(by_id) == {"broken.nii.gz", f"patient1/mr#{uid}", "patient1/dose#1.2.777.777.77.7.7777.7777",
                          "vols/ct.nii.gz", "vols/ct.nrrd", "vols/deep/mr.mha"}
    assert by_id[f"patient1/mr#{uid}"].rel_output == "patient1/mr.mlc"
    assert len(by_id[f"patient1/mr#{uid}"].files) == 2
    assert by_id["vols/deep/mr.mha"].rel_output == "vols/deep/mr.mlc"
    # ct.nii.gz and ct.nrrd would both be ct.mlc: they keep their extensions
    assert by_id["vols/ct.nii.gz"].rel_output == "vols/ct.nii.gz.mlc"
    assert by_id["vols/ct.nrrd"].rel_output == "vols/ct.nrrd.mlc"
    assert [it.rel_output for it in convert.discover(archive, tmp_path / "dst")] == [it.rel_output for it in items]

    # a folder holding two series: one output each, named by a hash of the SeriesInstanceUID
    both = tmp_path / "both"
    shutil.copytree(archive / "patient1" / "mr", both / "study")
    shutil.copy(archive / "patient1/dose/rd.dcm", both / "study" / "rd.dcm")
    outs = sorted(it.rel_output for it in convert.discover(both, tmp_path / "dst2"))
    assert outs == sorted([f"study_{convert.short_hash(uid)}.mlc",
                           f"study_{convert.short_hash('1.2.777.777.77.7.7777.7777')}.mlc"])


def test_overlapping_trees_are_refused(archive, capsys):
    before = _snapshot(archive)
    assert main(["convert", str(archive), str(archive / "out")]) == 2
    assert "overlap" in capsys.readouterr().err
    assert main(["convert", str(archive / "vols"), str(archive)]) == 2
    assert _snapshot(archive) == before


def test_convert_kill_resume_on_local_cluster(archive, tmp_path, tiny_model_id, tiny_checkpoints, capsys):
    from distributed import LocalCluster

    src, dst = archive, tmp_path / "dst"
    before = _snapshot(src)
    items = convert.discover(src, dst)
    volumes = [it for it in items if it.id != "broken.nii.gz"]
    manifest = dst / convert.MANIFEST_NAME

    # 1. a real run in a subprocess (its own LocalCluster, one worker: items in order),
    #    SIGKILLed with its workers as soon as one item is recorded
    env = dict(os.environ, MEDCODEC_CHECKPOINTS=str(tiny_checkpoints), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, "-m", "medcodec.cli", "-q", "convert", str(src), str(dst),
                             "-k", "2", "--workers", "1"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_ok(manifest, proc, timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = _records(manifest)
    done_first = {r["input"]: r for r in first if r["status"] == "ok"}
    assert 1 <= len(done_first) < len(volumes), "the kill must land mid-batch"
    mtimes = {i: (dst / r["output"]).stat().st_mtime_ns for i, r in done_first.items()}

    # 2. resume on an existing cluster on loopback (--scheduler), two single-threaded workers
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        rc = main(["-q", "convert", str(src), str(dst), "-k", "2", "--scheduler", cluster.scheduler_address,
                   "--plot", str(tmp_path / "report.html")])
    out = capsys.readouterr().out
    assert rc == 1  # the corrupt file failed; every other item is ok
    assert "FAILED (1)" in out and "broken.nii.gz" in out and "PSNR mean" in out
    assert f"{len(done_first)} verified earlier" in out
    assert "broken.nii.gz" in (tmp_path / "report.html").read_text()

    # originals untouched, nothing written into the source tree
    assert _snapshot(src) == before

    # finished items were skipped: one record each, outputs not rewritten
    records = _records(manifest)
    for i in done_first:
        assert sum(r["input"] == i for r in records) == 1
        assert (dst / done_first[i]["output"]).stat().st_mtime_ns == mtimes[i]

    # manifest complete: a final record for every item, with every field
    last = {r["input"]: r for r in records}
    assert set(last) == {it.id for it in items}
    for r in records:
        assert FIELDS <= set(r)
    assert last["broken.nii.gz"]["status"] == "failed"
    assert "cannot read" in last["broken.nii.gz"]["error"]
    assert all(last[it.id]["status"] == "ok" for it in volumes)
    assert not (dst / convert.PARTIAL_DIR).exists()
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.mlc")) == \
        sorted(it.rel_output for it in volumes)

    # outputs verified independently: decode, compare with the originals
    uid = "1.3.12.2.1107.5.2.32.35119.2010011420292594820699190.0.0.0"
    for it in volumes:
        r = last[it.id]
        path = dst / r["output"]
        assert path.stat().st_size == r["bytes_out"]
        decoded, header = api.decompress(path)
        if it.kind == "dicom-series" and len(it.files) == 1:
            original, geometry, _ = from_sitk(read_image(it.files[0]))
        elif it.kind == "dicom-series":
            original, geometry, _ = from_sitk(read_image(it.source, it.series_uid))
        else:
            original, geometry, _ = from_sitk(read_image(it.source))
        assert decoded.shape == original.shape and decoded.dtype == original.dtype
        assert r["voxels"] == original.size
        np.testing.assert_allclose(header.spacing, geometry.spacing, rtol=1e-12)
        np.testing.assert_allclose(header.origin, geometry.origin, rtol=1e-12)
        from medcodec.prep import psnr

        assert psnr(original, decoded) == pytest.approx(float(r["psnr"]), abs=1e-6)
        assert r["bpp"] == pytest.approx(8 * r["bytes_out"] / r["voxels"])
        assert header.metadata["medcodec_source"] == it.id
    mr = api.decompress(dst / "patient1/mr.mlc")[1].metadata
    assert mr["0008|0060"] == "MR" and mr["0020|000e"] == uid and mr["0010|0020"] == "1234"
    assert "0028|1050" in mr and "0028|1051" in mr  # window kept
    assert set(mr) > set(mr) & set(convert.DICOM_KEEP)  # every tag by default, not the minimal set
    assert not any(k.startswith(("7fe0|", "0002|")) for k in mr)  # pixel data and file meta aside
    assert api.decompress(dst / "patient1/dose.mlc")[0].shape == (15, 10, 10)  # multi-frame, 3D

    # 3. a third run has nothing left but the corrupt file (in-process, no Dask); a PNG
    # summary (matplotlib is a test dependency, so this branch runs in CI)
    plot = tmp_path / "report.png"
    assert main(["-q", "convert", str(src), str(dst), "-k", "2", "--workers", "0", "--plot", str(plot)]) == 1
    assert "0 converted now" in capsys.readouterr().out
    assert len(_records(manifest)) == len(records) + 1
    import SimpleITK as _sitk

    png = _sitk.ReadImage(str(plot))  # a real PNG a reader decodes, not just its magic bytes
    assert plot.read_bytes()[:4] == b"\x89PNG" and png.GetSize()[0] >= 500

    # 4. --decode back to NRRD, verified against the .mlc files
    back = tmp_path / "restored"
    assert main(["-q", "convert", str(dst), str(back), "--decode", "--format", "nrrd", "--workers", "0"]) == 0
    restored = sitk.ReadImage(str(back / "vols/ct.nii.gz.nrrd"))
    decoded, header = api.decompress(dst / "vols/ct.nii.gz.mlc")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(restored), decoded)
    assert restored.GetSpacing() == pytest.approx(header.spacing)
    assert len(list(back.rglob("*.nrrd"))) == len(volumes)


def test_existing_outputs_are_never_overwritten(tmp_path, tiny_model_id, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    _volume(src / "a.nii.gz", np.arange(2 * 20 * 24, dtype=np.int16).reshape(2, 20, 24), (1, 1, 2), (0, 0, 0))
    dst.mkdir()
    (dst / "a.mlc").write_bytes(b"somebody's file")
    assert main(["-q", "convert", str(src), str(dst), "-k", "1", "--workers", "0"]) == 1
    assert "exists" in capsys.readouterr().out
    assert (dst / "a.mlc").read_bytes() == b"somebody's file"

    assert main(["-q", "convert", str(src), str(dst), "-k", "1", "--workers", "0", "--force"]) == 0
    mtime = (dst / "a.mlc").stat().st_mtime_ns
    # an output without a manifest record (killed between rename and record) is verified and adopted
    (dst / convert.MANIFEST_NAME).unlink()
    assert main(["-q", "convert", str(src), str(dst), "-k", "1", "--workers", "0"]) == 0
    rec = _records(dst / convert.MANIFEST_NAME)[-1]
    assert rec["status"] == "ok" and rec["note"] == "existing output verified"
    assert (dst / "a.mlc").stat().st_mtime_ns == mtime
    # ... but not when it was made with other settings
    (dst / convert.MANIFEST_NAME).unlink()
    assert main(["-q", "convert", str(src), str(dst), "-k", "2", "--workers", "0"]) == 1
    assert (dst / "a.mlc").stat().st_mtime_ns == mtime

    # a quality target that is missed: the item fails and no output is kept
    dst2 = tmp_path / "dst2"
    assert main(["-q", "convert", str(src), str(dst2), "-k", "1", "--workers", "0", "--min-psnr", "200"]) == 1
    assert "quality target missed" in capsys.readouterr().out
    assert not list(dst2.rglob("*.mlc"))


def test_disk_full_is_reported_per_item(tmp_path, tiny_model_id, monkeypatch, capsys):
    from medcodec.errors import WriteError

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.nrrd", "b.nrrd"):
        _volume(src / name, np.ones((2, 16, 16), np.uint8), (1, 1, 1), (0, 0, 0))

    def full(array, path, options=None, **kw):
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        except OSError as e:
            raise WriteError(f"cannot write {path}") from e

    monkeypatch.setattr(api, "compress", full)
    assert main(["-q", "convert", str(src), str(tmp_path / "dst"), "--workers", "0"]) == 1
    out = capsys.readouterr().out
    assert "FAILED (2)" in out and out.count("disk full") == 2


def test_lossless_and_bounded_conversion(tmp_path, tiny_model_id, capsys):
    src = tmp_path / "src"
    src.mkdir()
    vol = (np.arange(3 * 20 * 24).reshape(3, 20, 24) * 37 % 1999 - 500).astype(np.int16)
    _volume(src / "a.nii.gz", vol, (1, 1, 2), (0, 0, 0))
    for flags, bound in ((["--lossless"], 0), (["--bound", "4"], 4)):
        dst = tmp_path / f"dst{bound}"
        assert main(["-q", "convert", str(src), str(dst), "--workers", "0", *flags]) == 0
        decoded, header = api.decompress(dst / "a.mlc")
        assert api.info(dst / "a.mlc")["tile_iterations"] == [0, 0]  # no learned iterations under the layer
        assert np.abs(decoded.astype(int) - vol).max() <= bound
        assert _records(dst / convert.MANIFEST_NAME)[-1]["max_error"] <= bound


def test_rate_control_targets_per_item(tmp_path, tiny_model_id, capsys):
    """--psnr / --ratio: each item through rate control, verified against its target."""
    src = tmp_path / "src"
    src.mkdir()
    vol = (np.arange(3 * 20 * 24).reshape(3, 20, 24) * 37 % 1999 - 500).astype(np.int16)
    _volume(src / "a.nii.gz", vol, (1, 1, 2), (0, 0, 0))
    dst = tmp_path / "p"
    assert main(["-q", "convert", str(src), str(dst), "--workers", "0", "--psnr", "42"]) == 0
    decoded, _ = api.decompress(dst / "a.mlc")
    rec = _records(dst / convert.MANIFEST_NAME)[-1]
    assert rec["status"] == "ok" and rec["psnr"] >= 42.0 and prep.psnr(vol, decoded) == pytest.approx(rec["psnr"])
    src2, dst = tmp_path / "src2", tmp_path / "r"
    src2.mkdir()
    yy, xx = np.mgrid[:64, :64]
    smooth = np.stack([(800 * np.sin(xx / 7.0 + k) * np.cos(yy / 9.0)).astype(np.int16) for k in range(4)])
    _volume(src2 / "b.nii.gz", smooth, (1, 1, 2), (0, 0, 0))
    assert main(["-q", "convert", str(src2), str(dst), "--workers", "0", "--ratio", "8"]) == 0
    rec = _records(dst / convert.MANIFEST_NAME)[-1]
    assert rec["ratio"] >= 8.0 and rec["status"] == "ok"
    assert main(["-q", "convert", str(src), str(tmp_path / "x"), "--psnr", "40", "--lossless"]) == 2
    assert "do not combine" in capsys.readouterr().err


def test_report_without_matplotlib(tmp_path, monkeypatch):
    """Without matplotlib an .html report still has its table, and a .png is refused with
    what to do; with it the .html embeds the plot."""
    from medcodec.convert import report
    from medcodec.convert.batch import Summary
    from medcodec.errors import MedcodecError

    record = {"input": "a.nii.gz", "output": "a.mlc", "status": "ok", "bpp": 1.0, "psnr": 45.0, "ratio": 16.0,
              "voxels": 1000, "bytes_in": 2000, "bytes_out": 125, "raw_bytes": 2000, "max_error": 3.0, "seconds": 1.0}
    summary = Summary(src="s", dst="d", manifest="m", items=1, earlier=[], records=[record], pending=0, seconds=1.0)
    html = report.write_plot(summary, tmp_path / "with.html")
    assert "data:image/png;base64," in open(html).read()

    def no_matplotlib(_):
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(report, "_plot_png", no_matplotlib)
    text = open(report.write_plot(summary, tmp_path / "without.html")).read()
    assert "install matplotlib" in text and "a.nii.gz" in text
    with pytest.raises(MedcodecError, match="pip install matplotlib"):
        report.write_plot(summary, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_decode_to_dicom_series_mirrors_the_tree(tmp_path, tiny_model_id, mr_series_dir, capsys):
    import pydicom

    src = tmp_path / "src" / "patient"
    src.mkdir(parents=True)
    shutil.copytree(mr_series_dir, src / "series")
    assert main(["-q", "convert", str(tmp_path / "src"), str(tmp_path / "mlc"), "--workers", "0", "-k", "2"]) == 0
    mlc = tmp_path / "mlc" / "patient" / "series.mlc"
    assert api.info(mlc)["metadata"]["0008|0060"] == "MR"  # every tag kept by default
    assert main(["-q", "convert", str(tmp_path / "mlc"), str(tmp_path / "back"), "--decode", "--format", "dicom",
                 "--workers", "0", "--transfer-syntax", "rle"]) == 0
    out = tmp_path / "back" / "patient" / "series"
    files = sorted(out.iterdir())
    assert [f.suffix for f in files] == [".dcm", ".dcm"]
    decoded, _ = api.decompress(mlc)
    for f, plane in zip(files, decoded):
        ds = pydicom.dcmread(f)
        assert ds.LossyImageCompression == "01" and ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
        np.testing.assert_array_equal(ds.pixel_array, plane)
    assert _records(tmp_path / "back" / convert.MANIFEST_NAME)[-1]["status"] == "ok"
    assert not (tmp_path / "back" / convert.PARTIAL_DIR).exists()
