"""Adaptive tiles: masked entropy coding, the TILE chunk (.mlc 1.2), RD planning, and
encode/decode with per-tile iteration counts."""

from pathlib import Path

import numpy as np
import pytest

import medcodec.format as mlc
from medcodec.format import spec as mlc_spec
from medcodec.coding import codes as code_model
from medcodec.pipeline.layout import by_iterations
from medcodec import api, prep
from medcodec.ratecontrol import tiles
from medcodec.errors import ContainerError

GOLDEN_1_2 = Path(__file__).parent.parent / "data" / "golden_v1_2.mlc"  # 1.2: adaptive tiles


def _masked_codes(seed=5, slices=3, t=4, gh=7, gw=6, bits=8):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, t + 1, (slices, gh, gw))
    counts[1] = 0  # a slice with nothing coded at all
    codes = np.where(rng.random((slices, t, gh, gw, bits)) < 0.3, 1, -1).astype(np.int8)
    codes[2, :, :3] = 1  # flat: its chunks deflate
    active = np.arange(t)[None, :, None, None] < counts[:, None]
    return codes * active[..., None], counts


def test_masked_entropy_coding_round_trips_and_codes_only_active_cells():
    codes, counts = _masked_codes()
    chunks = code_model.encode_slices(codes, counts)
    np.testing.assert_array_equal(code_model.decode_slices(chunks, (7, 6, 8), counts), codes)
    np.testing.assert_array_equal(code_model.decode_slices([c[:2] for c in chunks], (7, 6, 8), counts),
                                  codes[:, :2])
    # fewer active cells, fewer bytes: the empty slice costs (almost) nothing
    assert sum(len(d) for _, d in chunks[1]) <= 4 * 4
    full = code_model.encode_slices(np.where(codes == 0, 1, codes))
    assert sum(len(d) for c in chunks for _, d in c) < sum(len(d) for c in full for _, d in c)


def make_header(iterations=4):
    return mlc.Header(
        ndim=3, pixel_type="int16", size=(90, 100, 2), spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0),
        direction=(1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0), window=(-1024.0, 3071.0), slices=2, height=100,
        width=90, coded_height=112, coded_width=96, iterations=iterations, bits=8, model_id="test-00000000")


def _tiled_file(path, iterations=4):
    """2 slices of 7x6 cells, 3x3-cell tiles (3x2 tiles, the last row/column partial)."""
    rng = np.random.default_rng(11)
    tile_counts = rng.integers(0, iterations + 1, (2, 3, 2)).astype(np.uint8)
    tile_counts[0, 0, 0] = 9  # above the stored iterations: capped
    tm = mlc.TileMap(3, tile_counts)
    counts = tm.cell_counts(7, 6)
    codes = np.where(rng.random((2, iterations, 7, 6, 8)) < 0.4, 1, -1).astype(np.int8)
    codes *= (np.arange(iterations)[None, :, None, None] < counts[:, None])[..., None]
    mlc.write(path, make_header(iterations), code_model.encode_slices(codes, counts), tiles=tm)
    return tm, codes, counts


def test_tile_chunk_round_trip_version_and_truncation(tmp_path):
    p = tmp_path / "t.mlc"
    tm, codes, counts = _tiled_file(p)
    with mlc.Reader(p) as r:
        assert r.version == (1, 2)
        np.testing.assert_array_equal(r.tiles.counts, tm.counts)
        chunks = [[r.read_codes(s, t) for t in range(4)] for s in range(2)]
    np.testing.assert_array_equal(code_model.decode_slices(chunks, (7, 6, 8), counts), codes)
    # a truncated tiled file keeps its TILE chunk; its prefix size is exact
    sizes = mlc.prefix_sizes(p)
    assert mlc.truncate(p, tmp_path / "k2.mlc", 2) == sizes[1]
    with mlc.Reader(tmp_path / "k2.mlc") as r:
        np.testing.assert_array_equal(r.tiles.counts, tm.counts)
    # files without tiles still say 1.1, so 1.1 readers open them
    mlc.write(tmp_path / "u.mlc", make_header(), code_model.encode_slices(np.ones((2, 4, 7, 6, 8), np.int8)))
    assert mlc.Reader(tmp_path / "u.mlc").version == (1, 1)


def test_huge_forged_tile_size_allocates_only_the_grid():
    tm = mlc.TileMap(65535, np.full((2, 1, 1), 3, np.uint8))
    assert tm.cell_counts(7, 6).shape == (2, 7, 6) and tm.cell_counts(7, 6).max() == 3
    tm = mlc.TileMap(3, np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
    np.testing.assert_array_equal(tm.cell_counts(4, 7)[0], [[0, 0, 0, 1, 1, 1, 2]] * 3 + [[3, 3, 3, 4, 4, 4, 5]])


def test_golden_v1_2_bytes(tmp_path):
    """The 1.2 layout with a TILE chunk is frozen (regenerate only with a format change)."""
    p = tmp_path / "g.mlc"
    _tiled_file(p)
    assert p.read_bytes() == GOLDEN_1_2.read_bytes(), "1.2 layout changed: files would not stay compatible"


@pytest.mark.parametrize("payload,match", [
    (b"\x03\x00", "too short"),
    (mlc_spec.TILE_PREFIX.pack(3, 5, 3, 2) + b"", "does not match"),
    (mlc_spec.TILE_PREFIX.pack(3, 2, 3, 2) + b"not zlib", "inflate"),
    (mlc_spec.TILE_PREFIX.pack(3, 2, 3, 2) + __import__("zlib").compress(bytes(11)), "wrong number"),
    (mlc_spec.TILE_PREFIX.pack(3, 2, 3, 2) + __import__("zlib").compress(bytes(10**6)), "wrong number"),
    (mlc_spec.TILE_PREFIX.pack(0, 2, 3, 2) + __import__("zlib").compress(bytes(12)), "does not match"),
])
def test_malformed_tile_chunk_is_refused(payload, match):
    with pytest.raises(ContainerError, match=match):
        mlc.TileMap.decode(payload, make_header())


def _costs(seed=0, slices=2, ty=4, tx=4, k=6):
    """Synthetic tiles: flat ones converge after 1 iteration, busy ones keep improving."""
    rng = np.random.default_rng(seed)
    busy = rng.random((slices, ty * 2, tx * 2)) < 0.5
    t = np.arange(k + 1)[:, None, None, None]
    sse = np.where(busy[None], 50.0 * 0.6 ** t, np.where(t == 0, 30.0, 0.01))
    payload = np.full((slices, k), 2000)  # chunk overheads small beside the codes, as in real images
    return tiles.costs(sse, payload, file_bytes=int(payload.sum()) + 35 * payload.size + 500, cells=2)


def test_plan_for_bits_fits_the_budget_and_spends_on_busy_tiles():
    c = _costs()
    uniform_bits = [tiles._total_bits(c, np.full(c.distortion.shape[1:], k)) for k in range(c.max_count + 1)]
    budget = uniform_bits[3]
    plan = tiles.plan_for_bits(c, budget)
    assert tiles._total_bits(c, plan.counts) <= budget
    # same budget, less distortion than 3 iterations everywhere
    assert tiles._total_distortion(c, plan.counts) < tiles._total_distortion(c, np.full(plan.counts.shape, 3))
    assert plan.counts.min() <= 1 and plan.counts.max() > 3


def test_plan_for_distortion_is_cheapest_meeting_the_target():
    c = _costs(1)
    target = tiles._total_distortion(c, np.full(c.distortion.shape[1:], 4))
    plan = tiles.plan_for_distortion(c, target)
    assert tiles._total_distortion(c, plan.counts) <= target
    assert tiles._total_bits(c, plan.counts) < tiles._total_bits(c, np.full(plan.counts.shape, 4))
    unreachable = tiles.plan_for_distortion(c, 0.0)  # the best there is: full count everywhere busy
    assert unreachable.counts.max() == c.max_count


def test_compress_with_tiles_round_trips_exactly(tmp_path, tiny_model_id, rng):
    """The decoder reproduces the encoder's reconstruction with per-tile counts, for a 3D
    volume with odd sizes (partial tiles, bucket padding) and any prefix; a count-0 tile is
    never coded; the bounded-error layer works on top."""
    vol = rng.integers(0, 4000, (3, 70, 50)).astype(np.uint16)
    gh, gw = prep.code_grid(70, 16), prep.code_grid(50, 16)
    counts = rng.integers(0, 4, (3, -(-gh // 2), -(-gw // 2))).astype(np.uint8)
    counts[0, 0, 0] = 0
    tm = mlc.TileMap(2, counts)
    st = api.compress(vol, tmp_path / "a.mlc", iterations=3, tiles=tm)
    dec, h = api.decompress(tmp_path / "a.mlc")
    assert st.cell_sse.shape == (4, 3, gh, gw) and st.tiles["max_iterations"] == 3
    assert prep.psnr(vol, dec) == pytest.approx(st.psnr, abs=1e-9)  # encoder's recon = decoder's
    mid = prep.denormalise(np.zeros((1, 1)), h.window, "uint16")[0, 0]
    assert np.all(dec[0, :32, :32] == mid) and not np.all(dec[0, 32:, 32:] == mid)
    # prefix k of a tiled file = a k-iteration encode with the same tiles
    api.compress(vol, tmp_path / "k2.mlc", iterations=2, tiles=tm)
    np.testing.assert_array_equal(api.decompress(tmp_path / "a.mlc", iterations=2)[0],
                                  api.decompress(tmp_path / "k2.mlc")[0])
    plain = api.compress(vol, tmp_path / "p.mlc", iterations=3)
    assert st.bytes < plain.bytes  # fewer cells coded, fewer bytes
    bounded = api.compress(vol, tmp_path / "b.mlc", iterations=3, tiles=tm, max_error=5)
    assert prep.max_abs_error(vol, api.decompress(tmp_path / "b.mlc")[0]) <= 5 and bounded.error_bound == 5


def test_slices_batched_by_their_largest_count_decode_in_place(tmp_path, tiny_model_id, rng):
    """Decoding groups slices by their largest tile count (so a batch stops early), yet each
    slice lands where it belongs: the full decode, single-slice decodes and the encoder's
    own measurement agree."""
    vol = rng.integers(0, 4000, (4, 40, 40)).astype(np.uint16)
    counts = np.zeros((4, 2, 2), np.uint8)
    counts[0], counts[1, 0, 0], counts[2, 1, 1] = 3, 1, 2  # largest counts 3, 1, 2, 0
    assert by_iterations(mlc.TileMap(2, counts), [0, 1, 2, 3]) == [3, 1, 2, 0]
    assert by_iterations(None, [5, 6]) == [0, 1]
    st = api.compress(vol, tmp_path / "a.mlc", iterations=3, tiles=mlc.TileMap(2, counts))
    dec, _ = api.decompress(tmp_path / "a.mlc")
    assert prep.psnr(vol, dec) == pytest.approx(st.psnr, abs=1e-9)
    for i in range(4):
        np.testing.assert_array_equal(api.decode_slices(tmp_path / "a.mlc", slices=[i])[0][0], dec[i])
    np.testing.assert_array_equal(api.decode_slices(tmp_path / "a.mlc", slices=[2, 0])[0], dec[[2, 0]])


def test_floors_bound_every_plan():
    """No counts beat the floors: plans the planner finds and random ones, within a budget
    or an error limit."""
    c = _costs(seed=3, ty=4, tx=3)
    rng = np.random.default_rng(0)
    plans = [rng.integers(0, c.max_count + 1, c.distortion.shape[1:]) for _ in range(300)]
    budget = np.median([tiles._total_bits(c, p) for p in plans])
    fit = [p for p in plans if tiles._total_bits(c, p) <= budget] + [tiles.plan_for_bits(c, budget).counts]
    floor = tiles.distortion_floor(c, budget)
    assert 0 < floor <= min(tiles._total_distortion(c, p) for p in fit)
    assert floor >= tiles.distortion_floor(c, 10 * budget)  # more bits, a lower floor
    limit = np.median([tiles._total_distortion(c, p) for p in plans])
    met = [p for p in plans if tiles._total_distortion(c, p) <= limit] + [tiles.plan_for_distortion(c, limit).counts]
    assert 0 < tiles.bits_floor(c, limit) <= min(tiles._total_bits(c, p) for p in met)
