"""What every model kind writes: the same directory format as the encoder (config.json with a
``profiler`` block, taxonomy.tsv, decision.json, metrics.json), so reports can set them side by side."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from profiler.inputs import ContextConfig
from profiler.taxonomy import Taxonomy


def write_model_dir(out: Path, kind: str, taxonomy: Taxonomy, context: ContextConfig, extra: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    config = {"problem_type": "multi_label_classification",
              "id2label": {str(i): t for i, t in enumerate(taxonomy.ids)},
              "label2id": {t: i for i, t in enumerate(taxonomy.ids)},
              "profiler": {"kind": kind, "format_version": 1, "taxonomy_version": taxonomy.version,
                           "taxonomy_hash": taxonomy.hash, "context": asdict(context), **extra}}
    (out / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2))
    taxonomy.save(out / "taxonomy.tsv")
    return out


def record_training_data(model_dir: Path, data: dict) -> None:
    """Note which files a baseline was fitted on (model cards read it), as the encoder's config does."""
    path = model_dir / "config.json"
    config = json.loads(path.read_text())
    config["profiler"]["data"] = data
    path.write_text(json.dumps(config, ensure_ascii=False, indent=2))
