"""Model cards: ``model_cards/<name>.md`` rendered from a dataclass and a template.

Facts come from the files that hold them (the model's config.json and decision.json, the training
corpus's data card, an evaluation's metrics.json, an export bundle's gate results); a fact that is
not available renders as "[More Information Needed]" instead of being guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jinja2

MISSING = "[More Information Needed]"
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("profiler.report", "templates"), keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined)


@dataclass
class ModelCard:
    name: str
    kind: str
    taxonomy_version: str
    taxonomy_hash: str
    n_tags: int
    base: str | None = None
    context: dict | None = None
    training: dict | None = None          # steps, loss, epochs, learning rates
    train_data: str | None = None
    data_card: dict | None = None         # profiler-synth's data_card.json when trained on the synthetic corpus
    definition_copies: int = 0            # copies of the taxonomy's tag definitions trained on as extra turns
    voices: dict | None = None            # the data card's train_voices summary when those were trained on
    decision: dict | None = None          # tuned thresholds summary
    evaluation: dict | None = None        # an evaluation's metrics.json
    export: dict | None = None            # bundle.json of an export (parity and int8 gates)
    # no creation date: a re-run that trains the same model must render the same card, byte for byte

    @property
    def zero_f1_tags(self) -> list[str]:
        """Tags with positives in the evaluation that the model never got right."""
        rows = (self.evaluation or {}).get("per_tag") or []
        return [r["tag"] for r in rows if r.get("support") and not r.get("f1")]


def _read_json(path: Path | None) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path is not None and path.is_file() else None


def card_from_files(model_dir: Path, evaluation: Path | None = None, bundle: Path | None = None) -> ModelCard:
    config = _read_json(model_dir / "config.json") or {}
    meta = config.get("profiler") or {}
    decision = _read_json(model_dir / "decision.json")
    data = meta.get("data") or {}
    train_files = data.get("train") or []
    train_files = [train_files] if isinstance(train_files, str) else list(train_files)
    data_card = _read_json(Path(train_files[0]).parent / "data_card.json") if train_files else None
    voices = ((data_card or {}).get("voices") or {}).get("train_voices") \
        if any(Path(f).name == "train_voices.jsonl" for f in train_files) else None
    args = meta.get("train_args") or {}
    training = {"steps": meta.get("trained_steps"), "best_step": meta.get("best_step"),
                "loss": (meta.get("loss") or {}).get("name"), "epochs": args.get("epochs"),
                "batch_size": args.get("batch_size"), "num_layers": meta.get("num_layers") or "all",
                "max_steps": args.get("max_steps"),
                "freeze_embeddings": (args.get("optim") or {}).get("freeze_embeddings"),
                "freeze_layers": (args.get("optim") or {}).get("freeze_layers") or 0} if args else None
    return ModelCard(
        name=model_dir.name, kind=meta.get("kind", "encoder"), taxonomy_version=meta.get("taxonomy_version", MISSING),
        taxonomy_hash=meta.get("taxonomy_hash", MISSING), n_tags=len(config.get("id2label") or {}) or 0,
        base=meta.get("base") or None, context=meta.get("context"), training=training,
        train_data=", ".join(train_files) or None, data_card=data_card, voices=voices,
        definition_copies=data.get("definition_copies") or 0,
        decision={"tuned": sum(decision["tuned"]), "global_threshold": decision["global_threshold"],
                  "min_support": decision["min_support"], "calibrated": bool(decision.get("calibration"))}
        if decision else None,
        evaluation=_read_json(evaluation), export=_read_json(bundle / "bundle.json") if bundle else None)


def render_card(card: ModelCard) -> str:
    def v(x) -> str:
        return MISSING if x is None or x == "" else str(x)

    return _ENV.get_template("model_card.md.j2").render(c=card, v=v, MISSING=MISSING)


def write_card(card: ModelCard, card_dir: Path) -> Path:
    card_dir.mkdir(parents=True, exist_ok=True)
    path = card_dir / f"{card.name}.md"
    path.write_text(render_card(card), encoding="utf-8")
    return path
