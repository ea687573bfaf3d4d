"""imageio v3 plugin (in a fresh interpreter) and the MONAI reader contract."""

import numpy as np
import pytest

from .conftest import run_py


def test_imageio_v3_read_write(tmp_path, env):
    pytest.importorskip("imageio")
    out = run_py(f"""
        import sys
        import numpy as np
        import imageio.v3 as iio
        a = (np.arange(2 * 32 * 40).reshape(2, 32, 40) % 500).astype(np.int16)
        iio.imwrite({str(tmp_path / 'a.mlc')!r}, a, iterations=2)
        props = iio.improps({str(tmp_path / 'a.mlc')!r})
        assert props.shape == (2, 32, 40) and props.dtype == np.int16, props
        b = iio.imread({str(tmp_path / 'a.mlc')!r})
        assert b.shape == a.shape and b.dtype == a.dtype
        assert iio.immeta({str(tmp_path / 'a.mlc')!r})["iterations"] == 2
        print("ok")
    """, env)
    assert out.strip() == "ok"


def test_monai_reader_contract(tmp_path, tiny_model_id):
    import medcodec
    from medcodec.io.images import Geometry
    from medcodec_plugins.monai_reader import MedcodecReader

    a = (np.arange(3 * 20 * 24).reshape(3, 20, 24) % 900).astype(np.int16)
    g = Geometry((0.5, 0.6, 2.0), (10.0, -5.0, 3.0), (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0))
    medcodec.compress(a, tmp_path / "a.mlc", iterations=2, geometry=g, metadata={"0008|0060": "CT"},
                      model_id=tiny_model_id)
    reader = MedcodecReader()
    assert reader.verify_suffix(str(tmp_path / "a.mlc"))
    assert not reader.verify_suffix("a.nii.gz")
    data, meta = reader.get_data(reader.read(str(tmp_path / "a.mlc")))
    assert data.shape == (24, 20, 3) and data.dtype == np.int16  # (x, y, z) like MONAI's ITKReader
    np.testing.assert_allclose(meta["affine"], [[-0.5, 0, 0, -10.0], [0, -0.6, 0, 5.0], [0, 0, 2.0, 3.0],
                                                [0, 0, 0, 1]])
    assert list(meta["spatial_shape"]) == [24, 20, 3] and meta["0008|0060"] == "CT"
    both, meta2 = reader.get_data(reader.read([str(tmp_path / "a.mlc")] * 2))
    assert both.shape == (2, 24, 20, 3) and meta2["original_channel_dim"] == 0
