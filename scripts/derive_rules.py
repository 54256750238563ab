"""Derive the keyword rules of the `rules` baseline from a taxonomy's definitions.

The definitions list example wordings separated by "/" or "、" (e.g. "不需要/不感兴趣/不用了");
each becomes a literal pattern. The output is a starting point meant for hand editing:
    python scripts/derive_rules.py > configs/rules/v1.yaml
"""

from __future__ import annotations

import re
import sys

import yaml

from profiler.taxonomy import Taxonomy

SPLIT = re.compile(r"[/、，,；;()（）]")
DROP = re.compile(r"^(如|等|偏好|客户|喜欢|希望|习惯|明确)")


def patterns(definition: str, value: str) -> list[str]:
    parts = [p.strip() for p in SPLIT.split(definition)] + [value]
    out = []
    for p in parts:
        p = DROP.sub("", p).strip()
        if 2 <= len(p) <= 12 and p not in out:
            out.append(re.escape(p))
    return out


def main(path: str | None = None) -> None:
    taxonomy = Taxonomy.load(path)
    rules = {t.id: patterns(t.definition, t.value) for t in taxonomy.tags}
    print(f"# Keyword rules derived from taxonomy {taxonomy.version} definitions by scripts/derive_rules.py.")
    print("# Each tag fires when any of its regular expressions matches the customer turn. Edit freely.")
    print(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False, width=200))


if __name__ == "__main__":
    main(*sys.argv[1:])
