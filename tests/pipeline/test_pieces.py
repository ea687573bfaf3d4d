"""Slices too large for the network in one piece are coded in pieces (GRID chunk)."""

import numpy as np
import pytest

import medcodec.format as mlc
from medcodec import api, prep, ratecontrol
from medcodec.errors import ContainerError


@pytest.fixture
def small_pieces(monkeypatch):
    monkeypatch.setenv("MEDCODEC_MAX_PIECE_SIDE", "64")


@pytest.mark.parametrize("h,w", [(150, 100), (64, 65), (1, 200), (129, 1)])
def test_piece_split_and_join_round_trip(small_pieces, rng, h, w):
    grid = prep.piece_grid(h, w, 16)
    ty, tx, ph, pw = grid
    assert ph <= 64 and pw <= 64 and ph % 16 == 0 and pw % 16 == 0
    assert (ty - 1) * ph < h <= ty * ph and (tx - 1) * pw < w <= tx * pw  # no empty row/column
    s = rng.integers(0, 1000, (2, h, w))
    pieces = prep.to_pieces(s, *grid)
    assert pieces.shape == (2 * ty * tx, ph, pw)
    np.testing.assert_array_equal(prep.from_pieces(pieces, ty, tx, h, w), s)
    assert prep.piece_grid(64, 64, 16) is None


def test_large_slices_are_coded_in_pieces(small_pieces, tmp_path, tiny_model_id, rng):
    yy, xx = np.mgrid[:150, :100]
    vol = np.stack([(1000 + 400 * np.sin(xx / 9.0 + k) * np.cos(yy / 13.0)).astype(np.int16) for k in range(3)])
    st = api.compress(vol, tmp_path / "p.mlc", iterations=3)
    h = mlc.read_header(tmp_path / "p.mlc")
    assert h.grid == (3, 2) and h.slices == 18 and (h.height, h.width) == (64, 64) and h.version == (1, 2)
    assert h.size == (100, 150, 3) and api.info(tmp_path / "p.mlc")["slices"] == 3
    dec, _ = api.decompress(tmp_path / "p.mlc")
    assert dec.shape == vol.shape and dec.dtype == vol.dtype
    assert prep.psnr(vol, dec) == pytest.approx(st.psnr, abs=1e-9)  # encoder's recon = decoder's
    some, _ = api.decode_slices(tmp_path / "p.mlc", slices=[2, 0])
    np.testing.assert_array_equal(some, dec[[2, 0]])
    api.compress(vol, tmp_path / "l.mlc", max_error=0, iterations=2)  # lossless in pieces
    np.testing.assert_array_equal(api.decompress(tmp_path / "l.mlc")[0], vol)
    # rate control plans tiles over the pieces
    r = ratecontrol.compress_to(vol, tmp_path / "r.mlc", bpp=st.bpp * 0.8, roi="auto")
    assert r.bpp <= st.bpp * 0.8 and r.psnr_roi is not None
    np.testing.assert_array_equal(api.decompress(tmp_path / "r.mlc")[0].shape, vol.shape)


def test_sitk_image_in_pieces_keeps_geometry(small_pieces, tmp_path, tiny_model_id, rng):
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(rng.integers(0, 500, (70, 130)).astype(np.uint16))
    img.SetSpacing((0.2, 0.3))
    img.SetOrigin((5.0, -2.0))
    api.write(img, tmp_path / "x.mlc", iterations=2)
    back = api.read(tmp_path / "x.mlc")
    assert back.GetSize() == (130, 70) and back.GetSpacing() == (0.2, 0.3) and back.GetOrigin() == (5.0, -2.0)


def test_pieces_that_do_not_cover_the_image_are_refused():
    h = mlc.Header(
        ndim=2, pixel_type="int16", size=(100, 150), spacing=(1.0, 1.0), origin=(0.0, 0.0),
        direction=(1.0, 0, 0, 1.0), window=(0.0, 1.0), slices=6, height=64, width=64, coded_height=64,
        coded_width=64, iterations=1, bits=8, model_id="test-00000000", grid=(3, 2))
    mlc.validate_header(h)
    for bad in ((2, 2), (4, 2), (3, 1), (0, 2)):
        with pytest.raises(ContainerError, match="inconsistent"):
            mlc.validate_header(mlc.Header(**{**h.__dict__, "grid": bad}))


def test_wavelet_layer_over_pieces_meets_its_psnr(small_pieces, tmp_path, tiny_model_id, rng):
    """The step is planned on whole slices but coded per piece: the real file is checked
    and the step shrunk until it meets the target."""
    yy, xx = np.mgrid[:150, :100]
    vol = (1000 + 400 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + rng.normal(0, 20, (150, 100))).astype(np.int16)
    st = ratecontrol.compress_to(vol, tmp_path / "w.mlc", psnr=42.0)
    assert mlc.read_header(tmp_path / "w.mlc").grid == (3, 2)
    assert st.transform_step is not None
    assert prep.psnr(vol, api.decompress(tmp_path / "w.mlc")[0]) == pytest.approx(st.psnr) and st.psnr >= 42.0
