"""Check voices files before committing them: every bad line as file:line: field: reason, then counts
per kind, register and tag. Needs only the standard library (writers run it before any install):

  python3 scripts/check_voices.py ../shared/spec/taxonomy_v1.tsv src/profiler/synth/voices/train/w01.*.tsv
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src" / "profiler" / "synth"))
from voices import load_files, read_taxonomy, summary  # noqa: E402  (stdlib-only module, no package install)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python3 scripts/check_voices.py TAXONOMY.tsv FILE.tsv [FILE.tsv ...]", file=sys.stderr)
        return 2
    ids, exclusive = read_taxonomy(argv[0])
    rows, errors = load_files([Path(p) for p in argv[1:]], ids, exclusive)
    for e in errors:
        print(e)
    s = summary(rows, ids)
    print(f"{s['utterances']} distinct utterances, {len(errors)} bad line(s); kinds {s['kinds']}; "
          f"untagged share {s['untagged_share']}; multi-tag {s['multi_tag']}; registers {s['registers']}")
    print("tag\tpositive\tnegative")
    for t, c in s["per_tag"].items():
        print(f"{t}\t{c['positive']}\t{c['negative']}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
