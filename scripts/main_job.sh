#!/usr/bin/env bash
# The main job on a fresh machine: set up, then synthetic corpus -> validate.
# (Training, evaluation, prediction and export are appended here as they land.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
DATA=${DATA:-data/synthetic}
profiler-synth out_dir="$DATA"
for split in train dev test; do
  profiler-validate input="$DATA/$split.jsonl" strict=true
done
profiler-prepare
echo "corpus: $DATA (data card: $DATA/data_card.md)"
