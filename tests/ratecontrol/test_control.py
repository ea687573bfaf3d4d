"""Rate-control modes: the chosen prefix meets a bpp / ratio / PSNR target on the real file."""

import numpy as np
import pytest

from medcodec import api, prep, ratecontrol
from medcodec.errors import InputError


@pytest.fixture
def ct(ct_small_path):
    import pydicom

    return pydicom.dcmread(str(ct_small_path)).pixel_array.astype(np.int16)


def test_bpp_and_ratio_targets_are_met_from_file_bytes(tmp_path, tiny_model_id, ct):
    full = api.compress(ct, tmp_path / "full.mlc", iterations=4)
    target = 8.0 * (tmp_path / "full.mlc").stat().st_size / ct.size * 0.8  # forces fewer iterations
    st = ratecontrol.compress_to(ct, tmp_path / "u.mlc", bpp=target, adaptive=False, wavelet=False)
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
    st = ratecontrol.compress_to(ct, tmp_path / "q.mlc", psnr=55.0)  # only a residual layer can
    decoded, _ = api.decompress(tmp_path / "q.mlc")
    assert (st.error_bound is not None or st.transform_step is not None) and prep.psnr(ct, decoded) >= 55.0
    st = ratecontrol.compress_to(ct, tmp_path / "b.mlc", psnr=55.0, wavelet=False)
    assert st.error_bound is not None and prep.psnr(ct, api.decompress(tmp_path / "b.mlc")[0]) >= 55.0


def test_wavelet_layer_meets_psnr_with_the_smallest_file(tmp_path, tiny_model_id, ct):
    """At 45 dB the wavelet residual layer beats the bounded-error layer by far; its file
    decodes to the measured quality and says what it holds."""
    st = ratecontrol.compress_to(ct, tmp_path / "w.mlc", psnr=45.0)
    decoded, _ = api.decompress(tmp_path / "w.mlc")
    assert st.transform_step is not None and st.error_bound is None
    assert prep.psnr(ct, decoded) == pytest.approx(st.psnr) and st.psnr >= 45.0
    info = api.info(tmp_path / "w.mlc")
    assert info["residual_layer"] == "wavelet" and info["format_version"] == "1.3"
    bounded = ratecontrol.compress_to(ct, tmp_path / "b.mlc", psnr=45.0, wavelet=False)
    assert bounded.transform_step is None and bounded.bytes > 1.3 * st.bytes
    assert st.iterations in (0, 1, 2, 4) and f"({st.iterations} iterations" in st.summary()
    if st.iterations == 0:  # no learned iterations: every tile at count 0, one stored iteration
        assert api.info(tmp_path / "w.mlc")["tile_iterations"] == [0, 0]


def test_fewer_iterations_than_stored_ignore_the_wavelet_layer(tmp_path, tiny_model_id, ct):
    """A preview (fewer iterations than stored) is the learned part alone: exactly what the
    same codes without the layer decode to."""
    with_layer = api.compress(ct, tmp_path / "w.mlc", iterations=3, transform_step=20.0)
    api.compress(ct, tmp_path / "n.mlc", iterations=3)
    assert with_layer.transform_step == 20.0
    preview, _ = api.decompress(tmp_path / "w.mlc", iterations=2)
    plain, _ = api.decompress(tmp_path / "n.mlc", iterations=2)
    np.testing.assert_array_equal(preview, plain)
    full, _ = api.decompress(tmp_path / "w.mlc")
    assert prep.psnr(ct, full) > prep.psnr(ct, preview) + 1.0


def test_wavelet_layer_under_a_rate_target(tmp_path, tiny_model_id, ct):
    st = ratecontrol.compress_to(ct, tmp_path / "r.mlc", bpp=1.0)
    assert 0.95 <= st.bpp <= 1.0 and st.bpp == 8.0 * (tmp_path / "r.mlc").stat().st_size / ct.size
    assert st.transform_step is not None  # random network weights: the wavelet layer wins
    assert prep.psnr(ct, api.decompress(tmp_path / "r.mlc")[0]) == pytest.approx(st.psnr)


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


def test_a_volume_probed_on_sampled_slices_never_runs_the_network(tmp_path, tiny_model_id, monkeypatch):
    """A volume of PROBE_MIN_SLICES slices whose sample keeps a residual layer over no learned
    iterations: the network runs on the sample only, and the file is the one rate control
    without the probe writes (decoded here to the PSNR it reports)."""
    import SimpleITK as sitk

    from medcodec.pipeline import encode
    from medcodec.ratecontrol import control
    from medcodec.samples import sample_path

    vol = np.ascontiguousarray(sitk.GetArrayFromImage(sitk.ReadImage(str(sample_path())))[:, 40:104, 30:94])
    assert len(vol) >= control.PROBE_MIN_SLICES
    calls, real = [], encode.compress

    def spy(array, path, **kw):
        calls.append((len(array), kw["iterations"]))
        return real(array, path, **kw)

    monkeypatch.setattr(encode, "compress", spy)
    st = ratecontrol.compress_to(vol, tmp_path / "p.mlc", psnr=45.0, model_id=tiny_model_id)
    assert st.iterations == 0 and st.psnr >= 45.0
    assert prep.psnr(vol, api.decompress(tmp_path / "p.mlc")[0]) == pytest.approx(st.psnr)
    assert any(n == control.PROBE_SLICES and k for n, k in calls)  # the sample: learned iterations
    assert all(k == 0 for n, k in calls if n == len(vol))  # the whole volume: no learned iteration
    monkeypatch.setattr(control, "PROBE_MIN_SLICES", 10 ** 9)  # rate control without the probe
    monkeypatch.setattr(control, "_first_iteration_loses", lambda *a, **k: None)  # nor the gate
    calls.clear()
    without = ratecontrol.compress_to(vol, tmp_path / "q.mlc", psnr=45.0, model_id=tiny_model_id)
    assert any(n == len(vol) and k for n, k in calls)  # this one ran the network on the volume
    assert (tmp_path / "p.mlc").read_bytes() == (tmp_path / "q.mlc").read_bytes() and without.bytes == st.bytes


def test_the_gate_leaves_out_the_network_after_one_iteration(tmp_path, ct, monkeypatch):
    """With the shipped model on a real CT slice, where the wavelet layer over no learned
    iterations clearly beats it over one, the network runs one iteration and the file is the
    one the full search (all 4 iterations allowed, every base, learned-only candidates) keeps; with
    the gate shut (ratio 0) the full search runs."""
    from medcodec.model import checkpoint
    from medcodec.pipeline import encode
    from medcodec.ratecontrol import control

    model_id, calls, real = checkpoint.default_model_id(), [], encode.compress

    def spy(array, path, **kw):
        calls.append(kw["iterations"])
        return real(array, path, **kw)

    monkeypatch.setattr(encode, "compress", spy)
    for target in ({"bpp": 1.0}, {"psnr": 45.0}):
        calls.clear()
        gated = ratecontrol.compress_to(ct, tmp_path / "g.mlc", model_id=model_id, iterations=4, overwrite=True, **target)
        assert calls[0] == 1 and set(calls[1:]) == {0}  # one learned iteration, then none
        assert gated.iterations == 0 and prep.psnr(ct, api.decompress(tmp_path / "g.mlc")[0]) == pytest.approx(gated.psnr)
        with monkeypatch.context() as shut:
            shut.setattr(control, "GATE_RATIO", 0.0)
            calls.clear()
            full = ratecontrol.compress_to(ct, tmp_path / "f.mlc", model_id=model_id, iterations=4, overwrite=True, **target)
        assert max(calls) > 1  # the full search ran the network on all its iterations
        assert (tmp_path / "g.mlc").read_bytes() == (tmp_path / "f.mlc").read_bytes() and full.bytes == gated.bytes
