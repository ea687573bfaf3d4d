"""Running a batch: skip what is done, submit the rest to Dask (or run in-process), record
each result as it arrives, and summarise."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from pathlib import Path

from ..errors import InputError, MedcodecError
from .discover import _check_roots, discover
from .item import _describe, convert_one
from .manifest import Manifest, is_done
from .options import DECODE_FORMATS, MANIFEST_NAME, PARTIAL_DIR, ConvertOptions, Item, short_hash


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
        raise MedcodecError("Dask is a dependency of medcodec but does not import here "
                            f"({e}); reinstall it (pip install 'dask[distributed]') or convert "
                            "in this process with --workers 0") from e
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
                                   env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                                        "MEDCODEC_THREADS": "1"})  # one process per core already
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
