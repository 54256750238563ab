"""Print the headline metrics of several model directories side by side (models as columns).
    python scripts/print_metrics.py models/e5-small-synthetic models/tfidf models/rules
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROWS = ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_recall")


def main(dirs: list[str]) -> None:
    metrics = {Path(d).name: json.loads((Path(d) / "metrics.json").read_text()) for d in dirs}
    for split in ("dev", "test"):
        names = [n for n, m in metrics.items() if split in m]
        if not names:
            continue
        print(f"\n{split} split ({metrics[names[0]][split]['turns']} customer turns)\n")
        print("| metric | " + " | ".join(names) + " |")
        print("|---|" + "---|" * len(names))
        for row in ROWS:
            print(f"| {row} | " + " | ".join(f"{metrics[n][split][row]:.4f}" for n in names) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
