#!/usr/bin/env bash
# Pack RUNS_DIR for the trip back: small.tar.gz (all but weights) + weights in 15 MiB pieces.
#   bash benchmarks/device_pack.sh RUNS_DIR OUT_DIR [FOLDER_GLOB]
set -euo pipefail
runs=$1 out=$2 glob=${3:-*}
mkdir -p "$out"
tar -czf "$out/small.tar.gz" --exclude='model.safetensors' -C "$runs" .
for w in $runs/$glob/model.safetensors; do
  [ -f "$w" ] || continue
  name=$(basename "$(dirname "$w")")
  split -b 15M -d "$w" "$out/$name.safetensors.part"
done
ls -la "$out"
