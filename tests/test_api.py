"""Library API with a tiny random model: dtypes, dimensions, geometry, progressive decoding,
rate accounting and errors. (Quality is tested with the shipped model in test_end_to_end.)"""

import os

import numpy as np
import pytest

import medcodec.format as mlc
import medcodec
from medcodec import prep
from medcodec.model import checkpoint, runtime
from medcodec.errors import InputError, MedcodecError, ModelMismatchError, WriteError
from medcodec.io.images import Geometry


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    checkpoint.load.cache_clear()
    yield
    checkpoint.load.cache_clear()


@pytest.mark.parametrize("dtype,lo,hi", [("int16", -1024, 3071), ("uint16", 0, 65535),
                                         ("uint8", 0, 255), ("float32", -1.5, 2.5)])
def test_round_trip_keeps_dtype_shape_and_range(tmp_path, tiny_model_id, rng, dtype, lo, hi):
    if dtype == "float32":
        a = rng.uniform(lo, hi, (3, 21, 37)).astype(dtype)
    else:
        a = rng.integers(lo, hi, (3, 21, 37), endpoint=True).astype(dtype)
    stats = medcodec.compress(a, tmp_path / "a.mlc", iterations=2, model_id=tiny_model_id)
    out, header = medcodec.decompress(tmp_path / "a.mlc")
    assert out.dtype == a.dtype and out.shape == a.shape
    assert out.min() >= a.min() and out.max() <= a.max()
    assert stats.bytes == os.path.getsize(tmp_path / "a.mlc")
    assert stats.bpp == pytest.approx(8 * stats.bytes / a.size)
    assert stats.psnr == pytest.approx(prep.psnr(a, out), abs=1e-6)
    assert header.pixel_type == dtype and header.window == (float(a.min()), float(a.max()))


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (40, 33), (2, 17, 19), (2, 3, 16, 20)])
def test_dimensions_and_odd_sizes(tmp_path, tiny_model_id, rng, shape):
    a = rng.integers(0, 4095, shape).astype(np.uint16)
    medcodec.compress(a, tmp_path / "a.mlc", iterations=1, model_id=tiny_model_id)
    out, header = medcodec.decompress(tmp_path / "a.mlc")
    assert out.shape == a.shape
    assert header.size == tuple(reversed(shape)) and header.ndim == len(shape)


def test_geometry_and_metadata_are_kept_exactly(tmp_path, tiny_model_id, rng):
    a = rng.integers(-1000, 1000, (4, 20, 24)).astype(np.int16)
    g = Geometry((0.7031250001, 0.7031250001, 2.5), (-180.123456789, -90.5, 1234.75),
                 (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0))
    meta = {"0010|0010": "Anon^Patient", "0008|0060": "CT"}
    medcodec.compress(a, tmp_path / "a.mlc", iterations=1, geometry=g, metadata=meta, model_id=tiny_model_id)
    image = medcodec.read(tmp_path / "a.mlc")
    assert image.GetSpacing() == g.spacing
    assert image.GetOrigin() == g.origin
    assert image.GetDirection() == g.direction
    read_back = {k: image.GetMetaData(k) for k in image.GetMetaDataKeys()}
    assert {k: read_back.pop(k) for k in meta} == meta
    # what is added says the image is lossy (DICOM PS3.3 C.7.6.1.1.5), nothing else
    assert set(read_back) == {"0028|2110", "0028|2112", "0028|2114", "ITK_FileNotes"}
    assert read_back["0028|2110"] == "01"
    assert image.GetPixelIDTypeAsString() == "16-bit signed integer"


def test_progressive_prefix_equals_shorter_encode_and_rate_grows(tmp_path, tiny_model_id, rng):
    a = rng.integers(0, 1000, (3, 40, 50)).astype(np.int16)
    big = medcodec.compress(a, tmp_path / "k4.mlc", iterations=4, model_id=tiny_model_id)
    prev_bytes = 0
    for k in (1, 2, 3):
        small = medcodec.compress(a, tmp_path / f"k{k}.mlc", iterations=k, model_id=tiny_model_id)
        assert prev_bytes < small.bytes < big.bytes
        prev_bytes = small.bytes
        prefix, h = medcodec.decompress(tmp_path / "k4.mlc", iterations=k)
        full, _ = medcodec.decompress(tmp_path / f"k{k}.mlc")
        np.testing.assert_array_equal(prefix, full)
        assert h.iterations == 4


def test_sitk_image_round_trip(tmp_path, tiny_model_id, ct_small_path):
    import SimpleITK as sitk

    img = sitk.ReadImage(str(ct_small_path))
    medcodec.write(img, tmp_path / "ct.mlc", iterations=2, model_id=tiny_model_id)
    out = medcodec.read(tmp_path / "ct.mlc")
    assert out.GetSize() == img.GetSize() and out.GetSpacing() == img.GetSpacing()
    assert out.GetOrigin() == img.GetOrigin() and out.GetDirection() == img.GetDirection()
    assert out.GetPixelID() == img.GetPixelID()
    assert out.GetMetaData("0008|0060") == img.GetMetaData("0008|0060")
    st = medcodec.write(img, tmp_path / "r.mlc", psnr=10.0, roi="auto", background_weight=0.2)
    assert st.psnr_roi is not None and st.psnr_roi >= 10.0
    with pytest.raises(InputError, match="need a bpp"):
        medcodec.write(img, tmp_path / "x.mlc", iterations=2, roi="auto")


def test_info_needs_no_decoding(tmp_path, tiny_model_id, rng):
    a = rng.integers(0, 255, (2, 20, 30)).astype(np.uint8)
    s = medcodec.compress(a, tmp_path / "a.mlc", iterations=3, model_id=tiny_model_id)
    facts = medcodec.info(tmp_path / "a.mlc")
    assert facts["size"] == [30, 20, 2] and facts["iterations"] == 3
    assert facts["model_id"] == tiny_model_id and facts["bytes"] == s.bytes
    assert facts["pixel_type"] == "uint8"


def test_errors(tmp_path, tiny_model_id, rng):
    a = rng.integers(0, 255, (20, 30)).astype(np.uint8)
    with pytest.raises(InputError, match="iterations"):
        medcodec.compress(a, tmp_path / "a.mlc", iterations=99, model_id=tiny_model_id)
    with pytest.raises(InputError, match="NaN"):
        medcodec.compress(np.full((8, 8), np.nan, np.float32), tmp_path / "n.mlc", model_id=tiny_model_id)
    assert not (tmp_path / "n.mlc").exists()
    medcodec.compress(a, tmp_path / "a.mlc", iterations=1, model_id=tiny_model_id)
    with pytest.raises(WriteError, match="exists"):
        medcodec.compress(a, tmp_path / "a.mlc", iterations=2, model_id=tiny_model_id)
    with pytest.raises(InputError, match="from 1 to 1"):
        medcodec.decompress(tmp_path / "a.mlc", iterations=2)
    with pytest.raises(ModelMismatchError, match="not installed"):
        medcodec.compress(a, tmp_path / "b.mlc", model_id="nonexistent-12345678")


def test_unknown_model_in_file(tmp_path, tiny_model_id, rng, monkeypatch):
    a = rng.integers(0, 255, (20, 30)).astype(np.uint8)
    medcodec.compress(a, tmp_path / "a.mlc", iterations=1, model_id=tiny_model_id)
    monkeypatch.setenv("MEDCODEC_CHECKPOINTS", str(tmp_path / "empty"))
    checkpoint.load.cache_clear()
    with pytest.raises(ModelMismatchError, match=tiny_model_id):
        medcodec.decompress(tmp_path / "a.mlc")


def test_corrupted_file_never_decodes(tmp_path, tiny_model_id, rng):
    a = rng.integers(0, 255, (2, 20, 30)).astype(np.uint8)
    medcodec.compress(a, tmp_path / "a.mlc", iterations=2, model_id=tiny_model_id)
    data = bytearray((tmp_path / "a.mlc").read_bytes())
    for i in range(0, len(data), 7):
        bad = bytearray(data)
        bad[i] ^= 0x01
        (tmp_path / "b.mlc").write_bytes(bytes(bad))
        with pytest.raises(MedcodecError):
            medcodec.decompress(tmp_path / "b.mlc")


def test_import_and_info_do_not_import_jax_or_numba():
    import subprocess
    import sys
    from pathlib import Path

    golden = Path(__file__).parent / "data" / "golden_v1.mlc"
    code = ("import sys, medcodec; f = medcodec.info(sys.argv[1]); assert f['size'] == [40, 30, 2]; "
            "print(sorted(m for m in ('jax', 'flax', 'SimpleITK', 'orbax', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(golden)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_decode_some_slices_equals_full_decode(tmp_path, tiny_model_id, rng):
    from medcodec.api import decode_slices

    a = rng.integers(0, 4000, (2, 3, 20, 24)).astype(np.uint16)  # 4D: 6 slices
    medcodec.compress(a, tmp_path / "a.mlc", iterations=2, model_id=tiny_model_id)
    full, _ = medcodec.decompress(tmp_path / "a.mlc")
    part, h = decode_slices(tmp_path / "a.mlc", slices=[4, 1])
    np.testing.assert_array_equal(part, full.reshape(6, 20, 24)[[4, 1]])
    with pytest.raises(InputError, match="out of range"):
        decode_slices(tmp_path / "a.mlc", slices=[6])


def test_bad_geometry_is_refused_before_encoding(tmp_path, tiny_model_id):
    g = Geometry((1.0, 0.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(InputError, match="non-positive geometry"):
        medcodec.compress(np.zeros((16, 16), np.uint8), tmp_path / "a.mlc", iterations=1, geometry=g,
                          model_id=tiny_model_id)
    assert not (tmp_path / "a.mlc").exists()


def test_wavelet_residual_layer_through_the_library(tmp_path, tiny_model_id, rng):
    """compress(transform_step=S): a volume (with pieces of slices and region reads) decodes
    to what the encoder measured; fewer iterations ignore the layer; bad steps are refused."""
    vol = (rng.normal(size=(3, 40, 50)) * 200 + 1000).astype(np.uint16)
    st = medcodec.compress(vol, tmp_path / "w.mlc", iterations=2, transform_step=20.0)
    out, _ = medcodec.decompress(tmp_path / "w.mlc")
    assert st.transform_step == 20.0 and prep.psnr(vol, out) == pytest.approx(st.psnr)
    preview, _ = medcodec.decompress(tmp_path / "w.mlc", iterations=1)  # the layer needs all iterations
    assert prep.psnr(vol, preview) < st.psnr - 10
    part, _ = medcodec.api.decode_slices(tmp_path / "w.mlc", slices=[2])
    np.testing.assert_array_equal(part[0], out[2])
    finer = medcodec.compress(vol, tmp_path / "f.mlc", iterations=2, transform_step=5.0)
    assert finer.psnr > st.psnr and finer.bytes > st.bytes
    assert "wavelet layer step 20" in st.summary()
    for bad in (0.0, -1.0, float("nan"), "3", True):
        with pytest.raises(InputError, match="transform_step"):
            medcodec.compress(vol, tmp_path / "x.mlc", transform_step=bad)
    with pytest.raises(InputError, match="not both"):
        medcodec.compress(vol, tmp_path / "x.mlc", transform_step=2.0, max_error=1)
    assert not (tmp_path / "x.mlc").exists()


def test_zero_count_tiles_decode_to_the_window_middle_without_the_network(tmp_path, tiny_model_id, rng):
    """A file whose tiles all have count 0 (rate control's "no learned iteration" base):
    the decoder skips the network and gives what the encoder measured."""
    from medcodec.model import checkpoint

    vol = (rng.normal(size=(2, 40, 50)) * 200 + 1000).astype(np.int16)
    factor = checkpoint.load(tiny_model_id).config.factor
    zero = mlc.TileMap(-(-50 // factor), np.zeros((2, 1, 1), np.uint8))  # one tile per slice, count 0
    base = medcodec.compress(vol, tmp_path / "b.mlc", iterations=1, tiles=zero)
    out, h = medcodec.decompress(tmp_path / "b.mlc")
    assert np.all(out == np.rint((h.window[0] + h.window[1]) / 2)) and prep.psnr(vol, out) == base.psnr
    st = medcodec.compress(vol, tmp_path / "w.mlc", iterations=1, tiles=zero, transform_step=10.0)
    out, _ = medcodec.decompress(tmp_path / "w.mlc")
    assert prep.psnr(vol, out) == st.psnr and st.psnr > 40
    assert mlc.read_header(tmp_path / "w.mlc").version == (1, 3)
    facts = medcodec.info(tmp_path / "w.mlc")
    assert facts["tile_iterations"] == [0, 0] and facts["residual_layer"] == "wavelet"


def test_decode_precision_choice(tmp_path, tiny_model_id, rng, monkeypatch):
    """auto = float32 on a CPU, bfloat16 on a GPU/TPU unless a residual layer is applied;
    bfloat16 really runs (close to, not equal to, float32); bad requests are refused."""
    from medcodec import api

    vol = rng.integers(0, 4000, (2, 40, 48)).astype(np.uint16)
    medcodec.compress(vol, tmp_path / "a.mlc", iterations=3, model_id=tiny_model_id)
    medcodec.compress(vol, tmp_path / "b.mlc", iterations=2, max_error=3, model_id=tiny_model_id)
    f32, _ = medcodec.decompress(tmp_path / "a.mlc", precision="float32")
    np.testing.assert_array_equal(medcodec.decompress(tmp_path / "a.mlc")[0], f32)  # auto on this CPU
    bf16, _ = medcodec.decompress(tmp_path / "a.mlc", precision="bfloat16")
    assert not np.array_equal(bf16, f32)
    assert abs(prep.psnr(vol, bf16) - prep.psnr(vol, f32)) < 0.5
    assert api.decode_precision("auto", layered=False) == "float32"
    monkeypatch.setattr(runtime, "accelerated", lambda: True)
    assert api.decode_precision("auto", layered=False) == "bfloat16"
    assert api.decode_precision("auto", layered=True) == "float32"
    assert api.decode_precision("float32", layered=False) == "float32"
    with pytest.raises(InputError, match="precision must be one of"):
        medcodec.decompress(tmp_path / "a.mlc", precision="float16")
    with pytest.raises(InputError, match="residual layer"):
        medcodec.decompress(tmp_path / "b.mlc", precision="bfloat16")
    # a preview skips the layer, so it may use bfloat16; the full decode keeps its bound
    medcodec.decompress(tmp_path / "b.mlc", iterations=1, precision="bfloat16")
    assert prep.max_abs_error(vol, medcodec.decompress(tmp_path / "b.mlc")[0]) <= 3
