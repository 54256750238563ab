"""The keyword/regex baseline: a tag fires when one of its patterns matches the customer turn.
Patterns live in a YAML file per taxonomy (``configs/rules/v1.yaml``, derived from the tag
definitions by ``scripts/derive_rules.py``)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from profiler.baselines.common import write_model_dir
from profiler.inputs import ContextConfig
from profiler.taxonomy import Taxonomy

RULES_FILE = "rules.yaml"


def load_patterns(path: str | Path | None, taxonomy: Taxonomy) -> dict[str, list[str]]:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("profiler.configs").joinpath("rules", f"{taxonomy.version}.yaml").read_text("utf-8")
    patterns = yaml.safe_load(text) or {}
    unknown = [t for t in patterns if t not in taxonomy]
    if unknown:
        raise ValueError(f"rules file names unknown tags: {unknown}")
    for tag_id, pats in patterns.items():
        for p in pats:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"rules for {tag_id}: bad regular expression {p!r}: {e}") from e
    return patterns


class RulesModel:
    def __init__(self, patterns: dict[str, list[str]], taxonomy: Taxonomy):
        self.taxonomy, self.patterns = taxonomy, patterns
        self.compiled = [re.compile("|".join(f"(?:{p})" for p in patterns[t])) if patterns.get(t) else None
                         for t in taxonomy.ids]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(self.taxonomy)), dtype=np.float32)
        for j, rx in enumerate(self.compiled):
            if rx is not None:
                out[:, j] = [1.0 if rx.search(t) else 0.0 for t in texts]
        return out

    def save(self, out: Path, context: ContextConfig) -> Path:
        write_model_dir(out, "rules", self.taxonomy, context, {"rules": RULES_FILE})
        (out / RULES_FILE).write_text(yaml.safe_dump(self.patterns, allow_unicode=True, sort_keys=False),
                                      encoding="utf-8")
        return out

    @classmethod
    def load(cls, model_dir: Path, taxonomy: Taxonomy) -> RulesModel:
        return cls(load_patterns(model_dir / RULES_FILE, taxonomy), taxonomy)
