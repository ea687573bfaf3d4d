#!/bin/bash
# One GPU training slot (the device machine has no network; run from the repository root):
#   carry .gpu/train.npz (from `medcodec fetch-data --pack .gpu/train.npz`) and, to resume,
#   .gpu/run (the run folder that came back from the previous slot).
# Usage: bash benchmarks/gpu_train.sh SECONDS [extra `medcodec train` options]
set -euo pipefail
secs=${1:-480}; shift || true
export PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false
out=${OUT:-/tmp/out}
python -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', flax.__version__, 'optax', optax.__version__, jax.devices())"
mkdir -p "$out"
if [ -d .gpu/run ]; then cp -r .gpu/run "$out/run"; fi
python -m medcodec.cli train --data .gpu/train.npz --out "$out/run" --max-seconds "$secs" "$@" \
  | grep -E '"step": [0-9]*000,|resumed|stopping' || true
tail -n 3 "$out/run/metrics.jsonl"; cat "$out/run/best.json"; du -sh "$out/run"
