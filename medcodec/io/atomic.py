"""Safe output files: check a target before the work, write to a temporary beside it, then
give it its name with one never-overwrite rename (standard library only).

Every output medcodec writes (``.mlc`` files, decoded images, batch results, reports) goes
through :func:`move_into_place`: without ``overwrite`` an existing file is never replaced,
even one that appeared while the work ran, and no partial file is ever left behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from ..errors import WriteError


def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse an output path that is a folder, sits in a missing folder, or exists (unless
    ``overwrite``): checked before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise WriteError(f"{path} is a folder; give an output file such as out.nii.gz, out.nrrd or out.mlc")
    if path.exists() and not overwrite:
        raise WriteError(f"{path} exists; use --force (overwrite=True) to replace it")
    if not path.parent.is_dir():
        raise WriteError(f"output folder {path.parent} does not exist")
    return path


def temporary_sibling(path: Path) -> Path:
    """A hidden temporary path beside ``path`` keeping its extensions (SimpleITK picks the
    writer from them)."""
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return path.with_name(f".{stem}.{os.getpid()}-{os.urandom(3).hex()}.part{suffix}")


def _exists_error(path) -> WriteError:
    return WriteError(f"{path} exists; use --force (overwrite=True) to replace it")


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def move_into_place(tmp: str | os.PathLike, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Rename a complete file ``tmp`` (same filesystem) onto ``path``; without ``overwrite``
    an existing ``path`` is never replaced (WriteError). ``tmp`` is gone afterwards either way."""
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if path appeared meanwhile: never clobber a file we did not own
            except FileExistsError:
                raise _exists_error(path) from None
            except OSError:  # filesystems without hard links
                if os.path.exists(path):
                    raise _exists_error(path) from None
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_folder(Path(path).parent)


def atomic_write(path: str | os.PathLike, parts: Iterable[bytes], overwrite: bool = False) -> None:
    """Write ``parts`` to a temporary file beside ``path``, fsync, then rename onto it.

    Without ``overwrite`` an existing ``path`` is never replaced. No partial file remains
    at ``path`` or beside it if anything fails.
    """
    path = check_output(path, overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            for p in parts:
                f.write(p)
            f.flush()
            os.fsync(f.fileno())
        move_into_place(tmp, path, overwrite)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            raise WriteError(f"could not write {path}: {e.strerror or e}") from e
        raise
