"""profiler-annotate: the annotation round trip with Label Studio.

  profiler-annotate select --input FILE --output selection.jsonl [--model DIR] [--taxonomy v2]
                           [--tags ID,...] [--keywords kw.yaml] [--n 100]
  profiler-annotate export selection.jsonl --out-dir DIR [--taxonomy v2] [--dimensions ID,...]
  profiler-annotate import EXPORT.json --output annotated.jsonl [--taxonomy v2]

A plain argparse tool (subcommands over files), like profiler-taxonomy.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import yaml

from profiler.annotate.labelstudio import import_export, labeling_config, model_version, task_for
from profiler.annotate.select import SelectSpec, select_turns
from profiler.cli.common import EXIT_OK, EXIT_REJECTED, run_subcommand
from profiler.cli.taxonomy import load_taxonomy
from profiler.data.contract import ReadReport, iter_dialogues
from profiler.data.lines import expand_paths
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


def _ids(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip()) if value else ()


def _taxonomy(ref: str | None, model_dir: str | None) -> Taxonomy:
    if ref:
        return load_taxonomy(ref)
    if model_dir:
        return Taxonomy.of_model(model_dir)
    return Taxonomy.bundled()


def run_select(args: argparse.Namespace) -> int:
    from profiler.predictor import Predictor

    taxonomy = _taxonomy(args.taxonomy, args.model)
    keywords = yaml.safe_load(Path(args.keywords).read_text(encoding="utf-8")) if args.keywords else {}
    spec = SelectSpec(tags=_ids(args.tags), n=args.n, keywords={k: tuple(v) for k, v in keywords.items()},
                      max_similarity=args.max_similarity, per_dialogue=args.per_dialogue)
    report = ReadReport()  # an unlabelled pool: labels, if any, are not checked (they may be another version)
    dialogues = list(iter_dialogues(expand_paths(args.input), None, report, check_labels=False))
    predictor = Predictor.from_pretrained(args.model) if args.model else None
    chosen = select_turns(dialogues, taxonomy, spec, predictor)
    version = model_version(args.model, predictor.taxonomy.hash) if predictor is not None else None
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        for c in chosen:
            line = {**c.to_dict(), "model": args.model, "model_version": version}
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    log.info("%d turns -> %s (%d input dialogues rejected)", len(chosen), args.output, report.rejected)
    return 0


def run_export(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    selected = [json.loads(line) for line in Path(args.selection).read_text(encoding="utf-8").splitlines() if line]
    dims = list(_ids(args.dimensions)) or list(dict.fromkeys(
        taxonomy.tag(s["reason"]["tag"]).dimension_id for s in selected if s["reason"]["tag"] in taxonomy))
    unknown = [d for d in dims if d not in taxonomy.dimensions]
    if unknown:
        raise ValueError(f"unknown dimension id(s) for {taxonomy.version}: {', '.join(unknown)}")
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # selections written before model_version existed carry only the model's path
    versions = [s.get("model_version") or (model_version(s["model"]) if s.get("model") else None) for s in selected]
    tasks = [task_for(s, taxonomy, dims, v) for s, v in zip(selected, versions)]
    (out / "tasks.json").write_text(json.dumps(tasks, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "labeling_config.xml").write_text(labeling_config(taxonomy, dims), encoding="utf-8")
    log.info("%d tasks over %d dimensions -> %s/tasks.json, labeling_config.xml", len(tasks), len(dims), out)
    return 0


def run_import(args: argparse.Namespace) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    dialogues, problems = import_export(args.export, taxonomy)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        for d in dialogues:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    report = ReadReport(problems=problems)
    report.write_jsonl(output.with_name(output.stem + ".errors.jsonl"))
    for p in problems[:20]:
        log.warning("%s", p)
    turns = sum("annotation" in t for d in dialogues for t in d["turns"])
    log.info("%d annotated turns in %d dialogues -> %s; %d problem(s)", turns, len(dialogues), output, len(problems))
    return EXIT_REJECTED if problems else EXIT_OK


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="profiler-annotate", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("select", help="pick customer turns worth annotating for given tags")
    s.add_argument("--input", required=True, help="dialogue files (labels not needed)")
    s.add_argument("--output", required=True)
    s.add_argument("--model", help="a model directory: its uncertainty ranks turns (keywords only without)")
    s.add_argument("--taxonomy", help="the taxonomy being annotated (default: the model's)")
    s.add_argument("--tags", help="comma-separated tag or dimension ids (default: all)")
    s.add_argument("--keywords", help="YAML: tag or dimension id -> list of seed keywords")
    s.add_argument("--n", type=int, default=100)
    s.add_argument("--max-similarity", type=float, default=0.6)
    s.add_argument("--per-dialogue", type=int, default=2)
    s.set_defaults(func=run_select)
    e = sub.add_parser("export", help="selection -> Label Studio tasks.json + labeling_config.xml")
    e.add_argument("selection")
    e.add_argument("--out-dir", required=True)
    e.add_argument("--taxonomy", default="v1")
    e.add_argument("--dimensions", help="comma-separated dimension ids (default: those of the selected tags)")
    e.set_defaults(func=run_export)
    i = sub.add_parser("import", help="Label Studio JSON export -> annotated dialogues (validated)")
    i.add_argument("export")
    i.add_argument("--output", required=True)
    i.add_argument("--taxonomy", default="v1")
    i.set_defaults(func=run_import)
    return ap


def main(argv: list[str] | None = None) -> None:
    run_subcommand(parser(), argv, (ValueError, FileNotFoundError))


if __name__ == "__main__":
    main()
