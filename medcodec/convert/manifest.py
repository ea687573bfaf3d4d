"""The JSON-lines manifest: one fsynced record per finished item; what a resumed run skips."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import WriteError
from .item import _describe
from .options import Item


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
