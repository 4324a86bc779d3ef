#!/usr/bin/env bash
# Run the training jobs of a GPU session on the lent host, several at once, and pack what comes back.
#
#   bash benchmarks/device_jobs.sh JOBS_FILE RUNS_DIR OUT_DIR [PARALLEL]
#
# JOBS_FILE: one shell command per line (blank lines and # comments skipped); each runs with
# BAA_MINILM_DIR=.carry/minilm and the data unpacked at /tmp/baa-data (see benchmarks/device_kit.py),
# its output in RUNS_DIR/logs/N.log. Afterwards OUT_DIR gets small.tar.gz (every file under RUNS_DIR
# but model weights) and each model.safetensors in pieces of 15 MiB (the host returns at most 8 files
# of 16 MiB each per call); benchmarks/device_unpack.py puts them back together here.
set -uo pipefail
jobs_file=$1 runs=$2 out=$3 parallel=${4:-4}
mkdir -p "$runs/logs" "$out" /tmp/baa-data
[ -d /tmp/baa-data/ag_news ] || tar -xJf .carry/data.tar.xz -C /tmp/baa-data
export BAA_MINILM_DIR=.carry/minilm PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
i=0
grep -vE '^\s*(#|$)' "$jobs_file" | { while IFS= read -r cmd; do
  i=$((i + 1))
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 1; done
  ( start=$(date +%s); bash -c "$cmd" > "$runs/logs/$i.log" 2>&1; rc=$?
    echo "job $i rc=$rc $(( $(date +%s) - start ))s: $cmd" | tee -a "$runs/logs/summary.txt" ) &
done
wait; }
cat "$runs/logs/summary.txt"
