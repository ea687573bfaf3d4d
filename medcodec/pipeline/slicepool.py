"""Run per-slice residual-layer coding in worker processes.

Each slice's residual layer (wavelet or bounded-error) is an independent stream coded by
numpy and constriction in Python, one slice at a time; on a volume that is most of the
decode time once the network is done (or never runs). The slices go to a few worker
processes, in order, and come back in order.

The workers are fresh interpreters (``python -c`` running :func:`_serve`) fed pickled jobs
over their stdin/stdout. Not ``multiprocessing``: forking a process that runs JAX's
threads can deadlock, and the spawn/forkserver methods re-import the caller's main module,
which would re-run a user's script that calls ``sitk.ReadImage`` without a main guard.
A worker imports numpy, constriction and medcodec's coders only (about 0.1 s), never JAX.

Callers pass the function itself; only those in :func:`jobs` can be asked for. A worker
that cannot start makes the pool run the jobs in this process instead; a MedcodecError raised in a worker is raised
here unchanged.
"""

from __future__ import annotations

import functools
import os
import pickle
import selectors
import struct
import subprocess
import sys
from typing import Callable, Sequence

from ..errors import MedcodecError

_FRAME = struct.Struct("<Q")
# Below this many slices per worker, starting workers (0.1-0.2 s each) costs more than it saves.
MIN_SLICES_PER_WORKER = 4


@functools.lru_cache(maxsize=1)
def jobs() -> dict[str, Callable]:
    """The functions a worker may run, by their dotted names (how a job crosses the pipe):
    the residual layers' per-slice coders (numpy only, never JAX)."""
    from ..coding import bounded_error, wavelet_layer
    from ..coding.layers import BoundedErrorCodec, WaveletCodec

    functions = (wavelet_layer.decode_slice, wavelet_layer.encode_slice, wavelet_layer.encode_bands,
                 wavelet_layer.encode_bands_many, bounded_error.decode_slice, bounded_error.encode_slice,
                 BoundedErrorCodec.encode_slices, BoundedErrorCodec.decode_slices,
                 WaveletCodec.encode_slices, WaveletCodec.decode_slices)
    return {f"{f.__module__}.{f.__qualname__}": f for f in functions}


def _job_of(function: Callable, args: Sequence[tuple]) -> tuple[str, list[tuple]]:
    """(registry name, argument tuples) of a call to ``function``: a function of :func:`jobs`
    or a method of a layer codec bound to its (picklable) instance, which then goes first
    in the arguments. Anything else is refused."""
    plain = getattr(function, "__func__", function)
    name = f"{getattr(plain, '__module__', '')}.{getattr(plain, '__qualname__', '')}"
    if jobs().get(name) is not plain:
        raise ValueError(f"not a slice job: {name}")
    bound = getattr(function, "__self__", None)
    return name, [(bound,) + tuple(a) for a in args] if bound is not None else list(args)


def _write(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _read(stream):
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError("slice worker stopped")
    (n,) = _FRAME.unpack(head)
    data = stream.read(n)
    if len(data) < n:
        raise EOFError("slice worker stopped")
    return pickle.loads(data)


def default_workers(n_jobs: int) -> int:
    """Workers worth starting for ``n_jobs`` slices: one per CPU core this process may use
    (or ``$MEDCODEC_SLICE_WORKERS``, set to 1 where processes already fill the cores, as in
    ``medcodec convert``'s Dask workers), at most one per :data:`MIN_SLICES_PER_WORKER`
    slices; 1 means "code here"."""
    setting = os.environ.get("MEDCODEC_SLICE_WORKERS", "").strip()
    if setting.isdigit():
        cores = int(setting)
    else:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
    return max(1, min(cores, n_jobs // MIN_SLICES_PER_WORKER))


def run(function: Callable, args: Sequence[tuple], workers: int | None = None) -> list:
    """``[function(*a) for a in args]`` for a function of :func:`jobs`, in up to
    ``workers`` processes (None: :func:`default_workers`; 1: in this process)."""
    workers = default_workers(len(args)) if workers is None else min(int(workers), len(args))
    with Pool(workers) as pool:
        return pool.map(function, args)


class Pool:
    """Up to ``workers`` worker processes, started on the first :meth:`map` and kept until
    the ``with`` block ends, so a volume decoded batch by batch starts them once. With
    ``workers`` <= 1, or when no worker can start, jobs run in this process."""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self._procs: list | None = None

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, kind, *exc) -> None:
        _stop(self._procs or [], kill=kind is not None)  # after an error, jobs may still be in flight
        self._procs = None

    def _started(self) -> list:
        if self._procs is None:
            self._procs = []
            command = [sys.executable, "-c", _WORKER.format(root=_package_root())]
            # an embedded Python (a viewer application) may report its host program here,
            # which must not be started with "-c": then everything is coded in this process
            wanted = self.workers if _is_python(sys.executable) else 1
            try:
                for _ in range(wanted if wanted > 1 else 0):
                    self._procs.append(subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
            except OSError:  # no interpreter to start (an embedded Python): code here
                _stop(self._procs)
                self._procs = []
        return self._procs

    def parts(self, n: int) -> list[list[int]]:
        """0..n-1 in consecutive runs, one per worker (one run when coding here): for jobs
        that code many slices in lockstep, where fewer, bigger jobs are faster."""
        k = max(1, min(self.workers if self._started_or_planned() else 1, n))
        bounds = [round(i * n / k) for i in range(k + 1)]
        return [list(range(bounds[i], bounds[i + 1])) for i in range(k) if bounds[i] < bounds[i + 1]]

    def map_runs(self, function: Callable, n: int, job: Callable[[list[int]], tuple]) -> list:
        """Items 0..n-1 coded in lockstep runs (:meth:`parts`): ``job(run)`` gives the
        arguments for one run, the function returns one result per item of its run; the
        results come back in item order."""
        return [r for part in self.map(function, [job(run) for run in self.parts(n)]) for r in part]

    def _started_or_planned(self) -> bool:
        return self.workers > 1 and (self._procs is None or bool(self._procs))

    def map(self, function: Callable, args: Sequence[tuple]) -> list:
        """``[function(*a) for a in args]``, in order, for a function of :func:`jobs`."""
        name, calls = _job_of(function, args)
        procs = self._started() if len(args) > 1 else []
        if not procs:
            return [function(*a) for a in args]
        return _dispatch(procs, name, calls)


# The worker's program: this medcodec first on its path (a source checkout works too).
_WORKER = "import sys; sys.path.insert(0, {root!r}); from medcodec.pipeline.slicepool import _serve; _serve()"


def _is_python(executable: str | None) -> bool:
    return bool(executable) and os.path.basename(executable).lower().startswith("python")


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dispatch(procs, name: str, calls: Sequence[tuple]) -> list:
    """One job in flight per worker; the next goes to whichever answers first."""
    results: list = [None] * len(calls)
    pending = iter(enumerate(calls))
    sel = selectors.DefaultSelector()
    busy = 0
    for p in procs:
        nxt = next(pending, None)
        if nxt is None:
            break
        _write(p.stdin, (name, nxt[0], nxt[1]))
        sel.register(p.stdout, selectors.EVENT_READ, p)
        busy += 1
    while busy:
        for key, _ in sel.select():
            p = key.data
            try:
                ok, index, value = _read(p.stdout)
            except EOFError:
                raise MedcodecError(f"a slice worker (pid {p.pid}) stopped unexpectedly; decode with "
                                    "workers=1 to see the error in this process") from None
            if not ok:
                raise value
            results[index] = value
            nxt = next(pending, None)
            if nxt is None:
                sel.unregister(p.stdout)
                busy -= 1
            else:
                _write(p.stdin, (name, nxt[0], nxt[1]))
    sel.close()
    return results


def _stop(procs, kill: bool = False) -> None:
    """End the workers: close their input (they exit after their job), or kill them."""
    for p in procs:
        if kill:
            p.kill()
        try:
            p.stdin.close()
        except OSError:
            pass
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()


def _serve() -> None:
    """The worker: read (function, index, args) frames until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the frames
    while True:
        try:
            name, index, args = _read(stdin)
        except EOFError:
            return
        try:
            _write(stdout, (True, index, jobs()[name](*args)))
        except Exception as e:  # noqa: BLE001 - every error goes back to the caller
            try:
                pickle.dumps(e)
            except Exception:  # noqa: BLE001
                e = MedcodecError(f"slice worker: {type(e).__name__}: {e}")
            _write(stdout, (False, index, e))

