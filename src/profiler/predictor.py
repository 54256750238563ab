"""``Predictor``: load any saved model directory (encoder, tfidf or rules) and score customer
turns. Every consumer (training-time test evaluation, ``profiler-eval``, ``profiler-predict``)
goes through it, so thresholds and exclusive decoding are applied the same way everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datasets import Dataset

from profiler.decision import DecisionRule
from profiler.inputs import ContextConfig
from profiler.modeling import ModelDirError, check_taxonomy
from profiler.taxonomy import Taxonomy


class Predictor:
    def __init__(self, kind: str, model, taxonomy: Taxonomy, rule: DecisionRule, context: ContextConfig,
                 tokenizer=None, batch_size: int = 64):
        self.kind, self.model, self.taxonomy, self.rule = kind, model, taxonomy, rule
        self.context, self.tokenizer, self.batch_size = context, tokenizer, batch_size

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, expected: Taxonomy | None = None,
                        batch_size: int = 64) -> Predictor:
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise ModelDirError(f"{model_dir}: config.json is missing; is this a profiler model directory?")
        meta = json.loads((model_dir / "config.json").read_text()).get("profiler") or {}
        kind = meta.get("kind", "encoder")
        taxonomy = Taxonomy.from_tsv(model_dir / "taxonomy.tsv")
        check_taxonomy(model_dir, meta, taxonomy, expected)
        context = ContextConfig(**meta["context"])
        rule = DecisionRule.load(model_dir, taxonomy)
        if kind == "encoder":
            from profiler.modeling import TurnTagger

            model, tokenizer, _ = TurnTagger.load(model_dir, expected=taxonomy)
            return cls(kind, model, taxonomy, rule, context, tokenizer, batch_size)
        if kind == "tfidf":
            from profiler.baselines.tfidf import TfidfModel

            return cls(kind, TfidfModel.load(model_dir, taxonomy), taxonomy, rule, context)
        if kind == "rules":
            from profiler.baselines.rules import RulesModel

            return cls(kind, RulesModel.load(model_dir, taxonomy), taxonomy, rule, context)
        raise ModelDirError(f"{model_dir}: unknown model kind {kind!r}")

    def context_strings(self, turns: Dataset) -> list[str]:
        k = self.context.max_turns
        return [" ".join(self.context.marker(s) + t for s, t in list(zip(sp, tx))[-k:]) if k else ""
                for sp, tx in zip(turns["context_speakers"], turns["context_texts"])]

    def predict_proba(self, turns: Dataset) -> np.ndarray:
        """[turns, tags] probabilities for a turn view (see ``profiler.data.turns.turn_view``)."""
        if self.kind == "encoder":
            from profiler.scoring import score_encoded
            from profiler.training.data import encode

            encoded = encode(turns, self.tokenizer, self.context, None)
            return score_encoded(self.model, self.tokenizer, encoded, batch_size=self.batch_size)
        if self.kind == "tfidf":
            return self.model.predict_proba(list(turns["text"]), self.context_strings(turns))
        return self.model.predict_proba(list(turns["text"]))

    def predict(self, turns: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, decided tag matrix) after thresholds and exclusive decoding."""
        probs = self.predict_proba(turns)
        return probs, self.rule.decide(probs)
