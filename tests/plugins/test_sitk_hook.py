"""The SimpleITK hook, exercised in fresh interpreters (subprocesses), as users meet it."""

import os
import subprocess
import sys
import textwrap

import pytest

from .conftest import run_py


def test_plain_import_reads_and_writes_mlc(tmp_path, env, mr_series_dir):
    out = run_py(f"""
        import sys
        import SimpleITK as sitk
        assert "jax" not in sys.modules
        files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames({str(mr_series_dir)!r})
        src = sitk.ReadImage(files)
        src.SetMetaData("0008|0060", "MR")
        sitk.WriteImage(src, {str(tmp_path / 'mr.mlc')!r})
        back = sitk.ReadImage({str(tmp_path / 'mr.mlc')!r})
        assert back.GetSize() == src.GetSize() and back.GetSpacing() == src.GetSpacing()
        assert back.GetOrigin() == src.GetOrigin() and back.GetDirection() == src.GetDirection()
        assert back.GetPixelID() == src.GetPixelID()
        assert back.GetMetaData("0008|0060") == "MR"
        # other formats are untouched
        sitk.WriteImage(src, {str(tmp_path / 'mr.nrrd')!r})
        again = sitk.ReadImage({str(tmp_path / 'mr.nrrd')!r})
        assert sitk.GetArrayFromImage(again).tolist() == sitk.GetArrayFromImage(src).tolist()
        print("ok", type(sitk.ImageFileReader).__name__)
    """, env)
    assert out.startswith("ok")


def test_read_information_is_header_only_and_fast(tmp_path, env, ct_small_path):
    run_py(f"""
        import SimpleITK as sitk
        sitk.WriteImage(sitk.ReadImage({str(ct_small_path)!r}), {str(tmp_path / 'ct.mlc')!r})
    """, env)
    out = run_py(f"""
        import sys, time
        import SimpleITK as sitk
        r = sitk.ImageFileReader()
        r.SetFileName({str(tmp_path / 'ct.mlc')!r})
        t = time.perf_counter()
        r.ReadImageInformation()
        dt = time.perf_counter() - t
        assert r.GetSize() == (128, 128, 1) and r.GetDimension() == 3
        assert r.GetPixelID() == sitk.sitkInt32 and r.GetNumberOfComponents() == 1
        assert r.GetImageIO() == "MedcodecImageIO"
        assert sitk.ImageFileReader.GetImageIOFromFileName("a.mlc") == "MedcodecImageIO"
        assert r.HasMetaDataKey("0008|0060") and r.GetMetaData("0008|0060").strip() == "CT"
        assert "jax" not in sys.modules and "flax" not in sys.modules and "numba" not in sys.modules
        print(f"{{dt * 1000:.2f}}")
    """, env)
    assert float(out) < 50.0  # milliseconds, header only


def test_from_import_region_pixel_type_and_series(tmp_path, env):
    out = run_py(f"""
        import numpy as np
        from SimpleITK import ReadImage, WriteImage, GetImageFromArray, ImageFileReader, ImageSeriesReader
        import SimpleITK as sitk
        import medcodec.api as api
        vol = (np.arange(6 * 20 * 24).reshape(6, 20, 24) % 700).astype(np.int16)
        img = GetImageFromArray(vol)
        img.SetSpacing((0.5, 0.6, 2.0)); img.SetOrigin((10.0, -5.0, 3.0))
        path = {str(tmp_path / 'v.mlc')!r}
        WriteImage(img, path, useCompression=True, compressionLevel=3)
        assert sitk.ImageFileReader().GetImageIOFromFileName(path) == "MedcodecImageIO"
        full = ReadImage(path)
        calls = []
        original = api.decode_slices
        api.decode_slices = lambda *a, **k: calls.append(k.get("slices")) or original(*a, **k)
        r = ImageFileReader()
        r.SetFileName(path)
        r.SetExtractIndex((2, 3, 4)); r.SetExtractSize((10, 8, 0))
        sl = r.Execute()
        assert calls == [[4]], calls
        assert sl.GetDimension() == 2 and sl.GetSize() == (10, 8)
        expect = sitk.Extract(full, (10, 8, 0), (2, 3, 4))
        assert sitk.GetArrayFromImage(sl).tolist() == sitk.GetArrayFromImage(expect).tolist()
        assert sl.GetOrigin() == expect.GetOrigin()
        f = ReadImage(path, sitk.sitkFloat32)
        assert f.GetPixelID() == sitk.sitkFloat32
        # a list of .mlc files reads as one volume
        for i in range(3):
            WriteImage(full[:, :, i], {str(tmp_path)!r} + f"/s{{i}}.mlc")
        sr = ImageSeriesReader()
        sr.SetFileNames([{str(tmp_path)!r} + f"/s{{i}}.mlc" for i in range(3)])
        stack = sr.Execute()
        assert stack.GetSize() == (24, 20, 3), stack.GetSize()
        print("ok")
    """, env)
    assert out.strip() == "ok"


def test_errors_are_runtime_errors(tmp_path, env):
    bad = tmp_path / "bad.mlc"
    bad.write_bytes(b"\\x89MLC garbage")
    out = run_py(f"""
        import numpy as np
        import SimpleITK as sitk
        try:
            sitk.ReadImage({str(bad)!r})
        except RuntimeError as e:
            print("read:", type(e).__name__, e)
        lab = sitk.Cast(sitk.GetImageFromArray(np.zeros((4, 4), np.uint8)), sitk.sitkLabelUInt8)
        try:
            sitk.WriteImage(lab, {str(tmp_path / 'lab.mlc')!r})
        except RuntimeError as e:
            print("label:", e)
        vec = sitk.GetImageFromArray(np.zeros((4, 4, 3), np.uint8), isVector=True)
        try:
            sitk.WriteImage(vec, {str(tmp_path / 'vec.mlc')!r})
        except RuntimeError as e:
            print("vector:", e)
    """, env)
    assert "read: MedcodecSitkError" in out and "not a .mlc file" in out
    assert "label:" in out and "label map" in out
    assert "vector:" in out and "scalar grayscale" in out
    assert not (tmp_path / "lab.mlc").exists() and not (tmp_path / "vec.mlc").exists()


def test_env_var_turns_activation_off_and_install_by_hand(tmp_path, env):
    env = dict(env, MEDCODEC_SITK_HOOK="0")
    out = run_py("""
        import SimpleITK as sitk
        print(sitk.ImageFileReader.__module__)
        from medcodec_plugins import sitk_hook
        sitk_hook.install()
        print(sitk.ImageFileReader.__module__, sitk.ReadImage.__module__)
        sitk_hook.uninstall()
        print(sitk.ImageFileReader.__module__)
    """, env)
    assert out.split() == ["SimpleITK.SimpleITK", "medcodec_plugins.sitk_hook", "SimpleITK.extra",
                           "SimpleITK.SimpleITK"]


def test_multiprocessing_spawn_worker(tmp_path, env, ct_small_path):
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(f"""
        import multiprocessing as mp

        def read(path):
            import SimpleITK as sitk
            return sitk.ReadImage(path).GetSize()

        if __name__ == "__main__":
            import SimpleITK as sitk
            sitk.WriteImage(sitk.ReadImage({str(ct_small_path)!r}), {str(tmp_path / 'w.mlc')!r})
            with mp.get_context("spawn").Pool(1) as pool:
                print(pool.map(read, [{str(tmp_path / 'w.mlc')!r}]))
    """))
    e = dict(os.environ, **env)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=e, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[(128, 128, 1)]"


def test_dicom_metadata_survives_exactly(tmp_path, env, ct_small_path):
    out = run_py(f"""
        import SimpleITK as sitk
        src = sitk.ReadImage({str(ct_small_path)!r})
        sitk.WriteImage(src, {str(tmp_path / 'ct.mlc')!r})
        back = sitk.ReadImage({str(tmp_path / 'ct.mlc')!r})
        # ITK's "[UNKNOWN_PRINT_CHARACTERISTICS]" placeholders carry no value and are dropped
        a = {{k: src.GetMetaData(k) for k in src.GetMetaDataKeys()
              if not src.GetMetaData(k).startswith("[UNKNOWN_PRINT")}}
        b = {{k: back.GetMetaData(k) for k in back.GetMetaDataKeys()}}
        added = {{k: b.pop(k) for k in ("0028|2110", "0028|2112", "0028|2114", "ITK_FileNotes")}}
        assert a == b, set(a.items()) ^ set(b.items())
        assert added["0028|2110"] == "01" and added["0028|2114"] == "MEDCODEC"  # lossy, and says so
        assert back.GetPixelID() == src.GetPixelID() and back.GetSize() == src.GetSize()
        print(len(a))
    """, env)
    assert int(out) > 50  # a real DICOM header


def test_4d_time_series_and_region(tmp_path, env):
    out = run_py(f"""
        import numpy as np
        import SimpleITK as sitk
        a = (np.arange(2 * 3 * 20 * 24).reshape(2, 3, 20, 24) % 300).astype(np.uint16)
        im = sitk.GetImageFromArray(a, isVector=False)
        im.SetSpacing((1.0, 2.0, 3.0, 4.5))
        sitk.WriteImage(im, {str(tmp_path / 't.mlc')!r})
        back = sitk.ReadImage({str(tmp_path / 't.mlc')!r})
        assert back.GetSize() == (24, 20, 3, 2) and back.GetSpacing() == (1.0, 2.0, 3.0, 4.5)
        r = sitk.ImageFileReader()
        r.SetFileName({str(tmp_path / 't.mlc')!r})
        r.SetExtractIndex((0, 0, 1, 1)); r.SetExtractSize((24, 20, 2, 0))
        part = r.Execute()
        assert part.GetSize() == (24, 20, 2)
        assert sitk.GetArrayFromImage(part).tolist() == sitk.GetArrayFromImage(back)[1, 1:3].tolist()
        print("ok")
    """, env)
    assert out.strip() == "ok"


def test_write_options_parse_rate_and_quality(monkeypatch):
    from medcodec_plugins.sitk_hook import MedcodecSitkError, write_options

    from medcodec.options import EncodeOptions as E

    monkeypatch.delenv("MEDCODEC_ITERATIONS", raising=False)
    assert write_options("") == E() and write_options("").base_iterations == 8
    assert write_options("", 5) == E(iterations=5)
    monkeypatch.setenv("MEDCODEC_ITERATIONS", "6")
    assert write_options("") == E(iterations=6) and write_options("", 5) == E(iterations=5)
    assert write_options("lossless") == E(max_error=0)  # the bounded-error base default, as everywhere
    monkeypatch.delenv("MEDCODEC_ITERATIONS")
    assert write_options("medcodec:iterations=3") == E(iterations=3)
    assert write_options("lossless", 4) == E(max_error=0, iterations=4)
    assert write_options("max_error=2, iterations=4") == E(max_error=2, iterations=4)
    assert write_options("psnr=45") == E(psnr=45.0)
    assert write_options("bpp=0.5") == E(bpp=0.5) and write_options("ratio=12") == E(ratio=12.0)
    roi = write_options("psnr=40, roi=auto, background_weight=0.2")
    assert roi == E(psnr=40.0, background_weight=0.2) and roi.roi == "auto"
    assert write_options("bpp=1,uniform") == E(bpp=1.0, adaptive=False)
    assert write_options("psnr=45,no_wavelet") == E(psnr=45.0, wavelet=False)
    for bad in ("psnr=high", "quality=9", "roi=auto", "roi=maybe,bpp=1", "uniform=3", "no_wavelet"):
        with pytest.raises(MedcodecSitkError):
            write_options(bad)


def test_lossless_and_psnr_writes_through_simpleitk(tmp_path, env, ct_small_path):
    out = run_py(f"""
        import numpy as np, SimpleITK as sitk
        img = sitk.ReadImage({str(ct_small_path)!r})
        w = sitk.ImageFileWriter(); w.SetFileName({str(tmp_path / "l.mlc")!r}); w.SetCompressor("lossless")
        w.Execute(img)
        back = sitk.ReadImage({str(tmp_path / "l.mlc")!r})
        print("EXACT", np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(img)))
        sitk.WriteImage(img, {str(tmp_path / "p.mlc")!r}, False, 0)  # default: iterations
        w.SetFileName({str(tmp_path / "q.mlc")!r}); w.SetCompressor("psnr=50"); w.Execute(img)
        a = sitk.GetArrayFromImage(img).astype(float); b = sitk.GetArrayFromImage(sitk.ReadImage({str(tmp_path / "q.mlc")!r}))
        print("PSNR", 10 * np.log10((a.max() - a.min()) ** 2 / np.mean((a - b) ** 2)))
    """, env)
    assert "EXACT True" in out
    assert float(out.split("PSNR")[1]) >= 50.0


def test_lossy_flags_before_and_after_decoding(tmp_path, env, ct_small_path):
    out = run_py(f"""
        import SimpleITK as sitk
        src = sitk.ReadImage({str(ct_small_path)!r})
        sitk.WriteImage(src, {str(tmp_path / 'ct.mlc')!r})
        reader = sitk.ImageFileReader()
        reader.SetFileName({str(tmp_path / 'ct.mlc')!r})
        reader.ReadImageInformation()  # header only: already says lossy
        info = [reader.GetMetaData(k) for k in ("0028|2110", "0028|2112", "0028|2114")]
        image = reader.Execute()
        assert info == [image.GetMetaData(k) for k in ("0028|2110", "0028|2112", "0028|2114")], info
        reader.SetExtractSize([64, 64, 0]); reader.SetExtractIndex([0, 0, 0])
        assert reader.Execute().GetMetaData("0028|2110") == "01"
        print(" ".join(info))
    """, env)
    flag, ratio, method = out.split()
    assert flag == "01" and method == "MEDCODEC" and float(ratio) > 1
