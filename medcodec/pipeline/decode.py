"""The decode pipeline: a ``.mlc`` file (or some of its slices, or its first k iterations)
back to pixels.

Per batch of coded slices: read and entropy-decode their codes, launch the decoder network
(JAX runs it asynchronously while the next batch is entropy-decoded), then apply the
residual layer when all stored iterations are decoded (:mod:`.layers`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Callable, Sequence

import numpy as np

from .. import prep
from ..coding import codes as code_coder
from ..errors import InputError, ModelMismatchError
from ..format import Header, Reader
from ..io.images import Geometry
from ..model import inference
from .layers import LayerStep
from .layout import Layout, by_iterations, to_pixels
from .precision import decode_precision

Progress = Callable[[float], None]  # called with the number of image slices just finished


def _check_request(h: Header, iterations, slices) -> tuple[int, list[int]]:
    """(iterations to decode, coded slice ids) of a request; InputError if out of range."""
    k = h.iterations if iterations is None else iterations
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= h.iterations:
        raise InputError(f"iterations must be from 1 to {h.iterations} (stored in the file), got {k!r}")
    wanted = list(range(h.image_slices)) if slices is None else [int(s) for s in slices]
    if any(not 0 <= s < h.image_slices for s in wanted):
        raise InputError(f"slice index out of range 0..{h.image_slices - 1}")
    per = 1 if h.grid is None else h.grid[0] * h.grid[1]
    return int(k), [s * per + i for s in wanted for i in range(per)]  # coded pieces


def _network_runs(reader: Reader) -> bool:
    """Whether any coded slice uses a learned iteration (files rate control writes at high
    rates have every tile at 0: the base is constant and no network, JAX or weights load)."""
    return reader.tiles is None or bool(np.asarray(reader.tiles.counts).any())


def _model_for(reader: Reader, path):
    """The checkpoint that wrote the file (its config alone when the network never runs),
    and the file's layout for it."""
    from ..model import checkpoint

    h = reader.header
    if _network_runs(reader):
        model = checkpoint.load(h.model_id)
    else:
        model = _ConfigOnly(h.model_id, checkpoint.load_config(h.model_id))
    cfg = model.config
    if cfg.bits != h.bits:
        raise ModelMismatchError(f"model {h.model_id} has {cfg.bits} code channels, file says {h.bits}")
    hc, wc = h.coded_height, h.coded_width
    if hc % cfg.factor or wc % cfg.factor or hc < h.height or wc < h.width:
        raise InputError(f"{path}: coded size {hc}x{wc} does not fit the model")
    # the network runs at the coded size the file records (batch and grid as the encoder had them)
    layout = dataclasses.replace(Layout.of(cfg, h.height, h.width, h.slices), coded_height=hc, coded_width=wc)
    try:
        layout.check_tiles(reader.tiles, h.slices, str(path))
    except InputError as e:
        raise ModelMismatchError(str(e)) from e
    return model, layout


@dataclasses.dataclass(frozen=True)
class _ConfigOnly:
    """A model seen only through its config (the network never runs for the file)."""

    model_id: str
    config: object


def _launch_batch(reader: Reader, model, layout: Layout, ids: list[int], k: int, dtype: str, threads=None):
    """Entropy-decode the codes of coded slices ``ids`` and start the network on them."""
    cfg, tiles, n = model.config, reader.tiles, len(ids)
    gh, gw = layout.grid_h, layout.grid_w
    codes = np.zeros((k, layout.batch) + layout.coded_grid + (cfg.bits,), np.int8)
    imap = None if tiles is None else layout.iteration_map(tiles, ids)
    chunks = [[reader.read_codes(i, t) for t in range(k)] for i in ids]
    codes[:, :n, :gh, :gw] = code_coder.decode_slices(
        chunks, (gh, gw, cfg.bits), None if imap is None else imap[:n, :gh, :gw, 0], threads).swapaxes(0, 1)
    if imap is not None and not imap.any():  # every tile at count 0: the base is the window's middle
        return None
    return inference.launch_decoder(model.device_params, cfg, codes, layout.code_mask, imap, dtype)


def decode_slices(path: str | os.PathLike, iterations: int | None = None,
                  slices: Sequence[int] | None = None, progress: Progress | None = None,
                  precision: str = "auto", workers: int | None = None) -> tuple[np.ndarray, Header]:
    """Decode some 2D slices of a ``.mlc`` file: (len(slices), height, width), original dtype.

    Only the CODE chunks of the requested slices and of the first ``iterations`` are read.
    ``slices`` indexes the flattened leading axes (z, or t*z for 4D); None means all. Slices
    stored in pieces (GRID) are decoded piece by piece and put together. ``precision``: the
    network's compute dtype, see :func:`medcodec.pipeline.precision.decode_precision`.
    ``workers``: threads entropy decoding the slices (None: one per core,
    :func:`medcodec.coding.threads.default_threads`).
    """
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(Reader(path))
        h = reader.header
        k, wanted = _check_request(h, iterations, slices)
        layer = LayerStep.of_file(reader) if k == h.iterations else None  # fewer iterations skip it
        requested = wanted
        if layer is not None and layer.sequential:  # inter slices need their chains back to an intra slice
            wanted = layer.needed(reader, wanted)
        model, layout = _model_for(reader, path)
        dtype = decode_precision(precision, layer is not None, integer=model.config.integer)
        out = np.empty((len(wanted), h.height, h.width), h.pixel_type)
        per = 1 if h.grid is None else h.grid[0] * h.grid[1]

        def finish(positions, rec):
            if rec is None:  # no network ran: one constant, what to_pixels makes of a zero output
                out[positions] = to_pixels(np.zeros((1, 1, 1, 1), np.float32), 1, 1, h.window, h.pixel_type)[0, 0, 0]
            else:
                out[positions] = to_pixels(rec, h.height, h.width, h.window, h.pixel_type)[: len(positions)]
            if layer is not None and not layer.sequential:
                out[positions] = layer.decode(reader, [wanted[i] for i in positions], out[positions], workers)
            if progress:  # in image slices
                progress(len(positions) / per if per > 1 else len(positions))

        order = by_iterations(reader.tiles, wanted)
        pending = None  # the batch whose network is running while the next one is entropy-decoded
        for start, stop in layout.batches(len(wanted)):
            positions = order[start:stop]
            launched = (positions, _launch_batch(reader, model, layout, [wanted[i] for i in positions], k, dtype,
                                                   workers))
            if pending is not None:
                finish(*pending)
            pending = launched
        if pending is not None:
            finish(*pending)
        if layer is not None and layer.sequential:  # whole chains, in slice order
            out = layer.decode(reader, wanted, out, workers)
            if requested != wanted:
                at = {s: i for i, s in enumerate(wanted)}
                out = out[[at[s] for s in requested]]
        if k == h.iterations and slices is None:
            reader.verify_end()
    if h.grid is not None:
        out = prep.from_pieces(out, h.grid[0], h.grid[1], h.size[1], h.size[0])
    return out, h


def decompress(path: str | os.PathLike, iterations: int | None = None, progress: Progress | None = None,
               precision: str = "auto", workers: int | None = None) -> tuple[np.ndarray, Header]:
    """Decode a ``.mlc`` file; with ``iterations=k`` only the first k iterations are read.

    Returns (array in numpy axis order with the original dtype, header); ``precision`` and
    ``workers`` as :func:`decode_slices`.
    """
    out, h = decode_slices(path, iterations, None, progress, precision, workers)
    return out.reshape(tuple(reversed(h.size))), h


def geometry_of(header: Header) -> Geometry:
    """The image geometry a header records."""
    return Geometry(tuple(header.spacing), tuple(header.origin), tuple(header.direction))
