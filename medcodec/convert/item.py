"""Converting one item (on a worker): read, encode to a private temporary file, verify by
decoding, then link it to its final name. Never raises: returns the manifest record."""

from __future__ import annotations

import errno
import math
import os
import socket
import time
from pathlib import Path

from ..errors import MedcodecError, ReadError, WriteError
from ..io.atomic import move_into_place
from .options import DICOM_KEEP, ConvertOptions, Item, VerificationError, short_hash


def _describe(e: BaseException) -> str:
    """One line; disk-full conditions named as such wherever they sit in the chain."""
    seen, cur = set(), e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return f"disk full: {cur.strerror or cur} ({getattr(cur, 'filename', '') or 'output'})"
        cur = cur.__cause__ or cur.__context__
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text}"[:1000]


def _bytes(files) -> int:
    total = 0
    for f in files:
        try:
            total += os.path.getsize(f)
        except OSError:
            pass
    return total


def _finite(x):
    """JSON-safe float: inf/nan as strings (float('inf') reads them back)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


_WORKER_READY = False


def _worker_setup() -> None:
    """Once per process: no GPU memory preallocation, and with several GPUs, worker i uses
    GPU i (mod count). Imports JAX here, at the first item, not when the worker starts."""
    global _WORKER_READY
    if _WORKER_READY:
        return
    _WORKER_READY = True
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        from distributed import get_worker

        name = get_worker().name
    except Exception:  # not on a dask worker (in-process run)
        return
    if isinstance(name, int):
        from ..model.runtime import pin_worker_device

        pin_worker_device(name)


def _temporary(item: Item, suffix: str) -> Path:
    folder = Path(item.partial_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{short_hash(item.id)}-{os.getpid()}-{os.urandom(4).hex()}{suffix}"


def _keep_metadata(item: Item, metadata: dict[str, str], options: ConvertOptions) -> dict[str, str]:
    if item.kind.startswith("dicom"):
        if options.dicom_tags != "all":
            keep = DICOM_KEEP if options.dicom_tags == "minimal" else {}
            metadata = {k: v for k, v in metadata.items() if k.lower() in keep}
        metadata = {k: v.strip() for k, v in metadata.items() if v.strip()}
    metadata["medcodec_source"] = item.id
    return metadata


def _read_input(item: Item):
    from ..io.images import read_image

    if item.kind == "unreadable":
        raise ReadError(item.error or f"cannot read {item.source}")
    if item.kind == "dicom-series":
        if len(item.files) == 1:  # multi-frame (or single) file: its own geometry, not 4D
            return read_image(item.files[0])
        return read_image(item.source, item.series_uid)
    return read_image(item.source)


def _place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Give a verified temporary its final name (its folder made as the tree is mirrored)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    move_into_place(tmp, out, overwrite)


def _same_geometry(a, b, rtol: float, atol: float) -> bool:
    import numpy as np

    return all(len(x) == len(y) and np.allclose(x, y, rtol=rtol, atol=atol)
               for x, y in ((a.spacing, b.spacing), (a.origin, b.origin), (a.direction, b.direction)))


def _check_iterations(header, tile_iterations, options: ConvertOptions, model_id: str | None) -> None:
    """The stored iterations against those asked for; ``tile_iterations`` (min, max) of the
    tile counts (None without tiles): all 0 is a file of no learned iterations."""
    targeted = options.encode.target is not None  # rate control picks the iterations
    want = options.iterations
    used = 0 if tile_iterations is not None and tile_iterations[1] == 0 else header.iterations
    if (header.iterations > (want or header.iterations) if targeted else used != want) \
            or (model_id and header.model_id != model_id):
        raise VerificationError(f"written with {used} iterations of {header.model_id}, "
                                f"asked for {'at most ' if targeted else ''}{want} of {model_id}")


def _check_targets(path: Path, array, psnr: float, options: ConvertOptions) -> None:
    """The encode's own target (psnr, or a bpp/ratio budget from the bytes on disk)."""
    target_psnr = options.encode.psnr
    if target_psnr is not None and not psnr >= target_psnr:
        raise VerificationError(f"quality target missed: PSNR {psnr:.2f} dB < {target_psnr:g} dB")
    rate = 8.0 * path.stat().st_size / array.size
    budget = options.encode.budget_bpp(array.dtype.itemsize)
    if budget is not None and not rate <= budget * (1 + 1e-9):
        raise VerificationError(f"rate target missed: {rate:.4f} bpp > {budget:.4f} bpp")


def _verify_mlc(path: Path, array, geometry, options: ConvertOptions, encoded_psnr=None,
                model_id: str | None = None) -> dict:
    """Decode ``path`` and compare it with the original; raises VerificationError."""
    from .. import api, prep

    decoded, header = api.decompress(path)
    if decoded.shape != array.shape or decoded.dtype != array.dtype:
        raise VerificationError(f"decoded {decoded.shape} {decoded.dtype}, original {array.shape} {array.dtype}")
    if not _same_geometry(api.geometry_of(header), geometry, 1e-9, 1e-9):
        raise VerificationError("decoded geometry (spacing/origin/direction) differs from the original")
    _check_iterations(header, api.info(path)["tile_iterations"], options, model_id)
    psnr, max_err = prep.psnr(array, decoded), prep.max_abs_error(array, decoded)
    _check_targets(path, array, psnr, options)
    if encoded_psnr is not None and not (psnr == encoded_psnr or abs(psnr - encoded_psnr) <= 0.1):
        raise VerificationError(f"decoded PSNR {psnr:.3f} dB differs from the encoder's {encoded_psnr:.3f} dB")
    if options.min_psnr is not None and not psnr >= options.min_psnr:
        raise VerificationError(f"quality target missed: PSNR {psnr:.2f} dB < {options.min_psnr:g} dB")
    bound = options.encode.max_error
    if bound is not None and not max_err <= bound:
        raise VerificationError(f"error bound missed: max error {max_err:g} > {bound}")
    if options.accept_error is not None and not max_err <= options.accept_error:
        raise VerificationError(f"quality target missed: max error {max_err:g} > {options.accept_error:g}")
    return {"psnr": psnr, "max_error": max_err, "model_id": header.model_id, "iterations": header.iterations}


def _encode_item(item: Item, options: ConvertOptions) -> dict:
    from .. import api
    from ..io.images import from_sitk
    from ..model import checkpoint

    array, geometry, metadata = from_sitk(_read_input(item))
    metadata = _keep_metadata(item, metadata, options)
    out = Path(item.output)
    model_id = checkpoint.load(options.encode.model_id).model_id
    facts = {"voxels": int(array.size), "raw_bytes": int(array.nbytes), "shape": list(array.shape[::-1]),
             "pixel_type": array.dtype.name, "bytes_in": _bytes(item.files or (item.source,))}
    if out.exists() and not options.overwrite:
        # e.g. a run killed after the rename but before its manifest line: adopt it if it
        # verifies against this input with these settings, else leave it alone and report
        try:
            checks = _verify_mlc(out, array, geometry, options, model_id=model_id)
        except MedcodecError as e:
            raise WriteError(f"{out} exists and is not a verified output of this input ({e}); "
                             "use --force to replace it") from e
        checks["note"] = "existing output verified"
    else:
        tmp = _temporary(item, ".mlc")
        try:
            stats = api.compress(array, tmp, options.encode, geometry=geometry, metadata=metadata)
            checks = _verify_mlc(tmp, array, geometry, options, encoded_psnr=stats.psnr, model_id=model_id)
            _place(tmp, out, options.overwrite)
        finally:
            if tmp.exists():
                tmp.unlink()
    facts["bytes_out"] = os.path.getsize(out)
    facts.update(checks)
    return facts


def _decode_item(item: Item, options: ConvertOptions) -> dict:
    import numpy as np

    from .. import api
    from ..io.images import from_sitk, read_image, to_sitk, write_image

    out = Path(item.output)
    if item.kind == "unreadable":
        raise ReadError(item.error or f"cannot read {item.source}")
    if out.exists() and not options.overwrite:
        raise WriteError(f"{out} exists; use --force to replace it")
    decoded, header = api.decompress(item.source)
    geometry = api.geometry_of(header)
    metadata = api.read_image_metadata(item.source)  # with the lossy-compression attributes
    if options.fmt == "dicom":
        return _decode_item_dicom(item, options, decoded, header, metadata)
    tmp = _temporary(item, "." + options.fmt)
    try:
        write_image(to_sitk(decoded, geometry, metadata), tmp)
        back, back_geom, _ = from_sitk(read_image(tmp))
        if back.shape != decoded.shape or back.dtype != decoded.dtype or not np.array_equal(back, decoded):
            raise VerificationError(f"{options.fmt} file does not read back as the decoded image")
        if not _same_geometry(back_geom, geometry, 1e-5, 1e-4):  # NIfTI stores float32
            raise VerificationError(f"{options.fmt} file does not keep the geometry")
        _place(tmp, out, options.overwrite)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {"voxels": int(decoded.size), "raw_bytes": int(decoded.nbytes), "shape": list(header.size),
            "pixel_type": header.pixel_type, "bytes_in": _bytes([item.source]),
            "bytes_out": os.path.getsize(out), "model_id": header.model_id}


def _decode_item_dicom(item: Item, options: ConvertOptions, decoded, header, metadata) -> dict:
    """A .mlc -> a DICOM series folder, read back by GDCM and compared before it gets its name."""
    import shutil

    import numpy as np

    from .. import api
    from ..io.dicom import DicomOptions, check_target, place_series, write_series
    from ..io.images import from_sitk, read_image

    out = Path(item.output)
    if out.exists():
        check_target(out, options.overwrite)  # a folder holding only an earlier series
    geometry = api.geometry_of(header)
    tmp = _temporary(item, ".dicom")
    try:
        files = write_series(decoded, geometry, metadata, tmp, options.dicom or DicomOptions())
        back, back_geom, _ = from_sitk(read_image(tmp))
        n = decoded.ndim  # a 2D image reads back as one slice of a 3D one
        back_geom = type(back_geom)(back_geom.spacing[:n], back_geom.origin[:n],
                                    tuple(np.asarray(back_geom.direction).reshape(3, 3)[:n, :n].ravel()))
        if back.size != decoded.size or not np.array_equal(back.reshape(decoded.shape), decoded):
            raise VerificationError("DICOM series does not read back as the decoded image")
        if not _same_geometry(back_geom, geometry, 1e-5, 1e-4):
            raise VerificationError("DICOM series does not keep the geometry")
        out.parent.mkdir(parents=True, exist_ok=True)
        place_series(tmp, out, options.overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {"voxels": int(decoded.size), "raw_bytes": int(decoded.nbytes), "shape": list(header.size),
            "pixel_type": header.pixel_type, "bytes_in": _bytes([item.source]),
            "bytes_out": sum(f.stat().st_size for f in out.iterdir()), "model_id": header.model_id,
            "files_out": len(files)}


def convert_one(item: Item, options: ConvertOptions) -> dict:
    """Convert and verify one item; returns its manifest record (never raises)."""
    t0 = time.perf_counter()
    record = {"input": item.id, "output": item.rel_output, "kind": item.kind, "status": "failed",
              "error": "", "voxels": None, "bytes_in": None, "bytes_out": None, "raw_bytes": None,
              "ratio": None, "disk_ratio": None, "bpp": None, "psnr": None, "max_error": None,
              "seconds": None, "iterations": None if options.decode else options.iterations}
    try:
        _worker_setup()
        facts = _decode_item(item, options) if options.decode else _encode_item(item, options)
        record.update(facts)
        record["status"] = "ok"
        compressed = record["bytes_in"] if options.decode else record["bytes_out"]
        if compressed:
            record["ratio"] = record["raw_bytes"] / compressed
            record["bpp"] = 8.0 * compressed / record["voxels"]
            if not options.decode:
                record["disk_ratio"] = record["bytes_in"] / compressed
    except Exception as e:  # one item's failure never stops the batch
        record["status"], record["error"] = "failed", _describe(e)
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return {k: _finite(v) for k, v in record.items()}
