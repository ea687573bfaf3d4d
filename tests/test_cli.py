"""The command line through ``main(argv)``: real DICOM inputs, outputs, errors, exit codes."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from medcodec.model import checkpoint
from medcodec.cli import main


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    checkpoint.load.cache_clear()
    yield
    checkpoint.load.cache_clear()


def test_encode_decode_info_real_ct(tmp_path, tiny_model_id, ct_small_path, capsys):
    out = tmp_path / "ct.mlc"
    assert main(["encode", str(ct_small_path), str(out), "-k", "3", "--model", tiny_model_id]) == 0
    line = capsys.readouterr().out
    assert "bpp" in line and "PSNR" in line and "ratio" in line
    assert main(["info", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["size"] == [128, 128, 1] and facts["iterations"] == 3
    assert facts["bytes"] == out.stat().st_size
    restored = tmp_path / "ct.nrrd"
    assert main(["decode", str(out), str(restored), "--reference", str(ct_small_path)]) == 0
    assert "PSNR" in capsys.readouterr().out
    ref, dec = sitk.ReadImage(str(ct_small_path)), sitk.ReadImage(str(restored))
    assert dec.GetSize() == ref.GetSize() and dec.GetPixelID() == ref.GetPixelID()
    assert dec.GetSpacing() == ref.GetSpacing() and dec.GetOrigin() == ref.GetOrigin()
    assert main(["info", str(out)]) == 0
    assert "model_id" in capsys.readouterr().out


def test_dicom_series_folder(tmp_path, tiny_model_id, mr_series_dir, capsys):
    ref = sitk.ReadImage(sorted(str(p) for p in mr_series_dir.iterdir()))
    out = tmp_path / "mr.mlc"
    assert main(["-q", "encode", str(mr_series_dir), str(out), "-k", "2", "--model", tiny_model_id]) == 0
    restored = tmp_path / "mr.nii.gz"
    assert main(["-q", "decode", str(out), str(restored), "-k", "1", "--precision", "bfloat16"]) == 0
    dec = sitk.ReadImage(str(restored))
    assert dec.GetSize() == ref.GetSize()
    np.testing.assert_allclose(dec.GetSpacing(), ref.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(dec.GetOrigin(), ref.GetOrigin(), rtol=1e-6)
    assert dec.GetPixelID() == ref.GetPixelID()


def test_errors_are_one_line_exit_2(tmp_path, tiny_model_id, ct_small_path, capsys):
    missing = tmp_path / "missing.nii"
    assert main(["encode", str(missing), str(tmp_path / "x.mlc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medcodec: error:") and err.count("\n") == 1 and "does not exist" in err

    junk = tmp_path / "junk.mlc"
    junk.write_bytes(b"not a codec file at all")
    assert main(["decode", str(junk), str(tmp_path / "o.nrrd")]) == 2
    assert "not a .mlc file" in capsys.readouterr().err
    assert not (tmp_path / "o.nrrd").exists()

    good = tmp_path / "g.mlc"
    assert main(["-q", "encode", str(ct_small_path), str(good), "-k", "1", "--model", tiny_model_id]) == 0
    capsys.readouterr()
    data = good.read_bytes()
    trunc = tmp_path / "t.mlc"
    trunc.write_bytes(data[: len(data) // 2])
    assert main(["decode", str(trunc), str(tmp_path / "t.nrrd")]) == 2
    assert "truncated" in capsys.readouterr().err
    assert not (tmp_path / "t.nrrd").exists()

    # existing outputs are never replaced without --force
    existing = tmp_path / "keep.nrrd"
    existing.write_bytes(b"user data")
    assert main(["decode", str(good), str(existing)]) == 2
    assert existing.read_bytes() == b"user data"
    assert main(["encode", str(ct_small_path), str(good), "--model", tiny_model_id]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["-q", "decode", str(good), str(existing), "--force"]) == 0

    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    assert main(["encode", str(not_image), str(tmp_path / "n.mlc")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bad_arguments_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["encode", "a", "b", "--iterations", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "encode" in text and "decode" in text and "info" in text and "examples" in text


def test_train_with_unknown_config_is_a_clean_error(tmp_path, capsys):
    assert main(["train", "--config", "no-such-config", "--out", str(tmp_path / "run")]) == 2
    assert "neither one of tiny" in capsys.readouterr().err


def test_bad_pixels_and_unknown_model_exit_2(tmp_path, tiny_model_id, tiny_checkpoints, capsys, monkeypatch):
    nan_img = sitk.GetImageFromArray(np.array([[1.0, np.nan], [2.0, 3.0]], np.float32))
    sitk.WriteImage(nan_img, str(tmp_path / "nan.nrrd"))
    assert main(["encode", str(tmp_path / "nan.nrrd"), str(tmp_path / "n.mlc"), "--model", tiny_model_id]) == 2
    assert "NaN" in capsys.readouterr().err
    assert not (tmp_path / "n.mlc").exists()

    rgb = sitk.GetImageFromArray(np.zeros((8, 8, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.png"))
    assert main(["encode", str(tmp_path / "rgb.png"), str(tmp_path / "c.mlc"), "--model", tiny_model_id]) == 2
    assert "scalar grayscale" in capsys.readouterr().err

    ok = sitk.GetImageFromArray(np.arange(64, dtype=np.int16).reshape(8, 8))
    sitk.WriteImage(ok, str(tmp_path / "ok.nrrd"))
    assert main(["-q", "encode", str(tmp_path / "ok.nrrd"), str(tmp_path / "ok.mlc"), "-k", "1",
                 "--model", tiny_model_id]) == 0
    monkeypatch.setenv("MEDCODEC_CHECKPOINTS", str(tmp_path / "elsewhere"))
    checkpoint.load.cache_clear()
    assert main(["decode", str(tmp_path / "ok.mlc"), str(tmp_path / "ok2.nrrd")]) == 2
    err = capsys.readouterr().err
    assert tiny_model_id in err and "not installed" in err and err.count("\n") == 1


def test_encode_rate_and_quality_modes(tmp_path, tiny_model_id, ct_small_path, capsys):
    from medcodec import api

    original = sitk.GetArrayFromImage(sitk.ReadImage(str(ct_small_path)))  # HU, as the CLI reads it
    out = tmp_path / "l.mlc"
    assert main(["-q", "encode", str(ct_small_path), str(out), "--lossless", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["error_bound"] == 0 and stats["iterations"] == 0 and stats["max_error"] == 0  # no learned base
    decoded, _ = api.decompress(out)
    assert np.array_equal(decoded.reshape(original.shape), original)
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "e.mlc"), "--max-error", "3"]) == 0
    assert "bound 3" in capsys.readouterr().out
    assert main(["-q", "decode", str(tmp_path / "e.mlc"), str(tmp_path / "e.nrrd"), "--precision", "bfloat16"]) == 2
    assert "float32" in capsys.readouterr().err and not (tmp_path / "e.nrrd").exists()
    assert main(["-q", "decode", str(tmp_path / "e.mlc"), str(tmp_path / "e.nrrd"), "--workers", "2"]) == 0
    assert np.abs(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "e.nrrd"))).astype(int) - original).max() <= 3
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "r.mlc"), "--ratio", "8"]) == 0
    assert float(capsys.readouterr().out.split("ratio ")[1].split(":")[0]) >= 8.0
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "x.mlc"), "--ratio", "8", "-k", "2", "--json"]) == 0
    capped = json.loads(capsys.readouterr().out)  # -k caps the tile counts under a target
    assert capped["iterations"] <= 2 and capped["ratio"] >= 8.0
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "x2.mlc"), "--ratio", "8", "-k", "99"]) == 2
    assert "cap" in capsys.readouterr().err
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "t.mlc"), "--ratio", "8", "--roi", "auto",
                 "--background-weight", "0.2", "--no-wavelet", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["ratio"] >= 8.0 and stats["psnr_roi"] is not None and stats["tiles"]["tile_pixels"] == 32
    assert stats["transform_step"] is None
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "t2.mlc"), "--psnr", "45", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)  # the wavelet layer is the smallest at 45 dB
    assert stats["psnr"] >= 45.0 and stats["transform_step"] > 0
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "t3.mlc"), "--no-wavelet"]) == 2
    assert "--no-wavelet) need a bpp, ratio or psnr target" in capsys.readouterr().err
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "v.mlc"), "--ratio", "8", "--uniform"]) == 0
    assert "tiles" not in capsys.readouterr().out
    assert main(["-q", "encode", str(ct_small_path), str(tmp_path / "w.mlc"), "--roi", "auto"]) == 2
    assert "--roi) need a bpp, ratio or psnr target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["encode", str(ct_small_path), str(tmp_path / "y.mlc"), "--lossless", "--psnr", "40"])


def test_global_options_after_the_subcommand(tmp_path, tiny_model_id, mr_series_dir, capsys):
    from medcodec.cli import build_parser

    out = tmp_path / "mr.mlc"  # two slices: a progress bar unless quiet
    assert main(["encode", str(mr_series_dir), str(out), "-k", "1", "--model", tiny_model_id, "-q"]) == 0
    assert main(["decode", str(out), str(tmp_path / "mr.nrrd"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    parse = build_parser().parse_args
    assert parse(["decode", "a", "b", "-q"]).quiet and parse(["-q", "decode", "a", "b"]).quiet
    assert not parse(["decode", "a", "b"]).quiet


def test_the_script_entry_exits_with_mains_code_and_flushes(tmp_path):
    """``python -m medcodec.cli`` goes through :func:`medcodec.cli.run` (the script's entry):
    output printed before the exit arrives whole, and an error is exit code 2."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    golden = Path(__file__).parent / "data" / "golden_v1.mlc"
    ok = subprocess.run([sys.executable, "-m", "medcodec.cli", "info", str(golden), "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["size"] == [40, 30, 2]
    bad = subprocess.run([sys.executable, "-m", "medcodec.cli", "info", str(tmp_path / "missing.mlc")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("medcodec: error:")
