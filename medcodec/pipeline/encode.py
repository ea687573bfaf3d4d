"""The encode pipeline: an array to a ``.mlc`` file with a given coding (iterations, tiles,
residual layer), measured on what a decoder will reconstruct.

Slices (or pieces of large slices) go through the encoder network in fixed-size batches;
their codes are entropy coded (:mod:`medcodec.coding.codes`), the residual layer (if any)
refines the decoder's reconstruction of them (:mod:`.layers`), and the file is written
once, atomically (:func:`medcodec.format.write`).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from .. import prep
from ..coding import codes as code_coder
from ..coding.layers import BoundedErrorCodec, WaveletCodec
from ..coding.wavelet_layer import RHO
from ..errors import ContainerError, InputError, MedcodecError
from ..format import Header, TileMap, valid_wavelet_step, validate_header, write
from ..io.atomic import check_output
from ..io.images import Geometry
from ..options import check_iterations
from ..model import inference
from .layers import LayerStep
from .layout import Layout, as_slices, to_pixels
from .stats import EncodeStats, psnr_per_iteration, tile_summary


# A key (intra) slice every 16 slices: on the MR atlas 1.0 % more bits than one key slice in
# 32 and 0.6 % fewer than one in 8 (benchmarks/results/interslice.md), and one slice decodes
# from at most 16.
KEY_INTERVAL = 16


def default_key_interval(array: np.ndarray, factor: int) -> int | None:
    """Inter-slice prediction's key interval for a residual layer over no learned
    iterations (None: every slice intra): 3-D volumes of at least 2 whole slices (not cut
    into pieces for a network of stride ``factor``)."""
    if array.ndim != 3 or array.shape[0] < 2 or prep.piece_grid(array.shape[1], array.shape[2], factor) is not None:
        return None
    return KEY_INTERVAL


def _layer_for(array: np.ndarray, max_error, transform_step, key_interval=None) -> LayerStep | None:
    """The residual layer asked for (None: none), checked against the image."""
    if key_interval is not None:
        if transform_step is None and max_error is None:
            raise InputError("inter-slice prediction (key_interval) refines a residual layer: give transform_step "
                             "or max_error")
        if isinstance(key_interval, bool) or not isinstance(key_interval, (int, np.integer)) \
                or not 0 <= key_interval < 1 << 16:
            raise InputError(f"key_interval must be an integer from 0 to 65535, got {key_interval!r}")
        if array.ndim != 3:
            raise InputError(f"inter-slice prediction needs a 3-D volume; this image is {array.ndim}-D")
    if max_error is not None:
        if transform_step is not None:
            raise InputError("give max_error (bounded error) or transform_step (wavelet layer), not both")
        if array.dtype.kind not in "iu":
            raise InputError(f"a bounded error (max_error / lossless) needs integer pixels; this image is "
                             f"{array.dtype.name}: convert it to an integer type first")
        return LayerStep(BoundedErrorCodec(int(max_error), None if key_interval is None else int(key_interval),
                                           prep.window_of(array)))
    if transform_step is None:
        return None
    if isinstance(transform_step, bool) or not isinstance(transform_step, (int, float, np.floating)) \
            or not valid_wavelet_step(float(transform_step), RHO):
        raise InputError(f"transform_step must be a positive number (pixel units), got {transform_step!r}")
    return LayerStep(WaveletCodec(float(transform_step), prep.window_of(array),
                                  key_interval=None if key_interval is None else int(key_interval)))


@dataclasses.dataclass
class _Coded:
    """What the batches produce: per slice (coding, payload) per iteration, the residual
    layer's records, the decoder-side reconstruction, and per-cell squared errors; the
    bases, for a layer coded after all batches (inter-slice prediction)."""

    packed: list
    records: list
    recon: np.ndarray
    cell_sse: np.ndarray
    bases: np.ndarray | None = None


def _header(array, geometry: Geometry, slices: np.ndarray, layout: Layout, iterations: int, model,
            metadata, grid) -> Header:
    n, height, width = slices.shape
    header = Header(
        ndim=array.ndim, pixel_type=array.dtype.name, size=tuple(reversed(array.shape)),
        spacing=tuple(geometry.spacing), origin=tuple(geometry.origin),
        direction=tuple(geometry.direction), window=prep.window_of(array), slices=n, height=height,
        width=width, coded_height=layout.coded_height, coded_width=layout.coded_width, iterations=iterations,
        bits=model.config.bits, model_id=model.model_id, metadata=dict(metadata or {}),
        grid=None if grid is None else grid[:2])
    try:
        validate_header(header)
    except ContainerError as e:
        raise InputError(str(e).replace("HEAD chunk is inconsistent", "cannot encode this image")) from e
    return header


def _pixel_mask(layout: Layout, height: int, width: int) -> np.ndarray:
    """(batch, hc, wc, 1) float32: 1 on the slice's real pixels, 0 on padding."""
    mask = np.zeros((layout.batch, layout.coded_height, layout.coded_width, 1), np.float32)
    mask[:, :height, :width] = 1.0
    return mask


def _idle_network(cfg, iterations: int, x: np.ndarray, pixel_mask: np.ndarray):
    """What :func:`medcodec.model.inference.launch_encoder` returns when every cell's count is
    0, without running it: zero codes (T, batch, hc/F, wc/F, bits), each iteration's per-cell
    error that of reconstruction 0, and reconstruction 0 (batch, hc, wc, 1), as the decoder
    makes it (it skips the network for such files too)."""
    f = cfg.factor
    codes = np.zeros((iterations, x.shape[0], x.shape[1] // f, x.shape[2] // f, cfg.bits), np.int8)
    sse = prep.block_sums(np.square(x) * pixel_mask[..., 0], f)
    return codes, np.broadcast_to(sse, (iterations,) + sse.shape), np.zeros(x.shape + (1,), np.float32)


def _encode_batch(model, layout: Layout, header: Header, slices: np.ndarray, start: int, stop: int,
                  tiles: TileMap | None, layer: LayerStep | None, threads, out: _Coded, pixel_mask) -> None:
    """Encode slices[start:stop] into ``out`` (one compiled batch, padded to its size)."""
    cfg, f, batch = model.config, layout.factor, layout.batch
    height, width, gh, gw = header.height, header.width, layout.grid_h, layout.grid_w
    window, dtype = header.window, header.pixel_type
    mask = layout.code_mask
    x = prep.pad_slices(prep.normalise(slices[start:stop], window), layout.coded_height, layout.coded_width)
    x = np.concatenate([x, np.repeat(x[-1:], batch - len(x), axis=0)]) if len(x) < batch else x
    imap = None if tiles is None else layout.iteration_map(tiles, range(start, stop))
    idle = imap is not None and not imap.any()  # every tile count 0: the network adds nothing
    if idle:
        codes, err, rec = _idle_network(cfg, header.iterations, x, pixel_mask)
    else:
        codes, err, rec = inference.launch_encoder(model.device_params, cfg, x, header.iterations, mask, pixel_mask,
                                                   imap)
    codes = np.array(codes)  # writable copy
    # what a decoder puts where nothing is stored: unused batch rows, bucket padding
    m = stop - start
    codes[:, m:] = 0
    codes[:, :, gh:] = 0
    codes[:, :, :, gw:] = 0
    sq0 = np.square(x[:m]) * pixel_mask[:m, ..., 0]  # error of reconstruction 0 (all zeros)
    out.cell_sse[0, start:stop] = prep.block_sums(sq0, f)[:, :gh, :gw]
    out.cell_sse[1:, start:stop] = np.asarray(err)[:, :m, :gh, :gw]
    out.recon[start:stop] = prep.denormalise(np.asarray(rec)[:m, :height, :width, 0], window, dtype)
    out.packed.extend(code_coder.encode_slices(codes[:, :m, :gh, :gw].swapaxes(0, 1),
                                               None if imap is None else imap[:m, :gh, :gw, 0], threads))
    if layer is not None:  # refines what a decoder reconstructs from these codes
        rec = rec if idle else inference.launch_decoder(model.device_params, cfg, codes, mask, imap)
        base = to_pixels(rec, height, width, window, dtype)
        if layer.sequential:  # coded after all batches: slices depend on the ones before
            out.bases[start:stop] = base[:m]
            return
        records, finals = layer.encode(slices[start:stop], base[:m], threads)
        out.records.extend(records)
        out.recon[start:stop] = finals


def _check_geometry(geometry: Geometry | None, array: np.ndarray) -> Geometry:
    geometry = geometry or Geometry.identity(array.ndim)
    if len(geometry.spacing) != array.ndim:
        raise InputError(f"geometry is {len(geometry.spacing)}-D but the image is {array.ndim}-D")
    return geometry


def compress(array: np.ndarray, path: str | os.PathLike, *, iterations: int,
             geometry: Geometry | None = None, metadata: dict[str, str] | None = None,
             model_id: str | None = None, overwrite: bool = False, progress=None,
             max_error: int | None = None, tiles: TileMap | None = None,
             transform_step: float | None = None, workers: int | None = None,
             key_interval: int | None = None, base_only: bool = False) -> EncodeStats:
    """Encode a 2D/3D/4D grayscale array (numpy axis order) into a ``.mlc`` file.

    ``iterations`` (0..model max) learned iterations (0: none, the base is the window's
    middle; the file stores one iteration whose tiles all have count 0); ``tiles`` gives each
    tile its own count (capped by ``iterations``); ``max_error`` E adds the bounded-error layer (integer images,
    verified here by decoding), ``transform_step`` (pixel units) the wavelet layer instead;
    ``key_interval`` N adds inter-slice prediction to the residual layer of a 3-D volume
    (:mod:`medcodec.coding.interslice`: every N-th slice intra, 0: only the first).
    ``progress(n)`` is called with image slices finished; ``workers``: threads entropy coding
    the slices (None: one per core, :func:`medcodec.coding.threads.default_threads`).
    ``base_only`` with ``iterations=0`` and no residual layer writes the window's middle
    alone (no network runs): rate control reads its header and framing bytes.
    """
    from ..model import checkpoint

    array = prep.check_array(array)
    layer = _layer_for(array, max_error, transform_step, key_interval)
    check_output(path, overwrite)  # fail before the encoding work, not after it
    model = checkpoint.load(model_id)
    learned = not (isinstance(iterations, (int, np.integer)) and not isinstance(iterations, bool) and iterations == 0)
    if not learned and (tiles is not None or (layer is None and not base_only)):
        raise InputError("iterations=0 (no learned iterations) needs a residual layer (max_error or "
                         "transform_step) and no tiles")
    iterations = check_iterations(iterations if learned else 1, model.config.max_iterations)
    geometry = _check_geometry(geometry, array)
    slices = as_slices(array)
    n_image, full_h, full_w = slices.shape
    grid = prep.piece_grid(full_h, full_w, model.config.factor)
    if grid is not None and key_interval is not None:
        raise InputError(f"inter-slice prediction needs whole slices; {full_h}x{full_w} slices are coded in pieces")
    if grid is not None:  # too large for the network in one piece: code pieces (GRID chunk)
        slices = prep.to_pieces(slices, *grid)
    n, height, width = slices.shape
    layout = Layout.of(model.config, height, width, n)
    header = _header(array, geometry, slices, layout, iterations, model, metadata, grid)
    if not learned:
        tiles = layout.zero_tiles(n)
    layout.check_tiles(tiles, n, "compress")
    out = _Coded([], [], np.empty_like(slices), np.zeros((iterations + 1, n, layout.grid_h, layout.grid_w), np.float32))
    per = n // n_image  # pieces per image slice
    pixel_mask = _pixel_mask(layout, height, width)
    if layer is not None and layer.sequential:
        out.bases = np.empty_like(slices)
    for start, stop in layout.batches(n):
        _encode_batch(model, layout, header, slices, start, stop, tiles, layer, workers, out, pixel_mask)
        if progress:  # in image slices (a slice in pieces counts 1 / pieces per piece)
            progress((stop - start) / per if per > 1 else stop - start)
    if out.bases is not None:
        out.records, out.recon = layer.encode(slices, out.bases, workers)
    decoded = (out.recon if grid is None else prep.from_pieces(out.recon, grid[0], grid[1], full_h, full_w))
    decoded = decoded.reshape(array.shape)
    if max_error is not None and prep.max_abs_error(array, decoded) > max_error:  # never expected
        raise MedcodecError(f"internal error: the bounded-error layer missed the bound {max_error}; "
                            "no file was written, please report this")
    chunk = None if layer is None else layer.chunk(out.records)
    nbytes = write(path, header, out.packed, overwrite=overwrite, tiles=tiles,
                   bounded_error=chunk if layer is not None and layer.bounded else None,
                   wavelet=chunk if layer is not None and not layer.bounded else None)
    valid = prep.block_sums(np.ones((height, width)), layout.factor)
    return EncodeStats(
        path=str(path), bytes=nbytes, voxels=array.size, bpp=8.0 * nbytes / array.size,
        ratio=array.nbytes / nbytes, iterations=iterations if learned else 0, psnr=prep.psnr(array, decoded),
        max_abs_error=prep.max_abs_error(array, decoded), psnr_per_iteration=psnr_per_iteration(out.cell_sse, array.size) if learned else [],
        model_id=model.model_id, error_bound=None if max_error is None else int(max_error),
        transform_step=None if transform_step is None else float(transform_step), cell_sse=out.cell_sse,
        tiles=None if tiles is None or not learned else tile_summary(out.cell_sse[-1], tiles, layout.factor, valid))
