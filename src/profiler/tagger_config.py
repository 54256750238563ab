"""The tagger's own Hugging Face config: ``model_type="profiler-tagger"``.

config.json of a saved tagger is a ``ProfilerTaggerConfig``: the HF task fields at the top level
(``architectures``, ``problem_type``, ``id2label``/``label2id``), the encoder's own config nested
under ``encoder`` (a BertConfig, XLMRobertaConfig, ... with its own ``model_type``), and the
``profiler`` block every profiler model kind writes (format version, taxonomy, pooling, context,
decision file, provenance). Registered with the Auto classes by ``import profiler``.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

MODEL_TYPE = "profiler-tagger"
# 1: config.json was the encoder's config with a profiler block (HF Auto classes loaded a random
#    BertForSequenceClassification from it); 2: ProfilerTaggerConfig. Weights are encoder.*/head.* in both.
FORMAT_VERSION = 2
DECISION_FILE = "decision.json"


class ProfilerTaggerConfig(PretrainedConfig):
    """Encoder config + pooling + context layout; ``profiler`` holds the keys below.

    profiler keys: format_version, kind ("encoder"), taxonomy_version, taxonomy_hash, pooling
    (mean | cls | target_mean), dropout, context (ContextConfig fields: how preceding turns are
    laid out before the target turn), decision (the decision layer's file, beside config.json),
    special_token_ids (tokens that belong to no turn: what "the whole input" pools over when a
    caller gives no target_mask), base, and the training record.
    """

    model_type = MODEL_TYPE
    sub_configs_defaults = {"encoder": SubConfigSpec(config_class=AutoConfig, model_type="bert")}

    encoder: dict | PretrainedConfig | None = None
    profiler: dict | None = None

    # read-only views of the profiler block, so code and users need not know its layout
    @property
    def pooling(self) -> str:
        return (self.profiler or {}).get("pooling", "mean")

    @property
    def context(self) -> dict[str, Any]:
        return dict((self.profiler or {}).get("context") or {})

    @property
    def decision_file(self) -> str:
        return (self.profiler or {}).get("decision", DECISION_FILE)

    @property
    def special_token_ids(self) -> list[int]:
        return list((self.profiler or {}).get("special_token_ids") or [])
