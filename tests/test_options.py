"""EncodeOptions: the one place that holds every rate/quality mode, its defaults and its checks;
the CLI, the library, convert and the plugins all arrive at the same options."""

import numpy as np
import pytest

from medcodec.cli import main
from medcodec.errors import InputError
from medcodec.options import (BOUNDED_ERROR_BASE_ITERATIONS, DEFAULT_BACKGROUND_WEIGHT, DEFAULT_ITERATIONS,
                              EncodeOptions, check_iterations, iterations_from_environment)


def test_defaults_and_derived_values():
    o = EncodeOptions()
    assert o.target is None and o.base_iterations == DEFAULT_ITERATIONS == 8
    assert EncodeOptions(max_error=0).lossless and EncodeOptions(max_error=0).base_iterations == BOUNDED_ERROR_BASE_ITERATIONS
    assert EncodeOptions(max_error=2, iterations=4).base_iterations == 4
    assert EncodeOptions(psnr=45).target == ("psnr", 45)
    assert EncodeOptions(ratio=8).budget_bpp(2) == pytest.approx(2.0)  # 16 bits / 8
    assert EncodeOptions(bpp=0.5).budget_bpp(2) == 0.5 and EncodeOptions(psnr=40).budget_bpp(2) is None
    assert EncodeOptions(psnr=40).weight_outside == DEFAULT_BACKGROUND_WEIGHT
    assert EncodeOptions(psnr=40, roi="auto", background_weight=0.3).weight_outside == 0.3


@pytest.mark.parametrize("kwargs, message", [
    (dict(iterations=0), "iterations"),
    (dict(iterations=2.5), "iterations"),
    (dict(iterations=True), "iterations"),
    (dict(max_error=-1), "max_error"),
    (dict(max_error=70000), "max_error"),
    (dict(max_error=1.5), "max_error"),
    (dict(bpp=0.5, psnr=40), "at most one"),
    (dict(psnr=-3), "positive"),
    (dict(ratio=float("inf")), "positive"),
    (dict(bpp=True), "positive"),
    (dict(psnr=45, max_error=2), "chooses the error bound"),
    (dict(roi="auto"), "need a bpp, ratio or psnr target"),
    (dict(background_weight=0.2), "need a bpp, ratio or psnr target"),
    (dict(adaptive=False), "need a bpp, ratio or psnr target"),
    (dict(wavelet=False), "need a bpp, ratio or psnr target"),
    (dict(psnr=40, roi="auto", adaptive=False), "needs adaptive tiles"),
    (dict(psnr=40, roi="no-such-file.nrrd"), "roi must be 'auto'"),
    (dict(psnr=40, background_weight=1.5), "within 0..1"),
])
def test_each_rule_is_checked_on_construction(kwargs, message):
    with pytest.raises(InputError, match=message):
        EncodeOptions(**kwargs)


def test_from_kwargs_merges_and_names_unknown_fields():
    base = EncodeOptions(iterations=4)
    assert EncodeOptions.from_kwargs(base, max_error=1) == EncodeOptions(iterations=4, max_error=1)
    assert EncodeOptions.from_kwargs(None) == EncodeOptions()
    with pytest.raises(InputError, match="unknown encode option.*lossles"):
        EncodeOptions.from_kwargs(None, lossles=True)


def test_check_iterations_against_the_model():
    assert check_iterations(3, 16) == 3
    with pytest.raises(InputError, match="from 1 to 16"):
        check_iterations(17, 16)


def test_environment_iterations(monkeypatch):
    monkeypatch.delenv("MEDCODEC_ITERATIONS", raising=False)
    assert iterations_from_environment() is None
    monkeypatch.setenv("MEDCODEC_ITERATIONS", "5")
    assert iterations_from_environment() == 5
    monkeypatch.setenv("MEDCODEC_ITERATIONS", "five")
    with pytest.raises(InputError, match="MEDCODEC_ITERATIONS"):
        iterations_from_environment()


def test_every_front_end_reaches_the_same_options(monkeypatch):
    """The CLI, batch conversion and the SimpleITK hook build the same EncodeOptions for the
    same request (so a lossless write has the same base everywhere)."""
    from medcodec import cli
    from medcodec_plugins.sitk_hook import write_options

    monkeypatch.delenv("MEDCODEC_ITERATIONS", raising=False)
    cases = [(["--lossless"], "lossless", EncodeOptions(max_error=0)),
             (["--psnr", "40", "--roi", "auto"], "psnr=40,roi=auto", EncodeOptions(psnr=40, roi="auto")),
             (["--bpp", "1", "--uniform", "--no-wavelet"], "bpp=1,uniform,no_wavelet",
              EncodeOptions(bpp=1, adaptive=False, wavelet=False)),
             (["-k", "4", "--max-error", "2"], "iterations=4,max_error=2", EncodeOptions(iterations=4, max_error=2))]
    for argv, compressor, expected in cases:
        args = cli.build_parser().parse_args(["encode", "in.nii.gz", "out.mlc", *argv])
        from_cli, from_sitk = cli._encode_options(args), write_options(compressor)
        assert from_cli == expected and from_sitk == expected
        assert from_cli.roi == from_sitk.roi == expected.roi  # roi is not part of == (it may be an array)
    assert write_options("lossless").base_iterations == BOUNDED_ERROR_BASE_ITERATIONS


def test_cli_usage_errors_come_from_the_options(tmp_path, capsys):
    img = tmp_path / "in.nrrd"
    import SimpleITK as sitk

    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 8), np.uint16)), str(img))
    assert main(["encode", str(img), str(tmp_path / "o.mlc"), "--uniform"]) == 2
    assert "need a bpp, ratio or psnr target" in capsys.readouterr().err
    assert not (tmp_path / "o.mlc").exists()


def test_one_lossless_base_everywhere(tmp_path, tiny_model_id, rng):
    """A lossless encode that names no iterations stores the same base through the library
    and the command line (it used to be 8 through the library, 2 through the CLI)."""
    import SimpleITK as sitk

    import medcodec

    vol = rng.integers(0, 4000, (2, 24, 32)).astype(np.uint16)
    medcodec.compress(vol, tmp_path / "lib.mlc", max_error=0)
    sitk.WriteImage(sitk.GetImageFromArray(vol), str(tmp_path / "v.nrrd"))
    assert main(["-q", "encode", str(tmp_path / "v.nrrd"), str(tmp_path / "cli.mlc"), "--lossless"]) == 0
    for name in ("lib.mlc", "cli.mlc"):
        assert medcodec.info(tmp_path / name)["tile_iterations"][1] == BOUNDED_ERROR_BASE_ITERATIONS  # learned, used
        assert np.array_equal(medcodec.decompress(tmp_path / name)[0], vol)
    assert medcodec.info(tmp_path / "lib.mlc")["residual_layer"] == "bounded-error"
