"""Model directories written before profiler 0.2 (format 1) and the converter to format 2.

Format 1's config.json was the encoder's own config (model_type "bert", ...) plus problem_type,
id2label and the ``profiler`` block, so ``AutoModelForSequenceClassification`` opened it as a
BertForSequenceClassification whose tensors were all missing or unexpected: random scores. Format 2
is a ``ProfilerTaggerConfig`` with the encoder config nested. The weights (encoder.*/head.*) did not
change, so converting rewrites config.json only (the old one is kept as config.v1.json).

Profiler's own loaders (Predictor, export, warm start) convert in memory with a warning; the HF Auto
classes need the rewritten file:

    python -m profiler.model_upgrade models/e5-small-synthetic [more dirs ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from profiler.tagger_config import DECISION_FILE, FORMAT_VERSION, MODEL_TYPE, ProfilerTaggerConfig

log = logging.getLogger(__name__)

_TASK_KEYS = ("problem_type", "id2label", "label2id")
_DROPPED = ("profiler", "transformers_version", *_TASK_KEYS)  # architectures were the encoder's


def is_current(raw: dict) -> bool:
    return raw.get("model_type") == MODEL_TYPE


def convert_config(raw: dict, model_dir: Path) -> ProfilerTaggerConfig:
    """A format-1 config.json (as a dict) -> the format-2 config."""
    from profiler.encoders.sources import load_tokenizer
    from profiler.modeling import ModelDirError, special_token_ids

    meta = dict(raw.get("profiler") or {})
    if meta.get("kind", "encoder") != "encoder":
        raise ModelDirError(f"{model_dir}: a {meta['kind']} model has no encoder config to convert")
    encoder = {k: v for k, v in raw.items() if k not in _DROPPED}
    meta.update(format_version=FORMAT_VERSION, kind="encoder", decision=meta.get("decision", DECISION_FILE),
                special_token_ids=special_token_ids(load_tokenizer(model_dir)))
    return ProfilerTaggerConfig(encoder=encoder, profiler=meta, architectures=["TurnTagger"],
                                problem_type=raw.get("problem_type", "multi_label_classification"),
                                id2label={int(k): v for k, v in raw["id2label"].items()}, label2id=raw["label2id"])


def read_config(model_dir: str | Path) -> ProfilerTaggerConfig:
    """The directory's config, converted in memory (with a warning) when it is format 1."""
    model_dir = Path(model_dir)
    raw = json.loads((model_dir / "config.json").read_text())
    if is_current(raw):
        return ProfilerTaggerConfig.from_pretrained(model_dir, local_files_only=True)
    log.warning("%s was written by profiler < 0.2 (model directory format 1): converted in memory. The Hugging "
                "Face Auto classes cannot open it until it is rewritten: python -m profiler.model_upgrade %s",
                model_dir, model_dir)
    return convert_config(raw, model_dir)


def upgrade_model_dir(model_dir: str | Path) -> bool:
    """Rewrite a format-1 directory's config.json as format 2 (old file kept as config.v1.json).
    False when it already is format 2."""
    model_dir = Path(model_dir)
    raw = json.loads((model_dir / "config.json").read_text())
    if is_current(raw):
        return False
    config = convert_config(raw, model_dir)
    shutil.copy2(model_dir / "config.json", model_dir / "config.v1.json")
    config.save_pretrained(model_dir)
    log.info("%s: config.json rewritten as model directory format %d (old: config.v1.json)", model_dir,
             FORMAT_VERSION)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m profiler.model_upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for d in args.model_dirs:
        if not upgrade_model_dir(d):
            log.info("%s: already format %d, left as it is", d, FORMAT_VERSION)


if __name__ == "__main__":
    main()
