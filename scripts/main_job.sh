#!/usr/bin/env bash
# The main job on a fresh machine: set up, synthetic corpus -> validate -> train the offline default
# encoder and both baselines -> evaluate on the held-out-phrasing test split -> comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
DATA=${DATA:-data/synthetic}
MODELS=${MODELS:-models}
profiler-synth out_dir="$DATA"
for split in train dev test; do
  profiler-validate input="$DATA/$split.jsonl" strict=true
done
profiler-prepare
profiler-train experiment=cpu_fast data.train="$DATA/train.jsonl" data.dev="$DATA/dev.jsonl" \
  data.test="$DATA/test.jsonl" model_dir="$MODELS/e5-small-synthetic"
profiler-train model=tfidf data.train="$DATA/train.jsonl" data.dev="$DATA/dev.jsonl" \
  data.test="$DATA/test.jsonl" model_dir="$MODELS/tfidf"
profiler-train model=rules data.train="$DATA/train.jsonl" data.dev="$DATA/dev.jsonl" \
  data.test="$DATA/test.jsonl" model_dir="$MODELS/rules"
python scripts/print_metrics.py "$MODELS/e5-small-synthetic" "$MODELS/tfidf" "$MODELS/rules"
echo
echo "model directory: $MODELS/e5-small-synthetic   (baselines: $MODELS/tfidf, $MODELS/rules)"
echo "corpus: $DATA (data card: $DATA/data_card.md); run logs: outputs/"
echo "main job finished in $(( (SECONDS - START) / 60 )) min $(( (SECONDS - START) % 60 )) s"
