"""``Predictor``: load any saved model directory (encoder, tfidf or rules) and score customer
turns. Every consumer (training-time test evaluation, ``profiler-eval``, ``profiler-predict``)
goes through it, so thresholds and exclusive decoding are applied the same way everywhere.

Turns are given as columns: ``text``, ``context_speakers``, ``context_texts`` (lists of equal
length), as in a turn-view ``Dataset`` (``profiler.data.turns``) or a plain dict of lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from profiler.decision import DecisionRule
from profiler.inputs import ContextConfig, TurnInputBuilder, context_strings
from profiler.modeling import ModelDirError, check_taxonomy
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)
TURN_COLUMNS = ("text", "context_speakers", "context_texts")
# allowed values of InferenceSettings (the CLIs check them before anything is loaded)
BACKENDS = ("torch", "onnx")
ONNX_VARIANTS = ("fp32", "int8")


@dataclass(frozen=True)
class InferenceSettings:
    backend: str = "torch"        # torch: a model directory; onnx: an export bundle (profiler-export)
    onnx_variant: str = "fp32"    # fp32 | int8: which graph of the bundle to run
    device: str = "auto"          # auto: cuda when available, else cpu
    precision: str = "fp32"       # fp16/bf16 autocast on GPU (on CPU without bf16 units it is slower)
    max_tokens: int | None = None # token budget per batch (rows × longest row); None: per device, below
    max_batch_size: int = 256
    max_length: int | None = None # tokens per turn with its context; None: the model's own (its training length)

    def resolve_max_tokens(self, device: torch.device) -> int:
        # CPU: small batches stay in cache; on this 2-core box 1-2k tokens ran 25% faster than 8k, 85%
        # faster than 32k. GPUs want big batches to fill the device.
        return self.max_tokens or (16384 if device.type == "cuda" else 2048)

    def resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


class Predictor:
    def __init__(self, kind: str, model, taxonomy: Taxonomy, rule: DecisionRule, context: ContextConfig,
                 tokenizer=None, settings: InferenceSettings | None = None):
        self.kind, self.model, self.taxonomy, self.rule = kind, model, taxonomy, rule
        self.settings = settings or InferenceSettings()
        if self.settings.max_length:  # complaints run long: read more of a turn than training did
            context = replace(context, max_length=self.settings.max_length)
        self.context, self.tokenizer = context, tokenizer
        self.device = self.settings.resolve_device()
        if kind == "encoder":
            from profiler.scoring import torch_forward

            self.model.to(self.device).eval()
            self.forward = torch_forward(self.model, self.settings.precision)
        if kind == "onnx":
            self.device = torch.device("cpu")  # ORT takes numpy arrays; its execution provider picks the device
            self.forward = self.model.forward
        if tokenizer is not None:
            self.builder = TurnInputBuilder(tokenizer, context)  # keeps its [UNK]-rescue memo across calls

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, expected: Taxonomy | None = None,
                        settings: InferenceSettings | None = None) -> Predictor:
        model_dir = Path(model_dir)
        settings = settings or InferenceSettings()
        if settings.backend == "onnx":
            from profiler.export.runtime import load_bundle

            return cls(*load_bundle(model_dir, settings.onnx_variant, expected), settings=settings)
        if settings.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {settings.backend!r}")
        if (model_dir / "bundle.json").is_file():
            raise ModelDirError(f"{model_dir} is an ONNX export bundle: use backend=onnx "
                                f"(inference.backend=onnx on the command line)")
        if not (model_dir / "config.json").is_file():
            raise ModelDirError(f"{model_dir}: config.json is missing; is this a profiler model directory?")
        meta = json.loads((model_dir / "config.json").read_text()).get("profiler") or {}
        kind = meta.get("kind", "encoder")
        taxonomy = Taxonomy.of_model(model_dir)
        check_taxonomy(model_dir, meta, taxonomy, expected)
        context = ContextConfig(**meta["context"])
        rule = DecisionRule.load(model_dir, taxonomy)
        if kind == "encoder":
            from profiler.modeling import TurnTagger

            model, tokenizer, _ = TurnTagger.load(model_dir, expected=taxonomy)
            return cls(kind, model, taxonomy, rule, context, tokenizer, settings)
        if kind == "tfidf":
            from profiler.baselines.tfidf import TfidfModel

            return cls(kind, TfidfModel.load(model_dir, taxonomy), taxonomy, rule, context, settings=settings)
        if kind == "rules":
            from profiler.baselines.rules import RulesModel

            return cls(kind, RulesModel.load(model_dir, taxonomy), taxonomy, rule, context, settings=settings)
        raise ModelDirError(f"{model_dir}: unknown model kind {kind!r}")

    def predict_proba(self, turns: Mapping[str, Sequence], progress: str | None = None) -> np.ndarray:
        """[turns, tags] probabilities."""
        return self.score(turns, progress)[0]

    def score(self, turns: Mapping[str, Sequence], progress: str | None = None) -> tuple[np.ndarray, list[bool]]:
        """([turns, tags] probabilities, whether each turn was too long and cut to its first tokens).
        ``progress``: label of a progress bar with total and ETA (encoders only: baselines take seconds)."""
        cols = {k: list(turns[k]) for k in TURN_COLUMNS}
        if self.kind in ("encoder", "onnx"):
            from profiler.scoring import score_features

            s, features = self.settings, self.builder(cols)
            probs = score_features(self.forward, self.tokenizer, features, len(self.taxonomy),
                                   s.resolve_max_tokens(self.device), s.max_batch_size, self.device, progress)
            return probs, features["truncated"]
        untruncated = [False] * len(cols["text"])  # the baselines read every character
        if self.kind == "tfidf":
            return self.model.predict_proba(cols["text"], context_strings(self.context, cols["context_speakers"],
                                                                          cols["context_texts"])), untruncated
        return self.model.predict_proba(cols["text"]), untruncated

    def predict(self, turns: Mapping[str, Sequence], progress: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(calibrated scores, decided tag matrix). Thresholds and exclusive decoding read the raw
        scores (``predict_proba``); the scores returned are the calibrated ones users see."""
        probs = self.predict_proba(turns, progress)
        return self.rule.calibrate(probs), self.rule.decide(probs)
