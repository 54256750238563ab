"""Registration with the Hugging Face Auto classes (run by ``import profiler``), so a saved tagger
opens with plain transformers calls and never with ``trust_remote_code``:

    AutoConfig.from_pretrained(dir)                          -> ProfilerTaggerConfig
    AutoModelForSequenceClassification.from_pretrained(dir)  -> TurnTagger (logits, as the Predictor)
    AutoModel.from_pretrained(dir)                           -> the fine-tuned encoder itself (BertModel, ...)
    pipeline("text-classification", model=dir, function_to_apply="sigmoid", top_k=None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from profiler.modeling import TurnTagger
from profiler.tagger_config import MODEL_TYPE, ProfilerTaggerConfig


class TaggerEncoder(PreTrainedModel):
    """What ``AutoModel`` maps a profiler-tagger config to. It never exists as an instance:
    ``from_pretrained`` returns the encoder's own class (e.g. BertModel) holding the fine-tuned
    weights stored under ``encoder.``, so it can be used or re-saved as a plain base checkpoint."""

    config_class = ProfilerTaggerConfig
    base_model_prefix = "encoder"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *model_args: Any,
                        config: ProfilerTaggerConfig | None = None, **kwargs: Any) -> PreTrainedModel:
        path = Path(pretrained_model_name_or_path)
        if not isinstance(config, ProfilerTaggerConfig):
            config = ProfilerTaggerConfig.from_pretrained(path, local_files_only=True)
        # only the encoder's tensors, un-prefixed: the head is not part of it (and would be reported
        # as UNEXPECTED)
        state = {k.removeprefix("encoder."): v for k, v in load_file(str(path / "model.safetensors")).items()
                 if k.startswith("encoder.")}
        encoder_class = MODEL_MAPPING[type(config.encoder)]
        for key in ("trust_remote_code", "local_files_only", "use_safetensors", "revision", "cache_dir"):
            kwargs.pop(key, None)  # a local safetensors file is all there is to read
        if "add_pooling_layer" in encoder_class.__init__.__code__.co_varnames:
            kwargs.setdefault("add_pooling_layer", False)  # the tagger has no pooler (it pools itself)
        return encoder_class.from_pretrained(None, *model_args, config=config.encoder, state_dict=state, **kwargs)


def register_auto_classes() -> None:
    AutoConfig.register(MODEL_TYPE, ProfilerTaggerConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(ProfilerTaggerConfig, TurnTagger, exist_ok=True)
    AutoModel.register(ProfilerTaggerConfig, TaggerEncoder, exist_ok=True)
