"""Finding the inputs of a batch conversion: DICOM series, volume files, .mlc files, and
their stable, unique output names."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from .options import DICOM_EXTENSIONS, NOT_DICOM_NAMES, PARTIAL_DIR, VOLUME_EXTENSIONS, Item, short_hash


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
    # a DICOM series is a folder named as its .mlc without the extension: series.mlc -> series/
    return _finalise(props, dst, ".mlc" if not decode else "" if fmt == "dicom" else "." + fmt)


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
                    outs[i] = outs[i][: len(outs[i]) - len(suffix)] + f"_{short_hash(p['id'])}" + suffix
    partial = str(dst / PARTIAL_DIR)
    items = [Item(id=p["id"], kind=p["kind"], source=p["source"], output=str(dst / o), rel_output=o,
                  series_uid=p.get("uid"), files=tuple(p.get("files", ())), error=p.get("error"),
                  partial_dir=partial)
             for p, o in zip(props, outs)]
    return sorted(items, key=lambda it: it.id)
