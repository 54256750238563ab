"""Warm start: a child tagger for a new taxonomy, built from a parent model directory.

The child keeps the parent's encoder, tokenizer and input settings (pooling, context layout), and
its head is assembled row by row through the migration mapping:

- kept or renamed tag: the parent's row (weights and bias) is copied, so its logits are exactly
  the parent's before any training;
- merged tag (several parent tags -> one): the mean of the source rows' weights, and the mean of
  their biases plus log(k). For rare tags sigmoid(z) ~ e^z, so adding log(k) makes the merged tag's
  prior about the sum of its k sources' priors (the merged tag holds when any source held), while
  the mean weight keeps the direction the sources share;
- new tag: a fresh row (the seeded default init), its bias set later from the train prior.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path
from typing import Any

import torch

from profiler.migration import Migration, sources_of
from profiler.modeling import TurnTagger
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def warm_start(parent_dir: str | Path, taxonomy: Taxonomy, migration: Migration,
               seed: int = 0) -> tuple[TurnTagger, Any, dict, torch.Tensor]:
    """(child model, tokenizer, provenance record, bool mask of the new head rows)."""
    parent_dir = Path(parent_dir)
    parent, tokenizer, parent_tax = TurnTagger.load(parent_dir)
    if parent_tax.hash == taxonomy.hash:
        migration = Migration()  # same label set: continued training, every row kept
    mapping = migration.resolve(parent_tax, taxonomy)
    sources = sources_of(mapping)
    # new rows get the same init a fresh run would (build seeds the head)
    child = TurnTagger.build(parent.encoder, taxonomy, parent.settings, tokenizer, seed)
    is_new = torch.ones(len(taxonomy), dtype=torch.bool)
    w_old, b_old = parent.head.weight.detach(), parent.head.bias.detach()
    with torch.no_grad():
        for j, tag_id in enumerate(taxonomy.ids):
            rows = [parent_tax.index[o] for o in sources.get(tag_id, [])]
            if not rows:
                continue
            child.head.weight[j] = w_old[rows].mean(dim=0)
            child.head.bias[j] = b_old[rows].mean() + math.log(len(rows))
            is_new[j] = False
    child.train()
    record = {"dir": str(parent_dir.resolve()), "weights_sha256": file_sha256(parent_dir / "model.safetensors"),
              "taxonomy_version": parent_tax.version, "taxonomy_hash": parent_tax.hash,
              "migration": migration.origin, "mapping": mapping}
    log.info("warm start from %s (%s -> %s): %d head rows kept, %d merged, %d new", parent_dir, parent_tax.version,
             taxonomy.version, sum(len(v) == 1 for v in sources.values()), sum(len(v) > 1 for v in sources.values()),
             int(is_new.sum()))
    return child, tokenizer, record, is_new
