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
# orbax folders nest too deep to come back from the device: they travel as tar files
run=/tmp/medcodec_run; rm -rf "$run"; mkdir -p "$run"
for t in .gpu/run.tar .gpu/state.tar; do if [ -f "$t" ]; then tar -xf "$t" -C "$run"; fi; done
python -m medcodec.cli train --data .gpu/train.npz --out "$run" --max-seconds "$secs" "$@" \
  | grep -E '"step": [0-9]*000,|resumed|stopping' || true
tail -n 2 "$run/metrics.jsonl"; cat "$run/best.json"; du -sh "$run"
# each file must stay under the 16 MiB transfer limit: params-only best/ and the full state apart
tar -cf "$out/run.tar" -C "$run" --exclude=state .
tar -cf "$out/state.tar" -C "$run" state
ls -la "$out"
