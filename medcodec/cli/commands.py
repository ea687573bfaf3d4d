"""The commands behind ``medcodec encode | decode | info | convert | report | demo | train |
export | fetch-data``: each turns parsed arguments into one library call and prints the result
(results on stdout, progress bars on stderr)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..errors import MedcodecError


def _progress(total: int | None, quiet: bool, desc: str):
    """A tqdm bar on stderr for multi-slice work (total None: a counter, for work whose
    length is not known ahead, like rate control's encodes); returns (callback, close)."""
    if quiet or (total is not None and total <= 1):
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="slice", file=sys.stderr, leave=False)
    return bar.update, bar.close



def _slices_of(array) -> int:
    return int(array.size // (array.shape[-1] * array.shape[-2]))


def _encode_options(args):
    """The one EncodeOptions of ``medcodec encode`` (validated: InputError)."""
    from ..options import EncodeOptions

    return EncodeOptions(iterations=args.iterations, max_error=0 if args.lossless else args.max_error,
                         bpp=args.bpp, ratio=args.ratio, psnr=args.psnr, roi=args.roi,
                         background_weight=args.background_weight, adaptive=not args.uniform,
                         wavelet=not args.no_wavelet, interslice=not args.no_interslice, model_id=args.model)


def cmd_encode(args) -> int:
    from .. import api
    from ..io.images import from_sitk, read_image

    options = _encode_options(args)  # before reading the image: a usage error costs nothing
    array, geometry, metadata = from_sitk(read_image(args.input, args.series))
    # rate control makes several encodes (full, tile plans, candidates): a counter of slices
    total = None if options.target is not None else _slices_of(array)
    update, close = _progress(total, args.quiet, "encode" if total is not None else "encode (rate control)")
    try:
        stats = api.compress(array, args.output, options, geometry=geometry, metadata=metadata,
                             overwrite=args.force, progress=update)
    finally:
        close()
    print(json.dumps(stats.as_dict()) if args.json else stats.summary())
    return 0


def cmd_decode(args) -> int:
    from .. import api, prep
    from ..format import read_header
    from ..io.atomic import check_output
    from ..io.images import write_image

    total = read_header(args.input).image_slices
    if args.format == "dicom" or (args.format == "auto" and args.output.endswith(("/", os.sep))):
        return _decode_dicom(args, total)
    check_output(args.output, args.force)  # before the work, not after it
    update, close = _progress(total, args.quiet, "decode")
    try:
        image = api.read(args.input, iterations=args.iterations, progress=update, precision=args.precision,
                         workers=args.workers)
    finally:
        close()
    write_image(image, args.output, overwrite=args.force)
    line = f"{args.output}: {image.GetSize()} {image.GetPixelIDTypeAsString()}"
    if args.reference:
        from ..io.images import from_sitk, read_image

        ref = from_sitk(read_image(args.reference))[0]
        dec = from_sitk(image)[0]
        if ref.shape != dec.shape:
            raise MedcodecError(f"reference has shape {ref.shape}, decoded image {dec.shape}")
        line += f", PSNR {prep.psnr(ref, dec):.2f} dB, max error {prep.max_abs_error(ref, dec):g}"
    print(line)
    return 0


def _dicom_options(args):
    from ..io.dicom import DicomOptions

    return DicomOptions(transfer_syntax=args.transfer_syntax, keep_tags=not args.no_dicom_tags,
                        multiframe=args.multiframe)


def _decode_dicom(args, total: int) -> int:
    from .. import api
    from ..format import read_image_metadata
    from ..io import lossy_flags

    update, close = _progress(total, args.quiet, "decode")
    try:
        files = api.decode_to_dicom(args.input, args.output, _dicom_options(args), iterations=args.iterations,
                                    overwrite=args.force, progress=update, precision=args.precision,
                                    workers=args.workers)
    finally:
        close()
    flags = lossy_flags.summary(read_image_metadata(args.input, args.iterations))
    print(f"{args.output}: {len(files)} DICOM file(s), {args.transfer_syntax}, {flags}")
    return 0


def cmd_info(args) -> int:
    from ..api import info

    facts = info(args.input)
    if args.json:
        print(json.dumps(facts, indent=1))
        return 0
    for k, v in facts.items():
        if k == "metadata":
            print(f"metadata: {len(v)} entries")
            for mk, mv in list(v.items())[: args.metadata_lines]:
                print(f"  {mk} = {mv}")
        elif isinstance(v, float):
            print(f"{k}: {v:.4g}")
        else:
            print(f"{k}: {v}")
    return 0


def cmd_convert(args) -> int:
    from .. import convert
    from ..options import EncodeOptions

    encode = EncodeOptions(iterations=args.iterations, max_error=0 if args.lossless else args.bound,
                           psnr=args.psnr, bpp=args.bpp, ratio=args.ratio, model_id=args.model)
    options = convert.ConvertOptions(
        encode=encode, min_psnr=args.min_psnr, accept_error=args.max_error, overwrite=args.force,
        decode=args.decode, fmt=args.format, dicom_tags=args.dicom_tags, dicom=_dicom_options(args))
    summary = convert.run(args.src, args.dst, options, scheduler=args.scheduler, workers=args.workers,
                          progress=not args.quiet, manifest=args.manifest, max_items=args.max_items)
    print(summary.text())
    if args.plot:
        print(f"plot: {convert.write_plot(summary, args.plot)}")
    return summary.exit_code


def cmd_report(args) -> int:
    from ..review_report import write_report

    print(f"report: {write_report(args.original, args.decoded, args.output, args.slice, args.force)}")
    return 0


def cmd_demo(args) -> int:
    from .. import samples

    return samples.demo(iterations=args.iterations, quiet=args.quiet, workdir=args.workdir, psnr=args.psnr)


def cmd_train(args) -> int:
    from ..model.config import named_config
    from ..train import train

    train(named_config(args.config), Path(args.out), steps=args.steps, batch=args.batch,
          patch=args.patch, lr=args.lr, seed=args.seed, max_seconds=args.max_seconds,
          iterations=args.iterations, save_every=args.save_every, data=args.data,
          compute_dtype="bfloat16" if args.bf16 else "float32", distributed=args.distributed)
    return 0


def cmd_export(args) -> int:
    from ..train.export import export_run

    print(export_run(Path(args.run), Path(args.dest), which=args.which))
    return 0


def cmd_fetch(args) -> int:
    from ..data.fetch import default_cache, fetch_all

    cache = Path(args.cache) if args.cache else default_cache()
    sums = fetch_all(cache)
    for name, digest in sums.items():
        print(f"{digest[:16]}  {name}")
    if args.pack:
        from ..data.fetch import load_role
        from ..data.pack import write_pack

        print(write_pack(Path(args.pack), load_role("train", cache), role="train"))
    return 0

