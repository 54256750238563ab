"""The Hydra tools' shared front door: ``--help`` written from the commented configs, and one line
(not a traceback) for a missing required value or a value outside its allowed set."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import hydra
import yaml
from omegaconf import DictConfig, OmegaConf

from profiler.cli.common import CONFIG_PATH, EXIT_USAGE, VERSION_BASE


def _choices() -> dict[str, tuple[str, ...]]:
    # imported late: building this table must not cost `--help` a torch import it does not need
    from profiler.export.run import FORMATS
    from profiler.modeling import POOLINGS
    from profiler.predictor import BACKENDS, ONNX_VARIANTS
    from profiler.scoring import PRECISIONS

    return {"inference.backend": BACKENDS, "inference.onnx_variant": ONNX_VARIANTS,
            "inference.precision": tuple(PRECISIONS), "variant": ONNX_VARIANTS, "format": (*FORMATS, "card"),
            "model.pooling": POOLINGS, "model.kind": ("encoder", "tfidf", "rules"),
            "loss.name": ("bce", "bce_pos_weight", "focal", "asl"),
            "trainer.precision": ("auto", "no", "bf16", "fp16")}


class UsageError(ValueError):
    """A setting the user has to fix: reported as one line, exit code 2."""


def _config_dir():
    return files("profiler.configs")


def _text(relative: str) -> str:
    return (_config_dir() / relative).read_text(encoding="utf-8")


def tool_name(config_name: str) -> str:
    return f"profiler-{config_name}"


def _groups(config_name: str) -> list[tuple[str, str | None]]:
    """(group, default option) of the primary config's defaults list, in order; Hydra's own left out."""
    out = []
    for entry in yaml.safe_load(_text(f"{config_name}.yaml")).get("defaults", []):
        if isinstance(entry, dict):
            (key, option), = entry.items()
            group = key.split("@")[0].removeprefix("override ").strip("/")
            if group != "hydra":
                out.append((group, option))
    return out


def _options(group: str) -> list[str]:
    # taxonomy/ also holds migration maps (v1_to_v2.yaml): data a taxonomy points at, not a choice
    return sorted(Path(p.name).stem for p in (_config_dir() / group).iterdir()
                  if p.name.endswith(".yaml") and "_to_" not in p.name)


def _settings_text(yaml_text: str) -> str:
    """The config's keys and their comments, without its defaults list (shown as groups instead)."""
    return re.sub(r"^defaults:\n(?:[ \t]+.*\n)*", "", yaml_text, flags=re.M)


def help_text(config_name: str) -> str:
    tool = tool_name(config_name)
    primary = _text(f"{config_name}.yaml")
    header = [line.removeprefix("#").removeprefix(" ").rstrip() for line in primary.splitlines() if line.startswith("#")]
    body = [line for line in _settings_text(primary).splitlines() if not line.startswith("#")]
    parts = ["\n".join(header), "",
             f"Usage: {tool} key=value ... (??? = required). The settings, with their defaults:", "",
             "\n".join(body)]
    for group, option in _groups(config_name):
        options = _options(group)
        if len(options) == 1:  # one choice: its keys are simply more settings of this tool
            keys = [line for line in _text(f"{group}/{options[0]}.yaml").splitlines()
                    if line.strip() and not line.startswith("#")]
            parts += [f"{group}:  # {group}.KEY=value", *("  " + line for line in keys)]
    choices = [(g, o) for g, o in _groups(config_name) if len(_options(g)) > 1]
    if choices:
        parts += ["", "Config groups (group=option; configs/<group>/<option>.yaml):"]
        parts += [f"  {g}: {', '.join(_options(g))} (default: {o or 'none'})" for g, o in choices]
    parts += ["", "Hydra: --cfg job prints the composed config, --hydra-help Hydra's own flags.",
              "Exit codes: 0 ok, 1 unexpected error, 2 bad or missing setting, 3 some input rows rejected "
              "(docs/cli.md)."]
    return "\n".join(parts).rstrip() + "\n"


def _comment(config_name: str, key: str) -> str | None:
    """The comment beside ``key`` in the primary config or its groups: what the value should be."""
    leaf = key.rsplit(".", 1)[-1]
    texts = [_text(f"{config_name}.yaml")] + [_text(f"{g}/{o}.yaml") for g, o in _groups(config_name) if o]
    for text in texts:
        m = re.search(rf"^\s*{re.escape(leaf)}:[^#\n]*#\s*(.+)$", text, re.M)
        if m:
            return m.group(1).strip()
    return None


def _missing(cfg: DictConfig, prefix: str = "") -> list[str]:
    # not OmegaConf.missing_keys: that resolves interpolations, and ${hydra:...} only resolves in a run
    out = []
    for key in cfg.keys():
        if OmegaConf.is_missing(cfg, key):
            out.append(f"{prefix}{key}")
        elif OmegaConf.is_dict(cfg._get_node(key)) and not OmegaConf.is_interpolation(cfg, key):
            out += _missing(cfg[key], f"{prefix}{key}.")
    return out


def check_config(cfg: DictConfig, config_name: str) -> None:
    """Raise UsageError naming the first missing required key or out-of-range value."""
    for key in _missing(cfg):
        what = _comment(config_name, key)
        hint = f" ({what})" if what else ""
        raise UsageError(f"{key} is required{hint}: add {key}=... (see {tool_name(config_name)} --help)")
    for key, allowed in _choices().items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and value not in allowed:
            raise UsageError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def hydra_app(config_name: str) -> Callable[[Callable[[DictConfig], None]], Callable[[], None]]:
    """``@hydra.main`` for a profiler tool, plus the checks above and a ``--help`` that explains each
    key and lists only the config groups this tool reads."""
    def wrap(body: Callable[[DictConfig], None]) -> Callable[[], None]:
        @functools.wraps(body)
        def checked(cfg: DictConfig) -> None:
            try:
                check_config(cfg, config_name)
            except UsageError as e:
                print(f"{tool_name(config_name)}: {e}", file=sys.stderr)
                sys.exit(EXIT_USAGE)
            body(cfg)

        hydra_main = hydra.main(config_path=CONFIG_PATH, config_name=config_name, version_base=VERSION_BASE)(checked)

        @functools.wraps(body)
        def main() -> None:
            if any(a in ("--help", "-h") for a in sys.argv[1:]):
                sys.stdout.write(help_text(config_name))
                sys.exit(0)
            hydra_main()
        return main
    return wrap
