"""Rate-distortion and CPU speed of the shipped checkpoint on the development evaluation set.

    pip install -e '.[bench]'
    python benchmarks/rd_medcodec.py                 # writes benchmarks/results/rd_medcodec.*

Prints a JSON summary (PSNR at 0.25/0.5/1/2 bpp, dB gained per iteration, encode/decode
seconds for a 512x512 slice, the machine) and writes a CSV of every (image, iterations)
point and an RD plot. ``benchmarks/classical.py`` measures JPEG 2000, HTJ2K, JPEG-LS and
JPEG XL on the same images and ``benchmarks/rd_compare.py`` puts them side by side.
"""

import sys

from medcodec.evaluate import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["--out", "benchmarks/results"]))
