"""The TF-IDF baseline: character n-grams of the turn and, separately, of its context (the same
context turns the encoder sees), one-vs-rest logistic regression.

Saved without pickle: vocabularies as JSON, idf vectors and the linear weights as safetensors; the
vectorisers are rebuilt with their fixed vocabularies and the decision function is a matrix product.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from profiler.baselines.common import write_model_dir
from profiler.inputs import ContextConfig
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)
PARTS = ("target", "context")


@dataclass(frozen=True)
class TfidfSpec:
    ngram_max: int = 3
    min_df: int = 2
    max_features: int = 30000     # per part (target, context)
    C: float = 4.0
    context_weight: float = 0.5   # context n-grams count for less than the turn's own


class TfidfModel:
    def __init__(self, spec: TfidfSpec, taxonomy: Taxonomy, vectorizers: dict[str, TfidfVectorizer],
                 coef: np.ndarray, intercept: np.ndarray):
        self.spec, self.taxonomy, self.vectorizers = spec, taxonomy, vectorizers
        self.coef, self.intercept = coef, intercept

    @staticmethod
    def _vectorizer(spec: TfidfSpec, vocabulary: dict | None = None) -> TfidfVectorizer:
        return TfidfVectorizer(analyzer="char", ngram_range=(1, spec.ngram_max), min_df=spec.min_df,
                               max_features=spec.max_features, sublinear_tf=True, vocabulary=vocabulary)

    def features(self, targets: list[str], contexts: list[str]) -> sp.csr_matrix:
        return sp.hstack([self.vectorizers["target"].transform(targets),
                          self.spec.context_weight * self.vectorizers["context"].transform(contexts)]).tocsr()

    @classmethod
    def fit(cls, targets: list[str], contexts: list[str], y: np.ndarray, spec: TfidfSpec,
            taxonomy: Taxonomy, mask: np.ndarray | None = None) -> TfidfModel:
        """One logistic regression per tag (one-vs-rest), each on the turns annotated for that tag."""
        vecs = {"target": cls._vectorizer(spec).fit(targets), "context": cls._vectorizer(spec).fit(contexts)}
        model = cls(spec, taxonomy, vecs, np.zeros(0), np.zeros(0))
        x = model.features(targets, contexts)
        mask = np.ones(y.shape, dtype=bool) if mask is None else mask
        model.coef = np.full((y.shape[1], x.shape[1]), 0.0, dtype=np.float32)
        model.intercept = np.full(y.shape[1], -20.0, dtype=np.float32)  # tags never seen: never predicted
        seen = [j for j in range(y.shape[1]) if 0 < y[mask[:, j], j].sum() < mask[:, j].sum()]
        for j in seen:
            rows = mask[:, j]
            clf = LogisticRegression(C=spec.C, class_weight="balanced", solver="liblinear", max_iter=1000)
            clf.fit(x[rows], y[rows, j])
            model.coef[j], model.intercept[j] = clf.coef_.ravel(), clf.intercept_[0]
        log.info("tfidf: %d features, %d of %d tags seen in train", x.shape[1], len(seen), y.shape[1])
        return model

    def predict_proba(self, targets: list[str], contexts: list[str]) -> np.ndarray:
        logits = self.features(targets, contexts) @ self.coef.T + self.intercept
        return (1.0 / (1.0 + np.exp(-np.asarray(logits)))).astype(np.float32)

    def save(self, out: Path, context: ContextConfig) -> Path:
        write_model_dir(out, "tfidf", self.taxonomy, context, {"tfidf": asdict(self.spec)})
        vocab = {p: {k: int(v) for k, v in self.vectorizers[p].vocabulary_.items()} for p in PARTS}
        (out / "tfidf_vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        save_file({"coef": self.coef, "intercept": self.intercept,
                   **{f"idf_{p}": self.vectorizers[p].idf_.astype(np.float64) for p in PARTS}},
                  str(out / "tfidf.safetensors"))
        return out

    @classmethod
    def load(cls, model_dir: Path, taxonomy: Taxonomy) -> TfidfModel:
        meta = json.loads((model_dir / "config.json").read_text())["profiler"]
        spec = TfidfSpec(**meta["tfidf"])
        vocab = json.loads((model_dir / "tfidf_vocab.json").read_text())
        tensors = load_file(str(model_dir / "tfidf.safetensors"))
        vecs = {}
        for p in PARTS:
            vec = cls._vectorizer(spec, vocabulary=vocab[p])
            vec.idf_ = tensors[f"idf_{p}"]
            vecs[p] = vec
        return cls(spec, taxonomy, vecs, tensors["coef"], tensors["intercept"])
