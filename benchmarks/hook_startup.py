"""Start-up cost of medcodec's SimpleITK/imageio auto-activation.

    python benchmarks/hook_startup.py [--out benchmarks/results/hook_startup.txt]

Runs fresh interpreters without site processing (``-S``), adds site-packages by hand, runs
any editable-install ``.pth`` untimed, then times exactly what ``medcodec_sitk.pth`` does
(import ``medcodec_plugins.autoload`` and call ``activate()``). Also times
``import SimpleITK`` with and without the hook (``MEDCODEC_SITK_HOOK=0``), and checks that
JAX is not imported by either. Prints medians over fresh processes, with the machine
(processor from ``/proc/cpuinfo``, cores, Python) and whether the install is editable;
``--out FILE`` also writes them to FILE. Imports nothing from medcodec itself.
"""

import argparse
import os
import platform
import site
import statistics
import subprocess
import sys
from pathlib import Path

RUNS = 21


def site_dir() -> Path:
    for d in site.getsitepackages():
        if (Path(d) / "medcodec_sitk.pth").exists():
            return Path(d)
    sys.exit("medcodec_sitk.pth is not installed in this environment (pip install -e . first)")


def timed(code: str, env: dict | None = None) -> float:
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, **(env or {})), check=True)
    return float(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    """The processor's model name and widest vector unit (as ``medcodec.evaluate.cpu_model``
    words it, without importing medcodec here)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    isa = next((x for x in ("avx512f", "avx2", "neon", "asimd") if x in flags), None)
    return f"{name} ({isa.replace('avx512f', 'avx512')})" if isa else name


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="also write the printed lines to this file")
    args = p.parse_args(argv)
    sp = site_dir()
    editable = [str(p) for p in sp.glob("__editable__*medcodec*.pth")]
    prelude = (f"import sys, time; sys.path.append({str(sp)!r}); "
               f"[exec(l) for f in {editable!r} for l in open(f) if l.startswith('import')]; ")
    pth_line = (sp / "medcodec_sitk.pth").read_text().strip()
    hook = [timed(prelude + f"t = time.perf_counter(); {pth_line}; print((time.perf_counter() - t) * 1e3)")
            for _ in range(RUNS)]
    sitk_code = (prelude + pth_line + "; t = time.perf_counter(); import SimpleITK; "
                 "dt = time.perf_counter() - t; assert 'jax' not in sys.modules; print(dt * 1e3)")
    with_hook = [timed(sitk_code) for _ in range(RUNS)]
    without = [timed(sitk_code, {"MEDCODEC_SITK_HOOK": "0"}) for _ in range(RUNS)]
    lines = [f"# python benchmarks/hook_startup.py - {platform.machine()} {cpu_name()}, {os.cpu_count()} cores, "
             f"python {sys.version.split()[0]}, {'editable' if editable else 'regular'} install ({sp})",
             f"medians of {RUNS} fresh processes; load average %.2f %.2f %.2f at the end" % os.getloadavg(),
             f"  medcodec_sitk.pth at start-up:        {statistics.median(hook):.3f} ms",
             f"  import SimpleITK, hook installed:     {statistics.median(with_hook):.1f} ms",
             f"  import SimpleITK, MEDCODEC_SITK_HOOK=0: {statistics.median(without):.1f} ms"]
    print("\n".join(lines))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
