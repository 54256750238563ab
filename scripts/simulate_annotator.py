"""Stand-ins for the people in the annotation loop, for the demo and the tests (synthetic data only).

  python scripts/simulate_annotator.py strip LABELLED.jsonl POOL.jsonl
      an "unlabelled" pool: the dialogues without labels or annotation
  python scripts/simulate_annotator.py annotate TASKS.json LABELLED.jsonl EXPORT.json
      what Label Studio's JSON export looks like after an annotator tagged every task with the true
      tags (from LABELLED) of the round's dimensions; the first task is cancelled (skipped)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def strip(dialogues: list[dict]) -> list[dict]:
    out = []
    for d in dialogues:
        turns = [{"speaker": t["speaker"], "text": t["text"]} for t in d["turns"]]
        out.append({k: v for k, v in d.items() if k != "annotation"} | {"turns": turns})
    return out


def annotate(tasks: list[dict], labelled: list[dict]) -> list[dict]:
    truth = {(d["dialogue_id"], i): t.get("labels") or [] for d in labelled for i, t in enumerate(d["turns"])}
    out = []
    for n, task in enumerate(tasks):
        data = task["data"]
        by_dim: dict[str, list[str]] = {}
        for tag in truth[(data["dialogue_id"], data["turn_index"])]:
            dim = tag.rsplit(".", 1)[0]
            if dim in data["dimensions"]:
                by_dim.setdefault(dim, []).append(tag)
        result = [{"from_name": d, "to_name": "turn", "type": "choices", "value": {"choices": v}}
                  for d, v in by_dim.items()]
        out.append({"id": n + 1, "data": data, "annotations": [{
            "id": 1000 + n, "completed_by": {"id": 7, "email": "annotator@bank.example"}, "result": result,
            "was_cancelled": n == 0, "created_at": "2026-11-20T09:00:00Z",
            "updated_at": f"2026-11-20T{9 + n // 60 % 10:02d}:{n % 60:02d}:00Z"}]})
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["strip"] and len(argv) == 3:
        rows = strip(read_jsonl(argv[1]))
        Path(argv[2]).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif argv[:1] == ["annotate"] and len(argv) == 4:
        tasks = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        Path(argv[3]).write_text(json.dumps(annotate(tasks, read_jsonl(argv[2])), ensure_ascii=False), encoding="utf-8")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
