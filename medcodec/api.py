"""Library API: compress numpy arrays and SimpleITK images to ``.mlc`` files and back.

    import medcodec
    stats = medcodec.compress(volume, "ct.mlc", iterations=8, geometry=geom)
    volume2, header = medcodec.decompress("ct.mlc")            # all stored iterations
    preview, _ = medcodec.decompress("ct.mlc", iterations=2)   # progressive: reads less
    image = medcodec.read("ct.mlc"); medcodec.write(image, "ct2.mlc")
    medcodec.info("ct.mlc")                                    # header only, no JAX

The output keeps the input's dtype and intensity range; the window (min, max) is stored in
the file. Slices go through one compiled function in fixed-size batches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import zlib
from typing import Callable, Sequence

import numpy as np

from . import container, entropy, prep, slicepool, transform_residual
from . import tiles as tiles_mod
from .errors import (ContainerError, InputError, MedcodecError, ModelMismatchError,
                     ReconstructionMismatchError)
from .imagefiles import Geometry

Progress = Callable[[float], None]  # called with the number of image slices just finished


@dataclasses.dataclass
class EncodeStats:
    """What an encode cost and kept. bpp and ratio come from the bytes on disk."""

    path: str
    bytes: int
    voxels: int
    bpp: float
    ratio: float
    iterations: int
    psnr: float
    max_error: float
    psnr_per_iteration: list[float]
    model_id: str
    error_bound: int | None = None  # E of the residual layer (0 = lossless), None without one
    transform_step: float | None = None  # step of the wavelet residual layer, None without one
    tiles: dict | None = None  # adaptive tiles: tile size, iteration counts, worst-tile PSNR
    psnr_roi: float | None = None  # PSNR inside a region of interest (rate control with a region)
    # squared error per code cell after 0..T iterations (T+1, slices, grid h, grid w), in
    # normalised units (window span = 1): what rate control plans adaptive tiles from
    cell_sse: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """JSON-ready statistics (without the per-cell errors)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "cell_sse"}

    def summary(self) -> str:
        bound = "" if self.error_bound is None else (
            ", lossless" if self.error_bound == 0 else f", bound {self.error_bound}")
        if self.transform_step is not None:
            bound = f", wavelet residual step {self.transform_step:.4g}"
        tiles = "" if not self.tiles else (
            f"; {self.tiles['tile_pixels']}px tiles, {self.tiles['min_iterations']}-{self.tiles['max_iterations']} "
            f"iterations (mean {self.tiles['mean_iterations']:.1f}), worst tile {self.tiles['worst_tile_psnr']:.2f} dB")
        roi = "" if self.psnr_roi is None else f" ({self.psnr_roi:.2f} dB in the region)"
        return (f"{self.path}: {self.bytes} bytes, {self.bpp:.3f} bpp, ratio {self.ratio:.1f}:1, "
                f"PSNR {self.psnr:.2f} dB{roi}, max error {self.max_error:g} ({self.iterations} iterations{bound}){tiles}")


def _slices(array: np.ndarray) -> np.ndarray:
    return array.reshape((-1,) + array.shape[-2:])


def _batches(n_slices: int, batch: int):
    for start in range(0, n_slices, batch):
        yield start, min(start + batch, n_slices)


def _code_mask(cfg, gh: int, gw: int, hc: int, wc: int) -> np.ndarray:
    f = cfg.factor
    mask = np.zeros((1, hc // f, wc // f, 1), np.float32)
    mask[:, :gh, :gw] = 1.0
    return mask


def _layout(cfg, height: int, width: int, n_slices: int):
    """(coded height, coded width, code grid h, code grid w, batch size)."""
    hc, wc = prep.coded_size(height, cfg.factor), prep.coded_size(width, cfg.factor)
    gh, gw = prep.code_grid(height, cfg.factor), prep.code_grid(width, cfg.factor)
    batch = min(prep.batch_size_for(hc, wc), 1 << max(n_slices - 1, 0).bit_length())
    return hc, wc, gh, gw, batch


def _launch_decoder(params, cfg, codes: np.ndarray, mask, iteration_map=None,
                    compute_dtype: str = "float32"):
    """Start the decoder network on a batch of codes (k, batch, hc/F, wc/F, bits); JAX runs
    it asynchronously, so the caller can entropy-decode the next batch meanwhile."""
    import jax.numpy as jnp

    from .model import codec

    imap = None if iteration_map is None else jnp.asarray(iteration_map)
    return codec.decode(params, jnp.asarray(codes), config=cfg, code_mask=mask, iteration_map=imap,
                        compute_dtype=compute_dtype)


PRECISIONS = ("auto", "float32", "bfloat16")


def _accelerated() -> bool:
    """True when JAX computes on a GPU or TPU (imports JAX)."""
    import jax

    return jax.default_backend() != "cpu"


def decode_precision(precision: str, layered: bool) -> str:
    """The decoder's compute dtype for ``precision`` ("auto", "float32" or "bfloat16").

    "auto" is bfloat16 on a GPU/TPU and float32 on a CPU: bf16 decodes 1.4x faster on an
    H100 (327 vs 236 MP/s) for 0.035 dB (docs/reproducibility.md), while on a CPU float32
    is the fast path. A file whose residual layer will be applied (``layered``) always
    decodes in float32, the precision its layer was computed against; bfloat16 is refused
    for it (a bounded-error file would fail its check).
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if layered:
        if precision == "bfloat16":
            raise InputError("this file's residual layer refines the encoder's float32 reconstruction; "
                             "decode it with precision 'float32' or 'auto' (or fewer iterations, "
                             "which skip the layer)")
        return "float32"
    if precision == "auto":
        return "bfloat16" if _accelerated() else "float32"
    return precision


def _to_pixels(rec, height: int, width: int, window, dtype: str) -> np.ndarray:
    """The decoder's output, cropped and in the pixel type (waits for it)."""
    return prep.denormalise(np.asarray(rec)[:, :height, :width, 0], window, dtype)


def _base_batch(params, cfg, codes: np.ndarray, mask, height: int, width: int, window,
                dtype: str, iteration_map=None) -> np.ndarray:
    """The decoder's reconstruction of a batch of code arrays (k, batch, hc/F, wc/F, bits),
    cropped and in the pixel type: exactly what decoding a file gives on this machine."""
    return _to_pixels(_launch_decoder(params, cfg, codes, mask, iteration_map), height, width, window, dtype)


def _iteration_map(tiles: container.TileMap, slice_ids, batch: int, gh: int, gw: int,
                   coded_grid: tuple[int, int]) -> np.ndarray:
    """Per code cell counts of some slices as the network's (batch, hc/F, wc/F, 1) int32
    map; bucket padding and unused batch rows get 0."""
    out = np.zeros((batch,) + coded_grid + (1,), np.int32)
    ids = list(slice_ids)
    if ids:  # only these slices' counts: per batch, not the whole volume's
        out[: len(ids), :gh, :gw, 0] = container.TileMap(tiles.cells, tiles.counts[ids]).cell_counts(gh, gw)
    return out


def _by_iterations(tiles: container.TileMap | None, coded: list[int]) -> list[int]:
    """Positions in ``coded`` (coded slice ids) ordered by each slice's largest tile count,
    so a batch holds slices that stop iterating together: the decoder runs only to the
    batch's largest count (``codec.decode``), and one slow slice does not hold up three fast
    ones. Slices are independent in the network, so the order changes no pixel."""
    if tiles is None:
        return list(range(len(coded)))
    longest = tiles.counts.reshape(tiles.counts.shape[0], -1).max(axis=1)
    return sorted(range(len(coded)), key=lambda i: int(longest[coded[i]]))


def _check_tiles(tiles: container.TileMap | None, n: int, gh: int, gw: int, what: str) -> None:
    if tiles is None:
        return
    want = (n, -(-gh // tiles.cells), -(-gw // tiles.cells))
    if tiles.cells < 1 or tuple(tiles.counts.shape) != want:
        raise InputError(f"{what}: tile counts of shape {tuple(tiles.counts.shape)} with {tiles.cells}-cell "
                         f"tiles do not fit {n} slices of {gh}x{gw} code cells (want {want})")


def _check_max_error(max_error, array: np.ndarray) -> int | None:
    if max_error is None:
        return None
    if isinstance(max_error, bool) or not isinstance(max_error, (int, np.integer)) or not 0 <= max_error < 65536:
        raise InputError(f"max_error must be a whole number from 0 to 65535, got {max_error!r}")
    if array.dtype.kind not in "iu":
        raise InputError(f"a bounded error (max_error / lossless) needs integer pixels; this image is "
                         f"{array.dtype.name}: convert it to an integer type first")
    return int(max_error)


def _check_transform_step(step, max_error) -> float | None:
    if step is None:
        return None
    if max_error is not None:
        raise InputError("give max_error (bounded error) or transform_step (wavelet residual), not both")
    if isinstance(step, bool) or not isinstance(step, (int, float, np.floating)) \
            or not container.valid_transform(float(step), transform_residual.RHO):
        raise InputError(f"transform_step must be a positive number (pixel units), got {step!r}")
    return float(step)


def compress(array: np.ndarray, path: str | os.PathLike, *, iterations: int = 8,
             geometry: Geometry | None = None, metadata: dict[str, str] | None = None,
             model_id: str | None = None, overwrite: bool = False,
             progress: Progress | None = None, max_error: int | None = None,
             tiles: container.TileMap | None = None, transform_step: float | None = None,
             workers: int | None = None) -> EncodeStats:
    """Encode a 2D/3D/4D grayscale array (numpy axis order) into a ``.mlc`` file.

    ``iterations`` (1..model max) sets rate and quality of the learned layers: each adds
    up to ``bits / factor^2`` bits per pixel (less after entropy coding). ``max_error`` E
    (integer images) adds the residual layer: every decoded voxel is within E of the
    original (0 = lossless), verified here by decoding. ``tiles`` gives each tile its own
    iteration count (adaptive tiles, chosen by :mod:`medcodec.tiles`); counts above
    ``iterations`` are capped by it. ``transform_step`` (pixel units) adds the wavelet
    residual layer instead (:mod:`medcodec.transform_residual`): no bound, far fewer bits
    than ``max_error`` at 40-50 dB; rate control picks the step for a PSNR target.
    ``workers``: processes that code the slices' residual layers (None: one per core when
    there are enough slices; 1: all here), :mod:`medcodec.slicepool`.
    Returns measured :class:`EncodeStats`.
    """
    import jax.numpy as jnp

    from . import checkpoint
    from .imagefiles import check_output
    from .model import codec

    array = prep.check_array(array)
    max_error = _check_max_error(max_error, array)
    transform_step = _check_transform_step(transform_step, max_error)
    check_output(path, overwrite)  # fail before the encoding work, not after it
    model = checkpoint.load(model_id)
    cfg = model.config
    if not isinstance(iterations, (int, np.integer)) or not 1 <= iterations <= cfg.max_iterations:
        raise InputError(f"iterations must be an integer from 1 to {cfg.max_iterations}, got {iterations!r}")
    iterations = int(iterations)
    geometry = geometry or Geometry.identity(array.ndim)
    if len(geometry.spacing) != array.ndim:
        raise InputError(f"geometry is {len(geometry.spacing)}-D but the image is {array.ndim}-D")
    window = prep.window_of(array)
    slices = _slices(array)
    n_image, full_h, full_w = slices.shape
    grid = prep.piece_grid(full_h, full_w, cfg.factor)
    if grid is not None:  # too large for the network in one piece: code pieces (GRID chunk)
        slices = prep.to_pieces(slices, *grid)
    n, height, width = slices.shape
    hc, wc, gh, gw, batch = _layout(cfg, height, width, n)
    header = container.Header(
        ndim=array.ndim, pixel_type=array.dtype.name, size=tuple(reversed(array.shape)),
        spacing=tuple(geometry.spacing), origin=tuple(geometry.origin),
        direction=tuple(geometry.direction), window=window, slices=n, height=height, width=width,
        coded_height=hc, coded_width=wc, iterations=iterations, bits=cfg.bits,
        model_id=model.model_id, metadata=dict(metadata or {}), grid=None if grid is None else grid[:2])
    try:
        container.validate_header(header)
    except ContainerError as e:
        raise InputError(str(e).replace("HEAD chunk is inconsistent", "cannot encode this image")) from e
    _check_tiles(tiles, n, gh, gw, "compress")
    mask = jnp.asarray(_code_mask(cfg, gh, gw, hc, wc))
    pixel_mask = np.zeros((batch, hc, wc, 1), np.float32)
    pixel_mask[:, :height, :width] = 1.0
    params = model.device_params
    recon = np.empty_like(slices)
    packed: list[list[tuple[int, bytes]]] = []
    resid: list = []  # per slice: (crc_base, crc_final, stream) or (levels, stream)
    cell_sse = np.zeros((iterations + 1, n, gh, gw), np.float32)
    f = cfg.factor
    layered = max_error is not None or transform_step is not None
    with slicepool.Pool(slicepool.default_workers(n if layered else 0) if workers is None else workers) as pool:
        for start, stop in _batches(n, batch):
            x = prep.pad_slices(prep.normalise(slices[start:stop], window), hc, wc)
            x = np.concatenate([x, np.repeat(x[-1:], batch - len(x), axis=0)]) if len(x) < batch else x
            imap = None if tiles is None else _iteration_map(tiles, range(start, stop), batch, gh, gw,
                                                              (hc // f, wc // f))
            codes, err, rec = codec.encode(params, jnp.asarray(x[..., None]), config=cfg, iterations=iterations,
                                           code_mask=mask, pixel_mask=jnp.asarray(pixel_mask),
                                           iteration_map=None if imap is None else jnp.asarray(imap))
            codes = np.array(codes)  # writable copy
            # what a decoder puts where nothing is stored: unused batch rows, bucket padding
            codes[:, stop - start :] = 0
            codes[:, :, gh:] = 0
            codes[:, :, :, gw:] = 0
            m = stop - start
            sq0 = np.square(x[:m]) * pixel_mask[:m, ..., 0]  # error of reconstruction 0 (all zeros)
            cell_sse[0, start:stop] = prep.block_sums(sq0, f)[:, :gh, :gw]
            cell_sse[1:, start:stop] = np.asarray(err)[:, :m, :gh, :gw]
            recon[start:stop] = prep.denormalise(np.asarray(rec)[: stop - start, :height, :width, 0],
                                                 window, array.dtype.name)
            packed.extend(entropy.encode_slices(codes[:, : stop - start, :gh, :gw].swapaxes(0, 1),
                                                None if imap is None else imap[:m, :gh, :gw, 0]))
            if layered:
                base = _base_batch(params, cfg, codes, mask, height, width, window, array.dtype.name, imap)
                batch_slices = slices[start:stop]
                if transform_step is not None:
                    coded = pool.map_runs("medcodec.transform_residual.encode_slices", m,
                                          lambda run: (batch_slices[run], base[run], transform_step, window))
                    for s, (levels, data, final) in enumerate(coded):
                        resid.append((levels, data))
                        recon[start + s] = final
                else:
                    coded = pool.map_runs("medcodec.residual.encode_slices", m,
                                          lambda run: (batch_slices[run], base[run], max_error))
                    # verified by decoding the stream, as a reader will
                    checked = pool.map_runs("medcodec.residual.decode_slices", m,
                                            lambda run: (base[run], [coded[s][0] for s in run], max_error))
                    for s, ((data, final), dec) in enumerate(zip(coded, checked)):
                        crc_base = zlib.crc32(np.ascontiguousarray(base[s]).tobytes())
                        resid.append((crc_base, zlib.crc32(final.tobytes()), data))
                        recon[start + s] = dec
            if progress:  # in image slices (a slice in pieces counts 1 / pieces per piece)
                per = n // n_image
                progress((stop - start) / per if per > 1 else stop - start)
    decoded = (recon if grid is None else prep.from_pieces(recon, grid[0], grid[1], full_h, full_w)).reshape(array.shape)
    if max_error is not None and prep.max_abs_error(array, decoded) > max_error:  # never expected
        raise MedcodecError(f"internal error: the residual layer missed the bound {max_error}; "
                            "no file was written, please report this")
    layer = None if max_error is None else container.ResidualLayer(max_error, resid)
    wavelet_layer = None if transform_step is None else container.TransformLayer(
        transform_step, transform_residual.RHO, resid)
    nbytes = container.write(path, header, packed, overwrite=overwrite, residual=layer, tiles=tiles,
                             transform=wavelet_layer)
    mse_norm = cell_sse[1:].sum(axis=(1, 2, 3), dtype=np.float64) / array.size
    per_iter = [10 * math.log10(1.0 / m) if m > 0 else math.inf for m in mse_norm]
    return EncodeStats(
        path=str(path), bytes=nbytes, voxels=array.size, bpp=8.0 * nbytes / array.size,
        ratio=array.nbytes / nbytes, iterations=iterations, psnr=prep.psnr(array, decoded),
        max_error=prep.max_abs_error(array, decoded), psnr_per_iteration=per_iter,
        model_id=model.model_id, error_bound=max_error, transform_step=transform_step, cell_sse=cell_sse,
        tiles=None if tiles is None else tiles_mod.summary(cell_sse[-1], tiles, f,
                                                           prep.block_sums(np.ones((height, width)), f)))


def decode_slices(path: str | os.PathLike, iterations: int | None = None,
                  slices: Sequence[int] | None = None, progress: Progress | None = None,
                  precision: str = "auto", workers: int | None = None) -> tuple[np.ndarray, container.Header]:
    """Decode some 2D slices of a ``.mlc`` file: (len(slices), height, width), original dtype.

    Only the CODE chunks of the requested slices and of the first ``iterations`` are read.
    ``slices`` indexes the flattened leading axes (z, or t*z for 4D); None means all. Slices
    stored in pieces (GRID) are decoded piece by piece and put together. ``precision``: the
    network's compute dtype, see :func:`decode_precision`. ``workers``: processes that
    decode the slices' residual layers (None: one per core when there are enough slices,
    :func:`medcodec.slicepool.default_workers`; 1: all in this process).
    """
    import jax.numpy as jnp

    from . import checkpoint

    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(container.Reader(path))
        h = reader.header
        k = h.iterations if iterations is None else iterations
        if not isinstance(k, (int, np.integer)) or not 1 <= k <= h.iterations:
            raise InputError(f"iterations must be from 1 to {h.iterations} (stored in the file), got {k!r}")
        wanted = list(range(h.image_slices)) if slices is None else [int(s) for s in slices]
        if any(not 0 <= s < h.image_slices for s in wanted):
            raise InputError(f"slice index out of range 0..{h.image_slices - 1}")
        per = 1 if h.grid is None else h.grid[0] * h.grid[1]
        wanted = [s * per + i for s in wanted for i in range(per)]  # coded pieces
        layered = k == h.iterations and (reader.max_error is not None or reader.transform is not None)
        dtype = decode_precision(precision, layered)
        model = checkpoint.load(h.model_id)
        cfg = model.config
        if cfg.bits != h.bits:
            raise ModelMismatchError(f"model {h.model_id} has {cfg.bits} code channels, file says {h.bits}")
        _, _, gh, gw, batch = _layout(cfg, h.height, h.width, h.slices)
        hc, wc = h.coded_height, h.coded_width
        if hc % cfg.factor or wc % cfg.factor or hc < h.height or wc < h.width:
            raise InputError(f"{path}: coded size {hc}x{wc} does not fit the model")
        mask = jnp.asarray(_code_mask(cfg, gh, gw, hc, wc))
        params = model.device_params
        tiles = reader.tiles
        try:
            _check_tiles(tiles, h.slices, gh, gw, str(path))
        except InputError as e:
            raise ModelMismatchError(str(e)) from e
        f = cfg.factor
        out = np.empty((len(wanted), h.height, h.width), h.pixel_type)
        pool = stack.enter_context(slicepool.Pool(
            slicepool.default_workers(len(wanted) if layered else 0) if workers is None else workers))

        def finish(positions, rec):
            out[positions] = _to_pixels(rec, h.height, h.width, h.window, h.pixel_type)[: len(positions)]
            if reader.max_error is not None and k == h.iterations:
                _apply_residuals(reader, [wanted[i] for i in positions], out, positions, path, pool)
            if reader.transform is not None and k == h.iterations:
                delta, rho = reader.transform
                layers = [reader.read_transform(wanted[i]) for i in positions]
                out[positions] = pool.map_runs(
                    "medcodec.transform_residual.decode_slices", len(positions),
                    lambda run: (out[[positions[j] for j in run]], [layers[j][0] for j in run],
                                 [layers[j][1] for j in run], delta, h.window, rho))
            if progress:  # in image slices
                progress(len(positions) / per if per > 1 else len(positions))

        order = _by_iterations(tiles, wanted)
        pending = None  # the batch whose network is running while the next one is entropy-decoded
        for start, stop in _batches(len(wanted), batch):
            codes = np.zeros((k, batch, hc // f, wc // f, cfg.bits), np.int8)
            positions = order[start:stop]
            ids = [wanted[i] for i in positions]
            imap = None if tiles is None else _iteration_map(tiles, ids, batch, gh, gw, (hc // f, wc // f))
            chunks = [[reader.read_codes(i, t) for t in range(k)] for i in ids]
            codes[:, : stop - start, :gh, :gw] = entropy.decode_slices(
                chunks, (gh, gw, cfg.bits), None if imap is None else imap[: stop - start, :gh, :gw, 0]).swapaxes(0, 1)
            if imap is not None and not imap.any():  # every tile at count 0: the base is the window's middle
                launched = (positions, np.zeros((batch, hc, wc, 1), np.float32))
            else:
                launched = (positions, _launch_decoder(params, cfg, codes, mask, imap, dtype))
            if pending is not None:
                finish(*pending)
            pending = launched
        if pending is not None:
            finish(*pending)
        if k == h.iterations and slices is None:
            reader.verify_end()
    if h.grid is not None:
        out = prep.from_pieces(out, h.grid[0], h.grid[1], h.size[1], h.size[0])
    return out, h


def _apply_residuals(reader, slice_ids: list[int], out: np.ndarray, positions: list[int], path,
                     pool: slicepool.Pool) -> None:
    """out[positions] (the bases of coded slices ``slice_ids``) += their residual layers;
    refuses a base that differs from the encoder's, and a result that fails its CRC."""
    streams, finals = [], []
    for slice_index, i in zip(slice_ids, positions):
        crc_base, crc_final, data = reader.read_residual(slice_index)
        if zlib.crc32(np.ascontiguousarray(out[i]).tobytes()) != crc_base:
            raise ReconstructionMismatchError(
                f"{path}: this machine's network reconstructs slice {slice_index} differently from the "
                "machine that encoded it (floating-point drift between CPU/GPU or library versions), so "
                f"the guaranteed error bound {reader.max_error} would not hold. Decode it where it was "
                "encoded or on a CPU (JAX_PLATFORMS=cpu), or decode a preview with fewer iterations.")
        streams.append(data)
        finals.append(crc_final)
    decoded = pool.map_runs("medcodec.residual.decode_slices", len(positions),
                            lambda run: (out[[positions[j] for j in run]], [streams[j] for j in run],
                                         reader.max_error))
    for slice_index, i, final, crc in zip(slice_ids, positions, decoded, finals):
        if zlib.crc32(final.tobytes()) != crc:
            raise ReconstructionMismatchError(f"{path}: slice {slice_index} fails its checksum after the "
                                              "residual layer; the file is corrupted")
        out[i] = final


def decompress(path: str | os.PathLike, iterations: int | None = None, progress: Progress | None = None,
               precision: str = "auto", workers: int | None = None) -> tuple[np.ndarray, container.Header]:
    """Decode a ``.mlc`` file; with ``iterations=k`` only the first k iterations are read.

    Returns (array in numpy axis order with the original dtype, header). ``precision``:
    "auto" (bfloat16 on GPU/TPU for files without a residual layer, else float32),
    "float32" or "bfloat16"; see :func:`decode_precision`. ``workers``: processes for the
    residual layers (None: automatic, 1: none), see :func:`decode_slices`.
    """
    out, h = decode_slices(path, iterations, None, progress, precision, workers)
    return out.reshape(tuple(reversed(h.size))), h


def geometry_of(header: container.Header) -> Geometry:
    return Geometry(tuple(header.spacing), tuple(header.origin), tuple(header.direction))


def write(image, path: str | os.PathLike, **kwargs) -> EncodeStats:
    """Encode a SimpleITK image (geometry and metadata kept); kwargs as :func:`compress`,
    or one of bpp / ratio / psnr (with roi, background_weight, adaptive, wavelet) as
    :func:`medcodec.ratecontrol.compress_to`."""
    from .imagefiles import from_sitk

    array, geometry, metadata = from_sitk(image)
    metadata.update(kwargs.pop("metadata", None) or {})
    if {"bpp", "ratio", "psnr"} & {k for k, v in kwargs.items() if v is not None}:
        from .ratecontrol import compress_to

        return compress_to(array, path, geometry=geometry, metadata=metadata, **kwargs)
    extra = {"roi", "background_weight", "adaptive", "wavelet"} & set(kwargs)
    if extra:
        raise InputError(f"{', '.join(sorted(extra))} need a bpp, ratio or psnr target")
    return compress(array, path, geometry=geometry, metadata=metadata, **kwargs)


def read(path: str | os.PathLike, iterations: int | None = None, progress: Progress | None = None,
         precision: str = "auto", workers: int | None = None):
    """Decode a ``.mlc`` file to a SimpleITK image with its geometry and metadata."""
    from .imagefiles import to_sitk

    array, header = decompress(path, iterations, progress, precision, workers)
    return to_sitk(array, geometry_of(header), header.metadata)


def info(path: str | os.PathLike) -> dict:
    """Header facts as a JSON-ready dict, without decoding (and without importing JAX)."""
    with container.Reader(path) as r:
        h, max_error, transform, tiles = r.header, r.max_error, r.transform, r.tiles
    nbytes = os.path.getsize(path)
    voxels = int(np.prod(h.size))
    return {
        "path": str(path), "format_version": "%d.%d" % h.version, "model_id": h.model_id,
        "size": list(h.size), "spacing": list(h.spacing), "origin": list(h.origin),
        "direction": list(h.direction), "pixel_type": h.pixel_type, "components": h.components,
        "window": list(h.window), "slices": h.image_slices, "iterations": h.iterations,
        "pieces_per_slice": None if h.grid is None else list(h.grid), "adaptive_tiles": tiles is not None,
        # learned iterations really used per tile (min, max): 0 everywhere = the residual layer alone
        "tile_iterations": None if tiles is None else [min(int(tiles.counts.min(initial=0)), h.iterations),
                                                      min(int(tiles.counts.max(initial=0)), h.iterations)],
        "residual_layer": ("bounded" if max_error is not None else "wavelet" if transform is not None else None),
        "max_error": max_error, "wavelet_step": None if transform is None else transform[0],
        "bytes": nbytes, "bpp": 8.0 * nbytes / voxels,
        "ratio": voxels * np.dtype(h.pixel_type).itemsize / nbytes, "metadata": h.metadata,
    }
