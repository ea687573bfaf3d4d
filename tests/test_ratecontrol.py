"""Rate-control modes: the chosen prefix meets a bpp / ratio / PSNR target on the real file."""

import numpy as np
import pytest

from medcodec import api, container, prep, ratecontrol
from medcodec.errors import InputError


@pytest.fixture
def ct(ct_small_path):
    import pydicom

    return pydicom.dcmread(str(ct_small_path)).pixel_array.astype(np.int16)


def test_bpp_and_ratio_targets_are_met_from_file_bytes(tmp_path, tiny_model_id, ct):
    full = api.compress(ct, tmp_path / "full.mlc", iterations=4)
    target = 8.0 * (tmp_path / "full.mlc").stat().st_size / ct.size * 0.8  # forces fewer iterations
    st = ratecontrol.compress_to(ct, tmp_path / "u.mlc", bpp=target, adaptive=False)
    assert st.bpp == 8.0 * (tmp_path / "u.mlc").stat().st_size / ct.size
    assert st.bpp <= target and 1 <= st.iterations < full.iterations and st.tiles is None
    uniform = st
    st = ratecontrol.compress_to(ct, tmp_path / "r.mlc", ratio=ct.nbytes / (st.bytes * 1.01))
    assert st.ratio >= ct.nbytes / (st.bytes * 1.01)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_psnr_target_within_and_beyond_the_network(tmp_path, tiny_model_id, ct):
    st = ratecontrol.compress_to(ct, tmp_path / "p.mlc", psnr=12.0)  # random weights reach this
    decoded, _ = api.decompress(tmp_path / "p.mlc")
    assert prep.psnr(ct, decoded) >= 12.0 and st.error_bound is None
    st = ratecontrol.compress_to(ct, tmp_path / "q.mlc", psnr=55.0)  # only the residual layer can
    decoded, _ = api.decompress(tmp_path / "q.mlc")
    assert st.error_bound is not None and prep.psnr(ct, decoded) >= 55.0


def test_unreachable_and_bad_targets(tmp_path, tiny_model_id, ct):
    with pytest.raises(InputError, match="out of reach"):
        ratecontrol.compress_to(ct, tmp_path / "x.mlc", bpp=0.0001)
    with pytest.raises(InputError, match="exactly one"):
        ratecontrol.compress_to(ct, tmp_path / "x.mlc", bpp=1.0, psnr=40.0)
    with pytest.raises(InputError, match="do not combine"):
        ratecontrol.compress_to(ct, tmp_path / "x.mlc", psnr=40.0, max_error=2)
    with pytest.raises(InputError, match="cap"):
        ratecontrol.compress_to(ct, tmp_path / "x.mlc", bpp=1.0, iterations=0)
    with pytest.raises(InputError, match="positive"):
        ratecontrol.compress_to(ct, tmp_path / "x.mlc", ratio=-3)
    assert not list(tmp_path.iterdir())
