"""Batch conversion of whole archives: ``medcodec convert SRC DST`` on one machine or a Dask cluster.

* :func:`discover` walks SRC and returns :class:`Item` s with stable ids and output paths:
  DICOM series (grouped by SeriesInstanceUID, sorted by position by GDCM, multi-frame files
  too), NIfTI, NRRD, MHA/MHD files; with ``decode=True`` the ``.mlc`` files.
* :func:`convert_one` (runs on a worker) reads one item, encodes it to a private temporary
  file in DST, verifies it by decoding (shape, pixel type, geometry, PSNR / max error against
  the original and the quality target), and only then links it to its final name. It never
  raises: it returns the manifest record, ``status`` "ok" or "failed" with the error.
* :func:`run` skips items whose verified output is recorded in the manifest, submits the rest
  to a ``dask.distributed`` client (a ``LocalCluster`` of single-threaded worker processes by
  default, or an existing scheduler), and appends each record to the manifest (JSON lines,
  flushed and fsynced) as it arrives, so a killed run resumes where it stopped.

SRC is only ever read. Outputs are never replaced unless ``overwrite``; an output that exists
without a manifest record (a run killed between the rename and the manifest line) is verified
against its input and adopted, or reported.

Workers import JAX lazily (at their first item) with ``XLA_PYTHON_CLIENT_PREALLOCATE=false``.
With a remote scheduler, SRC and DST must be visible to the workers under the same paths.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import socket
import sys
import time
from pathlib import Path

from .errors import InputError, MedcodecError, ReadError, WriteError

MANIFEST_NAME = "medcodec-manifest.jsonl"
PARTIAL_DIR = ".medcodec-partial"  # temporaries, in DST (same filesystem: renames are atomic)
VOLUME_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_EXTENSIONS = (".dcm", ".dicom", ".ima")
DECODE_FORMATS = ("nii.gz", "nii", "nrrd", "mha")  # single-file formats: renamed atomically
NOT_DICOM_NAMES = {"DICOMDIR"}

# DICOM attributes kept in the .mlc metadata (SimpleITK/GDCM keys "gggg|eeee")
DICOM_KEEP = {
    "0008|0016": "SOPClassUID", "0008|0020": "StudyDate", "0008|0030": "StudyTime",
    "0008|0050": "AccessionNumber", "0008|0060": "Modality", "0008|0070": "Manufacturer",
    "0008|1030": "StudyDescription", "0008|103e": "SeriesDescription",
    "0010|0010": "PatientName", "0010|0020": "PatientID", "0010|0030": "PatientBirthDate",
    "0010|0040": "PatientSex", "0018|0015": "BodyPartExamined", "0018|0050": "SliceThickness",
    "0018|0088": "SpacingBetweenSlices", "0020|000d": "StudyInstanceUID",
    "0020|000e": "SeriesInstanceUID", "0020|0010": "StudyID", "0020|0011": "SeriesNumber",
    "0020|0052": "FrameOfReferenceUID", "0028|0030": "PixelSpacing",
    "0028|1050": "WindowCenter", "0028|1051": "WindowWidth", "0028|1052": "RescaleIntercept",
    "0028|1053": "RescaleSlope", "0028|1054": "RescaleType",
}


class VerificationError(MedcodecError):
    """A converted output did not decode to what was encoded (geometry, pixels, quality)."""


@dataclasses.dataclass(frozen=True)
class ConvertOptions:
    """Rate/quality settings and safety switches of a batch conversion."""

    iterations: int = 8
    model: str | None = None
    min_psnr: float | None = None     # quality target: outputs below it are not kept
    max_error: float | None = None    # quality target on the maximum absolute error
    bound: int | None = None          # encode with the residual layer: |error| <= bound (0 = lossless)
    overwrite: bool = False
    decode: bool = False              # .mlc -> fmt instead of images -> .mlc
    fmt: str = "nii.gz"
    all_dicom_tags: bool = False      # keep every printable tag of the first slice


@dataclasses.dataclass(frozen=True)
class Item:
    """One unit of work: an input (file or DICOM series) and where its output goes."""

    id: str                        # stable: input path relative to SRC ('#UID' for a series)
    kind: str                      # 'file' | 'dicom-series' | 'dicom-file' | 'mlc' | 'unreadable'
    source: str                    # absolute input file or series folder
    output: str                    # absolute output file
    rel_output: str                # output relative to DST (posix)
    series_uid: str | None = None
    files: tuple[str, ...] = ()    # absolute input files (for bytes in)
    error: str | None = None       # why an 'unreadable' item cannot be read
    partial_dir: str = ""          # DST/.medcodec-partial


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


# ----------------------------------------------------------------------------- discovery


def _volume_ext(name: str) -> str | None:
    low = name.lower()
    for ext in VOLUME_EXTENSIONS:
        if low.endswith(ext) and len(name) > len(ext):
            return name[len(name) - len(ext):]
    return None


def _looks_like_dicom(path: Path) -> bool:
    if path.name.lower().endswith(DICOM_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _check_roots(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise InputError(f"{src} is not a folder; give the root folder of the archive to convert")
    if dst.exists() and not dst.is_dir():
        raise InputError(f"{dst} exists and is not a folder")
    if src == dst or src in dst.parents or dst in src.parents:
        raise InputError(f"source {src} and destination {dst} overlap; the output tree must lie "
                         "outside the archive (and the archive outside the output tree)")


def discover(src: str | os.PathLike, dst: str | os.PathLike, decode: bool = False,
             fmt: str = "nii.gz") -> list[Item]:
    """All items under ``src``, sorted by id, with unique output paths under ``dst``.

    Outputs mirror the input tree: ``a/b/ct.nii.gz`` -> ``a/b/ct.mlc``; a DICOM series folder
    ``a/b/series/`` -> ``a/b/series.mlc`` (``series_<hash of SeriesInstanceUID>.mlc`` when the
    folder holds several series). Names that would collide (``ct.nii`` and ``ct.nrrd``) keep
    their extension (``ct.nii.gz.mlc``, ``ct.nrrd.mlc``). With ``decode``, ``x.mlc`` -> ``x.<fmt>``.
    """
    src, dst = Path(src).resolve(), Path(dst).resolve()
    _check_roots(src, dst)
    props: list[dict] = []  # id, kind, source, stem (output without extension), uid, files
    walk_errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(src, onerror=walk_errors.append):
        dirnames.sort()
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        folder = Path(dirpath)
        rel_dir = folder.relative_to(src)
        dicom: list[Path] = []
        for name in sorted(filenames):
            path = folder / name
            if name.startswith(".") or not path.is_file():
                continue
            rel = (rel_dir / name).as_posix()
            if decode:
                if name.lower().endswith(".mlc") and len(name) > 4:
                    props.append(dict(id=rel, kind="mlc", source=str(path), stem=rel_dir / name[:-4],
                                      name=name, files=(str(path),)))
                continue
            ext = _volume_ext(name)
            if ext:
                props.append(dict(id=rel, kind="file", source=str(path), files=_companions(path),
                                  stem=rel_dir / name[: -len(ext)], name=name))
            elif name.lower().endswith(".mlc") or name in NOT_DICOM_NAMES:
                continue
            elif _looks_like_dicom(path):
                dicom.append(path)
        if dicom:
            props.extend(_dicom_props(src, folder, rel_dir, dicom))
    for e in walk_errors:  # unreadable folders are reported, not silently skipped
        p = Path(e.filename or src)
        rel = p.relative_to(src) if p != src and src in p.parents else Path(p.name)
        props.append(dict(id=rel.as_posix(), kind="unreadable", source=str(p), stem=rel, name=p.name,
                          error=f"cannot list folder {p}: {e.strerror or e}"))
    return _finalise(props, dst, ".mlc" if not decode else "." + fmt)


def _companions(path: Path) -> tuple[str, ...]:
    """The file and, for a detached header (.mhd, .nhdr), its data file(s)."""
    files = [str(path)]
    low = path.name.lower()
    if low.endswith((".mhd", ".nhdr")):
        key = "elementdatafile" if low.endswith(".mhd") else "data file"
        try:
            text = path.read_text(errors="replace")[:65536]
        except OSError:
            return tuple(files)
        for line in text.splitlines():
            k, sep, v = line.partition("=" if key == "elementdatafile" else ":")
            if sep and k.strip().lower() == key:
                data = path.parent / v.strip()
                if data.is_file():
                    files.append(str(data))
    return tuple(files)


def _dicom_props(src: Path, folder: Path, rel_dir: Path, candidates: list[Path]) -> list[dict]:
    import SimpleITK as sitk

    try:
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    except RuntimeError:
        uids = ()
    series, covered = [], set()
    for uid in uids:
        try:
            files = tuple(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
        except RuntimeError:
            files = ()
        files = tuple(str(Path(os.path.normpath(f))) for f in files)
        covered.update(files)
        series.append((uid, files))
    name = folder.name if rel_dir != Path(".") else (src.name or "dicom")
    base = rel_dir.parent / name if rel_dir != Path(".") else Path(name)
    props = []
    for uid, files in series:
        stem = base if len(series) == 1 else base.with_name(f"{base.name}_{short_hash(uid)}")
        props.append(dict(id=f"{rel_dir.as_posix()}#{uid}", kind="dicom-series", source=str(folder),
                          uid=uid, files=files, stem=stem, name=name, alt=f"{base.name}_{short_hash(uid)}"))
    for path in candidates:  # DICOM-looking files in no series: read alone (or reported)
        if str(path) not in covered:
            n = path.name
            stem = rel_dir / (n[: -len(Path(n).suffix)] if Path(n).suffix.lower() in DICOM_EXTENSIONS else n)
            props.append(dict(id=(rel_dir / n).as_posix(), kind="dicom-file", source=str(path),
                              files=(str(path),), stem=stem, name=n))
    return props


def _finalise(props: list[dict], dst: Path, suffix: str) -> list[Item]:
    def target(p, stem):
        return stem.as_posix() + suffix

    outs = [target(p, p["stem"]) for p in props]
    for attempt in range(2):  # collisions: keep the extension / hash the UID, then hash the id
        groups: dict[str, list[int]] = {}
        for i, o in enumerate(outs):
            groups.setdefault(o.lower(), []).append(i)
        clashes = [g for g in groups.values() if len(g) > 1]
        if not clashes:
            break
        for g in clashes:
            for i in g:
                p = props[i]
                if attempt == 0:
                    alt = p.get("alt") or p["name"]
                    outs[i] = target(p, p["stem"].with_name(alt))
                else:
                    outs[i] = outs[i][: -len(suffix)] + f"_{short_hash(p['id'])}" + suffix
    partial = str(dst / PARTIAL_DIR)
    items = [Item(id=p["id"], kind=p["kind"], source=p["source"], output=str(dst / o), rel_output=o,
                  series_uid=p.get("uid"), files=tuple(p.get("files", ())), error=p.get("error"),
                  partial_dir=partial)
             for p, o in zip(props, outs)]
    return sorted(items, key=lambda it: it.id)


# ----------------------------------------------------------------------------- one item


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
    import jax

    gpus = [d for d in jax.local_devices() if d.platform != "cpu"]
    if len(gpus) > 1 and isinstance(name, int):
        jax.config.update("jax_default_device", gpus[name % len(gpus)])


def _temporary(item: Item, suffix: str) -> Path:
    folder = Path(item.partial_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{short_hash(item.id)}-{os.getpid()}-{os.urandom(4).hex()}{suffix}"


def _place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Give a verified temporary its final name, atomically; never clobber without overwrite."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        os.replace(tmp, out)
    else:
        try:
            os.link(tmp, out)  # fails if out appeared meanwhile
        except FileExistsError:
            raise WriteError(f"{out} exists; use --force to replace it")
        except OSError:  # filesystems without hard links
            if out.exists():
                raise WriteError(f"{out} exists; use --force to replace it")
            os.replace(tmp, out)
    try:
        fd = os.open(out.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _keep_metadata(item: Item, metadata: dict[str, str], options: ConvertOptions) -> dict[str, str]:
    if item.kind.startswith("dicom"):
        if not options.all_dicom_tags:
            metadata = {k: v for k, v in metadata.items() if k.lower() in DICOM_KEEP}
        metadata = {k: v.strip() for k, v in metadata.items() if v.strip()}
    metadata["medcodec_source"] = item.id
    return metadata


def _read_input(item: Item):
    from .imagefiles import read_image

    if item.kind == "unreadable":
        raise ReadError(item.error or f"cannot read {item.source}")
    if item.kind == "dicom-series":
        if len(item.files) == 1:  # multi-frame (or single) file: its own geometry, not 4D
            return read_image(item.files[0])
        return read_image(item.source, item.series_uid)
    return read_image(item.source)


def _same_geometry(a, b, rtol: float, atol: float) -> bool:
    import numpy as np

    return all(len(x) == len(y) and np.allclose(x, y, rtol=rtol, atol=atol)
               for x, y in ((a.spacing, b.spacing), (a.origin, b.origin), (a.direction, b.direction)))


def _verify_mlc(path: Path, array, geometry, options: ConvertOptions, encoded_psnr=None,
                model_id: str | None = None) -> dict:
    """Decode ``path`` and compare it with the original; raises VerificationError."""
    from . import api, prep

    decoded, header = api.decompress(path)
    if decoded.shape != array.shape or decoded.dtype != array.dtype:
        raise VerificationError(f"decoded {decoded.shape} {decoded.dtype}, original {array.shape} {array.dtype}")
    if not _same_geometry(api.geometry_of(header), geometry, 1e-9, 1e-9):
        raise VerificationError("decoded geometry (spacing/origin/direction) differs from the original")
    if header.iterations != options.iterations or (model_id and header.model_id != model_id):
        raise VerificationError(f"written with {header.iterations} iterations of {header.model_id}, "
                                f"asked for {options.iterations} of {model_id}")
    psnr, max_err = prep.psnr(array, decoded), prep.max_abs_error(array, decoded)
    if encoded_psnr is not None and not (psnr == encoded_psnr or abs(psnr - encoded_psnr) <= 0.1):
        raise VerificationError(f"decoded PSNR {psnr:.3f} dB differs from the encoder's {encoded_psnr:.3f} dB")
    if options.min_psnr is not None and not psnr >= options.min_psnr:
        raise VerificationError(f"quality target missed: PSNR {psnr:.2f} dB < {options.min_psnr:g} dB")
    if options.bound is not None and not max_err <= options.bound:
        raise VerificationError(f"error bound missed: max error {max_err:g} > {options.bound}")
    if options.max_error is not None and not max_err <= options.max_error:
        raise VerificationError(f"quality target missed: max error {max_err:g} > {options.max_error:g}")
    return {"psnr": psnr, "max_error": max_err, "model_id": header.model_id}


def _encode_item(item: Item, options: ConvertOptions) -> dict:
    from . import api, checkpoint
    from .imagefiles import from_sitk

    array, geometry, metadata = from_sitk(_read_input(item))
    metadata = _keep_metadata(item, metadata, options)
    out = Path(item.output)
    model_id = checkpoint.load(options.model).model_id
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
            stats = api.compress(array, tmp, iterations=options.iterations, geometry=geometry,
                                 metadata=metadata, model_id=options.model, max_error=options.bound)
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

    from . import api
    from .imagefiles import from_sitk, read_image, to_sitk, write_image

    out = Path(item.output)
    if item.kind == "unreadable":
        raise ReadError(item.error or f"cannot read {item.source}")
    if out.exists() and not options.overwrite:
        raise WriteError(f"{out} exists; use --force to replace it")
    decoded, header = api.decompress(item.source)
    geometry = api.geometry_of(header)
    tmp = _temporary(item, "." + options.fmt)
    try:
        write_image(to_sitk(decoded, geometry, header.metadata), tmp)
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


# ----------------------------------------------------------------------------- manifest


class Manifest:
    """JSON-lines manifest, one record per finished item, appended with flush + fsync.

    While open it holds an exclusive lock, so two conversions cannot write one DST at once.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = None

    def load(self) -> dict[str, dict]:
        """The last record of every item (an unparsable line, e.g. cut by a kill, is skipped)."""
        last: dict[str, dict] = {}
        if not self.path.exists():
            return last
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and "input" in rec:
                    last[rec["input"]] = rec
        return last

    def open(self) -> "Manifest":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "ab")
        except OSError as e:
            raise WriteError(f"cannot write the manifest {self.path}: {e.strerror or e}") from e
        try:
            import fcntl

            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            self._f.close()
            raise WriteError(f"{self.path} is locked: another conversion is writing to this destination")
        if self._f.tell() > 0:  # a kill may have cut the last line: start a fresh one
            with open(self.path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    self._write(b"\n")
        return self

    def _write(self, data: bytes) -> None:
        try:
            self._f.write(data)
            self._f.flush()
            os.fsync(self._f.fileno())
        except OSError as e:
            raise WriteError(f"cannot append to the manifest {self.path}: {_describe(e)}") from e

    def append(self, record: dict) -> None:
        self._write((json.dumps(record, allow_nan=False) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()


def is_done(item: Item, record: dict | None) -> bool:
    """Verified earlier: recorded ok, same output name, file still there with the same size."""
    if not record or record.get("status") != "ok" or record.get("output") != item.rel_output:
        return False
    try:
        return os.path.getsize(item.output) == record.get("bytes_out")
    except OSError:
        return False


# ----------------------------------------------------------------------------- batch


def _gpu_count() -> int:
    """GPUs JAX would use (without importing JAX): nvidia-smi, when a CUDA plugin is installed."""
    import importlib.util
    import shutil
    import subprocess

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "" or not shutil.which("nvidia-smi"):
        return 0
    if not any(importlib.util.find_spec(m) for m in ("jax_cuda12_plugin", "jax_cuda13_plugin")):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    n = sum(1 for line in out.splitlines() if line.startswith("GPU "))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return min(n, len(visible.split(","))) if visible else n


def default_workers() -> int:
    """Worker processes for a LocalCluster: two per GPU (reading and verifying overlap the
    GPU work), else one per CPU core, at most one per 3 GB of memory."""
    gpus = _gpu_count()
    if gpus:
        return 2 * gpus
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        cpus = min(cpus, max(1, int(mem // 3e9)))
    except (ValueError, OSError, AttributeError):
        pass
    return max(1, cpus)


@dataclasses.dataclass
class Summary:
    """Outcome of a batch: records of earlier verified items and of this run."""

    src: str
    dst: str
    manifest: str
    items: int
    earlier: list[dict]
    records: list[dict]
    pending: int
    seconds: float
    workers: int = 0
    decode: bool = False

    @property
    def ok(self) -> list[dict]:
        return self.earlier + [r for r in self.records if r["status"] == "ok"]

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.records if r["status"] != "ok"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def totals(self) -> dict:
        ok = self.ok
        psnrs = [(float(r["psnr"]), r["input"]) for r in ok if r.get("psnr") is not None]
        finite = [p for p in psnrs if math.isfinite(p[0])]
        new_ok = [r for r in self.records if r["status"] == "ok"]
        voxels_now = sum(r["voxels"] for r in new_ok)
        t = {
            "items": self.items, "ok": len(ok), "already_done": len(self.earlier),
            "failed": len(self.failed), "pending": self.pending,
            "bytes_in": sum(r["bytes_in"] or 0 for r in ok), "bytes_out": sum(r["bytes_out"] or 0 for r in ok),
            "raw_bytes": sum(r["raw_bytes"] or 0 for r in ok), "voxels": sum(r["voxels"] or 0 for r in ok),
            "psnr_mean": sum(p for p, _ in finite) / len(finite) if finite else None,
            "psnr_worst": min(psnrs) if psnrs else None,
            "seconds": self.seconds, "converted_now": len(new_ok), "voxels_now": voxels_now,
            "volumes_per_hour": 3600.0 * len(new_ok) / self.seconds if self.seconds > 0 else None,
            "mp_per_s": voxels_now / 1e6 / self.seconds if self.seconds > 0 else None,
        }
        return t

    def text(self) -> str:
        t = self.totals()
        verb = "decoded" if self.decode else "converted"
        lines = [f"{t['items']} items: {t['ok']} ok ({t['already_done']} verified earlier, "
                 f"{t['converted_now']} {verb} now), {t['failed']} failed, {t['pending']} pending"]
        if t["ok"]:
            gin, gout = _gb(t["bytes_in"]), _gb(t["bytes_out"])
            if self.decode:
                lines.append(f"in {gin} (.mlc), out {gout}, {t['voxels'] / 1e6:.1f} MVoxel")
            else:
                ratio = t["raw_bytes"] / t["bytes_out"] if t["bytes_out"] else float("nan")
                disk = t["bytes_in"] / t["bytes_out"] if t["bytes_out"] else float("nan")
                bpp = 8.0 * t["bytes_out"] / t["voxels"] if t["voxels"] else float("nan")
                lines.append(f"in {gin} on disk ({_gb(t['raw_bytes'])} raw), out {gout}: "
                             f"ratio {ratio:.1f}:1 (raw), {disk:.1f}:1 (on disk), {bpp:.3f} bpp")
            if t["psnr_worst"] is not None:
                mean = f"{t['psnr_mean']:.2f} dB" if t["psnr_mean"] is not None else "inf (lossless)"
                lines.append(f"PSNR mean {mean}, worst {t['psnr_worst'][0]:.2f} dB ({t['psnr_worst'][1]})")
        if t["converted_now"]:
            where = f"{self.workers} Dask worker(s)" if self.workers else "this process"
            lines.append(f"this run: {t['converted_now']} in {t['seconds']:.1f} s on {where}: "
                         f"{t['volumes_per_hour']:.0f} volumes/hour, {t['mp_per_s']:.3f} MP/s")
        lines.append(f"manifest: {self.manifest}")
        if self.failed:
            lines.append(f"FAILED ({len(self.failed)}):")
            lines.extend(f"  {r['input']}: {r['error']}" for r in self.failed)
        return "\n".join(lines)


def _gb(n: int) -> str:
    return f"{n / 1e9:.3f} GB" if n >= 1e8 else f"{n / 1e6:.3f} MB"


def _failure(item: Item, e: BaseException, options: ConvertOptions) -> dict:
    return {"input": item.id, "output": item.rel_output, "kind": item.kind, "status": "failed",
            "error": f"worker lost: {_describe(e)}", "voxels": None, "bytes_in": None, "bytes_out": None,
            "raw_bytes": None, "ratio": None, "disk_ratio": None, "bpp": None, "psnr": None,
            "max_error": None, "seconds": None, "iterations": None if options.decode else options.iterations,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _clear_partials(dst: Path, remove: bool = False) -> None:
    """Temporaries of killed runs (we hold the manifest lock: no run of ours is writing)."""
    folder = dst / PARTIAL_DIR
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file():
                p.unlink()
        if remove:
            try:
                folder.rmdir()
            except OSError:
                pass


def _bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="vol", desc="convert", file=sys.stderr, dynamic_ncols=True,
                smoothing=0.1)


def run(src: str | os.PathLike, dst: str | os.PathLike, options: ConvertOptions | None = None, *,
        scheduler: str | None = None, workers: int | None = None, progress: bool = True,
        manifest: str | os.PathLike | None = None, max_items: int | None = None) -> Summary:
    """Convert every item under ``src`` into ``dst``; see the module docstring.

    ``scheduler``: address of an existing Dask scheduler (``tcp://host:port``); else a
    LocalCluster of ``workers`` processes (default :func:`default_workers`); ``workers=0``
    converts in this process without Dask. ``max_items`` stops after that many items.
    """
    options = options or ConvertOptions()
    if options.decode and options.fmt not in DECODE_FORMATS:
        raise InputError(f"--format must be one of {', '.join(DECODE_FORMATS)}, got {options.fmt!r}")
    if workers is not None and workers < 0:
        raise InputError(f"workers must be 0 or more, got {workers}")
    src_p, dst_p = Path(src).resolve(), Path(dst).resolve()
    _check_roots(src_p, dst_p)
    t0 = time.perf_counter()
    items = discover(src_p, dst_p, decode=options.decode, fmt=options.fmt)
    man = Manifest(manifest or dst_p / MANIFEST_NAME)
    if src_p == man.path.resolve().parent or src_p in man.path.resolve().parents:
        raise InputError(f"the manifest {man.path} must not be inside the source tree")
    dst_p.mkdir(parents=True, exist_ok=True)
    with man:
        previous = man.load()
        earlier = [previous[it.id] for it in items if is_done(it, previous.get(it.id))]
        done_ids = {r["input"] for r in earlier}
        todo = [it for it in items if it.id not in done_ids]
        pending = 0
        if max_items is not None and len(todo) > max_items:
            pending, todo = len(todo) - max_items, todo[:max_items]
        _clear_partials(dst_p)
        records: list[dict] = []
        n_workers = 0
        bar = _bar(len(todo), progress)
        try:
            if todo and workers == 0 and not scheduler:
                for it in todo:
                    _record(convert_one(it, options), man, records, bar)
            elif todo:
                n_workers = _run_dask(todo, options, man, records, bar, scheduler, workers)
        finally:
            if bar is not None:
                bar.close()
            _clear_partials(dst_p, remove=True)
    return Summary(src=str(src_p), dst=str(dst_p), manifest=str(man.path), items=len(items),
                   earlier=earlier, records=records, pending=pending,
                   seconds=time.perf_counter() - t0, workers=n_workers, decode=options.decode)


def _record(rec: dict, man: Manifest, records: list, bar) -> None:
    man.append(rec)
    records.append(rec)
    if bar is not None:
        ok = [r for r in records if r["status"] == "ok"]
        elapsed = bar.format_dict.get("elapsed") or 1e-9
        bar.set_postfix_str(f"{sum(r['voxels'] for r in ok) / 1e6 / elapsed:.2f} MP/s, "
                            f"{len(records) - len(ok)} failed", refresh=False)
        bar.update(1)


def _run_dask(todo: list[Item], options: ConvertOptions, man: Manifest, records: list, bar,
              scheduler: str | None, workers: int | None) -> int:
    import logging

    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise MedcodecError("batch conversion needs Dask: pip install 'dask[distributed]' "
                            "(or medcodec[dask]); --workers 0 converts without it") from e
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="30s")
            except (OSError, TimeoutError) as e:
                raise MedcodecError(f"cannot reach the Dask scheduler {scheduler}: {e}") from e
        else:
            n = min(workers or default_workers(), len(todo))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.ERROR,
                                   env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
            client = Client(cluster)
        try:
            n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        except TypeError:  # older distributed
            n_workers = len(client.scheduler_info().get("workers", {}))
        by_key = {}
        futures = []
        for it in todo:
            fut = client.submit(convert_one, it, options, pure=False,
                                key=f"medcodec-convert-{short_hash(it.id)}-{os.urandom(4).hex()}")
            by_key[fut.key] = it
            futures.append(fut)
        try:
            for fut in as_completed(futures):
                try:
                    rec = fut.result()
                except Exception as e:  # the worker died (KilledWorker) or the task was lost
                    rec = _failure(by_key[fut.key], e, options)
                _record(rec, man, records, bar)
                fut.release()
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            client.close()
        return n_workers
    finally:
        if cluster is not None:
            cluster.close()


# ----------------------------------------------------------------------------- report


def write_plot(summary: Summary, path: str | os.PathLike) -> str:
    """A summary plot: ``.png`` (needs matplotlib) or ``.html`` (a table; with the plot
    embedded when matplotlib is installed). Returns the path written."""
    import base64
    import html

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise InputError(f"--plot writes .png or .html files, got {path.name}")
    png = None
    try:
        png = _plot_png(summary)
    except ImportError as e:
        if suffix == ".png":
            raise MedcodecError("a PNG plot needs matplotlib: pip install matplotlib "
                                "(or write an .html report)") from e
    if suffix == ".png":
        data = png
    else:
        rows = summary.ok + summary.failed
        cols = ["input", "output", "status", "voxels", "bytes_in", "bytes_out", "ratio", "bpp",
                "psnr", "max_error", "seconds", "error"]

        def cell(v):
            return f"{v:.4g}" if isinstance(v, float) else html.escape(str("" if v is None else v))

        table = "\n".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
        img = (f'<img alt="PSNR vs bpp" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
               if png else "<p>(install matplotlib for the plot)</p>")
        data = (f"<!doctype html><html><head><meta charset='utf-8'><title>medcodec convert</title>"
                f"<style>body{{font-family:sans-serif}}td,th{{padding:2px 8px;border-bottom:1px solid #ddd}}"
                f"</style></head><body><h1>medcodec convert</h1><pre>{html.escape(summary.text())}</pre>"
                f"{img}<table><tr>{''.join(f'<th>{c}</th>' for c in cols)}</tr>\n{table}</table>"
                f"</body></html>").encode("utf-8")
    from .container import atomic_write

    atomic_write(path, [data], overwrite=True)
    return str(path)


def _plot_png(summary: Summary) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in summary.ok if r.get("bpp") is not None]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    pts = [(r["bpp"], float(r["psnr"])) for r in ok if r.get("psnr") is not None
           and math.isfinite(float(r["psnr"]))]
    if pts:
        axes[0].scatter([p[0] for p in pts], [p[1] for p in pts], s=12)
    axes[0].set_xlabel("bits per voxel (file size)")
    axes[0].set_ylabel("PSNR (dB, peak = max - min)")
    axes[0].set_title(f"{len(ok)} volumes, {len(summary.failed)} failed")
    ratios = [r["ratio"] for r in ok if r.get("ratio")]
    if ratios:
        axes[1].hist(ratios, bins=min(30, max(5, len(ratios))))
    axes[1].set_xlabel("compression ratio (raw : .mlc)")
    axes[1].set_ylabel("volumes")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
