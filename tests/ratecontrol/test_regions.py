"""Regions that matter: the automatic body mask, cell weights, and rate control that holds
a PSNR target inside the region."""

import numpy as np
import pytest

from medcodec import api, prep, ratecontrol
from medcodec.ratecontrol import regions
from medcodec.errors import InputError


def ct_phantom(rng, n=96):
    """Air at -1000 HU, a body disk (soft tissue with a lung-like hole), a separate table."""
    yy, xx = np.mgrid[:n, :n]
    img = np.full((n, n), -1000.0) + rng.normal(0, 5, (n, n))
    body = (yy - 40) ** 2 + (xx - 48) ** 2 < 30 ** 2
    img[body] = 40 + rng.normal(0, 20, body.sum())
    img[(yy - 40) ** 2 + (xx - 40) ** 2 < 8 ** 2] = -850  # air inside the body: filled
    img[84:88, 10:86] = 300  # the scanner table
    return img.astype(np.int16), body


def test_body_mask_finds_the_body_not_the_table(rng):
    img, body = ct_phantom(rng)
    m = regions.body_mask(img)
    assert m.shape == img.shape and m[body].all()  # holes filled
    assert not m[84:88, 10:86].any()  # table dropped (separate component)
    assert m.sum() < 1.2 * body.sum()  # dilated by 2 px only
    vol = regions.body_mask(np.stack([img, img]))
    np.testing.assert_array_equal(vol[1], m)


def test_body_mask_of_mr_like_image(rng):
    yy, xx = np.mgrid[:80, :80]
    img = rng.rayleigh(8, (80, 80))  # MR background noise
    head = (yy - 40) ** 2 + (xx - 40) ** 2 < 25 ** 2
    img[head] = 600 + rng.normal(0, 40, head.sum())
    m = regions.body_mask(img.astype(np.uint16))
    assert m[head].mean() > 0.99 and m[~head].mean() < 0.1


def test_cell_weights_and_mask_checks():
    mask = np.zeros((1, 40, 40), bool)
    mask[:, :16, :16] = True
    w = regions.cell_weights(mask, 16, (3, 3), background_weight=0.1)
    assert w[0, 0, 0] == 1.0 and w[0, 1, 1] == pytest.approx(0.1)
    assert w[0, 2, 2] == pytest.approx(0.1) and w.shape == (1, 3, 3)  # partial edge cell
    with pytest.raises(InputError, match="shape"):
        regions.check_mask(np.ones((3, 3)), (4, 4))
    with pytest.raises(InputError, match="empty"):
        regions.check_mask(np.zeros((4, 4)), (4, 4))
    with pytest.raises(InputError, match="0..1"):
        regions.cell_weights(mask, 16, (3, 3), background_weight=2.0)


def test_rate_control_with_a_region(tmp_path, tiny_model_id, rng):
    img, body = ct_phantom(rng, 128)
    mask = regions.body_mask(img)
    flt = img.astype(np.float32)  # float: no bounded-error candidate; no wavelet: the tiles are tested
    api.compress(flt, tmp_path / "f.mlc", iterations=4)
    reach = prep.psnr(flt, api.decompress(tmp_path / "f.mlc")[0], inside=mask)
    goal = reach - 0.3  # within the network's reach
    st = ratecontrol.compress_to(flt, tmp_path / "r.mlc", psnr=goal, roi=mask, wavelet=False)
    decoded, _ = api.decompress(tmp_path / "r.mlc")
    assert st.psnr_roi == pytest.approx(prep.psnr(flt, decoded, inside=mask)) and st.psnr_roi >= goal
    assert st.tiles is not None and prep.psnr(flt, decoded) == pytest.approx(st.psnr, abs=1e-9)
    # an integer image also gets the residual-layer candidate: whichever is smaller, the region meets it
    st = ratecontrol.compress_to(img, tmp_path / "i.mlc", psnr=goal, roi=mask)
    assert prep.psnr(img, api.decompress(tmp_path / "i.mlc")[0], inside=mask) >= goal
    st = ratecontrol.compress_to(img, tmp_path / "e.mlc", psnr=reach + 10, roi=mask)  # a residual layer
    decoded, _ = api.decompress(tmp_path / "e.mlc")
    assert (st.transform_step is not None or st.error_bound is not None) and prep.psnr(img, decoded, inside=mask) >= reach + 10
    assert st.psnr_roi == pytest.approx(prep.psnr(img, decoded, inside=mask))
    st = ratecontrol.compress_to(img, tmp_path / "e2.mlc", psnr=reach + 10, roi=mask, wavelet=False)
    decoded, _ = api.decompress(tmp_path / "e2.mlc")
    assert st.error_bound is not None and prep.psnr(img, decoded, inside=mask) >= reach + 10
    st = ratecontrol.compress_to(img, tmp_path / "b.mlc", bpp=0.3, roi="auto")
    assert st.psnr_roi is not None and st.bpp <= 0.3
    with pytest.raises(InputError, match="0..1"):  # refused before any encoding
        ratecontrol.compress_to(img, tmp_path / "w.mlc", bpp=0.3, roi="auto", background_weight=-1)
    with pytest.raises(InputError, match="adaptive"):
        ratecontrol.compress_to(img, tmp_path / "u.mlc", bpp=0.3, roi="auto", adaptive=False)
