#!/usr/bin/env bash
# "The business added KYC tags": the whole v1 -> v2 loop on the synthetic corpus.
#   diff -> migrate the v1 data -> select turns from new calls -> Label Studio tasks -> (simulated)
#   annotators -> import -> warm-start the v2 child from the v1 parent -> evaluate with a regression
#   section. The parent is the main job's model (PARENT=models/e5-small-synthetic, run scripts/main_job.sh
#   first); QUICK=1 trains a tiny v1 parent in a minute instead, to see the mechanics only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
OUT=${OUT:-runs/new_labels}
DATA=${DATA:-data/synthetic}
PARENT=${PARENT:-models/e5-small-synthetic}
mkdir -p "$OUT"
if [ "${QUICK:-0}" = 1 ]; then
  PARENT="$OUT/parent-tiny"
  [ -f "$DATA/train.jsonl" ] || profiler-synth out_dir="$DATA"
  profiler-train model=tiny data.train="$DATA/train.jsonl" data.dev="$DATA/dev.jsonl" data.test=null \
    trainer.epochs=2 model_dir="$PARENT"
fi
[ -f "$PARENT/config.json" ] || { echo "no parent model at $PARENT: run scripts/main_job.sh, or QUICK=1" >&2; exit 2; }
CHILD_ARGS=(experiment=cpu_fast)
[ "${QUICK:-0}" = 1 ] && CHILD_ARGS=(model=tiny trainer.epochs=2)

# 1. what changed between the versions
profiler-taxonomy diff v1 v2 --migration v1_to_v2 | tee "$OUT/diff.md"
# 2. the v1-labelled corpus, migrated: KYC tags are recorded as never annotated, not as absent
for split in train dev; do
  profiler-taxonomy migrate "$DATA/$split.jsonl" --from v1 --to v2 --migration v1_to_v2 --output "$OUT/v1_as_v2/$split.jsonl"
done
# 3. new calls: a v2 synthetic corpus (its labels play the annotators' answers; the pool has none)
profiler-synth taxonomy=v2 out_dir="$OUT/v2" synth.id_prefix=new- synth.per_tag.train=30 synth.per_tag.dev=10 \
  synth.per_tag.test=15
python scripts/simulate_annotator.py strip "$OUT/v2/train.jsonl" "$OUT/pool.jsonl"
# 4. choose what to annotate: the KYC dimensions (keyword-seeded: the parent has never seen them) and
#    the renamed/merged tags (ranked by the parent's uncertainty); then Label Studio tasks + config
profiler-annotate select --model "$PARENT" --taxonomy v2 --input "$OUT/pool.jsonl" --output "$OUT/selection.jsonl" \
  --tags kyc.purpose,kyc.family_role,kyc.circle,kyc.hobby,kyc.inflow,kyc.trust,basic.platform,voice.positive \
  --keywords configs/annotate/kyc_keywords.yaml --n 1200
profiler-annotate export "$OUT/selection.jsonl" --taxonomy v2 --out-dir "$OUT/label_studio"
# 5. (people annotate in Label Studio and export JSON; simulated here from the synthetic truth)
python scripts/simulate_annotator.py annotate "$OUT/label_studio/tasks.json" "$OUT/v2/train.jsonl" \
  "$OUT/label_studio/export.json"
profiler-annotate import "$OUT/label_studio/export.json" --taxonomy v2 --output "$OUT/annotated.jsonl"
# 6. the child: warm start from the parent on migrated v1 data + the new annotations
profiler-train taxonomy=v2 "${CHILD_ARGS[@]}" init_from="$PARENT" \
  "data.train=[$OUT/v1_as_v2/train.jsonl,$OUT/annotated.jsonl]" "data.dev=[$OUT/v1_as_v2/dev.jsonl,$OUT/v2/dev.jsonl]" \
  data.test=null model_dir="$OUT/child"
# 7. evaluate on fully annotated v2 calls: all tags, plus old tags under the parent vs the child
profiler-eval model_dir="$OUT/child" input="$OUT/v2/test.jsonl" out_dir="$OUT/report" > /dev/null
echo
echo "child model: $OUT/child (taxonomy v2, parent recorded in config.json)"
echo "report with the regression section: $OUT/report/child/report.md"
echo "Label Studio: import $OUT/label_studio/tasks.json with the config $OUT/label_studio/labeling_config.xml"
