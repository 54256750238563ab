"""profiler-taxonomy: compare taxonomy versions and migrate labelled data between them.

  profiler-taxonomy diff OLD NEW [--migration M] [--json]
  profiler-taxonomy migrate INPUT... --from OLD --to NEW --migration M --output OUT

OLD/NEW are TSV paths or bundled names (v1, v2); M is a YAML path or a bundled name (v1_to_v2).
A plain argparse tool, not Hydra: it is subcommands over positional files, with no config groups.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

from profiler.cli.common import EXIT_OK, EXIT_REJECTED, run_subcommand
from profiler.data.lines import expand_paths
from profiler.migration import Migration, MigrationError, diff, diff_markdown, migrate_files
from profiler.taxonomy import Taxonomy, TaxonomyError

log = logging.getLogger(__name__)


def load_taxonomy(ref: str) -> Taxonomy:
    """A TSV path or the name of a bundled version."""
    if Path(ref).is_file():
        return Taxonomy.from_tsv(ref)
    try:
        return Taxonomy.bundled(ref)
    except FileNotFoundError:
        raise TaxonomyError(f"{ref}: neither a taxonomy TSV file nor a bundled version (v1, v2)") from None


def run_diff(args: argparse.Namespace) -> int:
    old, new = load_taxonomy(args.old), load_taxonomy(args.new)
    changes = diff(old, new, Migration.load(args.migration) if args.migration else None)
    if args.json:
        print(json.dumps([asdict(c) for c in changes], ensure_ascii=False, indent=1))
    else:
        print(diff_markdown(changes, old, new))
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    old, new = load_taxonomy(args.source), load_taxonomy(args.target)
    output = Path(args.output)
    report = migrate_files(expand_paths(args.inputs), output, old, new, Migration.load(args.migration))
    errors = output.with_name(output.stem + ".errors.jsonl")
    report.write_jsonl(errors)
    for p in report.problems[:20]:
        log.error("%s", p)
    log.info("%d dialogues read, %d migrated %s -> %s into %s, %d rejected (-> %s)", report.lines, report.kept,
             old.version, new.version, output, report.rejected, errors)
    return EXIT_REJECTED if report.rejected else EXIT_OK


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="profiler-taxonomy", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("diff", help="added / dropped / renamed / merged tags and changed exclusivity")
    d.add_argument("old")
    d.add_argument("new")
    d.add_argument("--migration", help="mapping file; without it renames are inferred from equal names")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=run_diff)
    m = sub.add_parser("migrate", help="rewrite dialogue files labelled under OLD into NEW")
    m.add_argument("inputs", nargs="+", help="JSONL/Parquet files, directories or globs")
    m.add_argument("--from", dest="source", required=True)
    m.add_argument("--to", dest="target", required=True)
    m.add_argument("--migration", required=True, help="mapping file (old id -> new id or null)")
    m.add_argument("--output", required=True, help="JSONL to write; rejected dialogues go beside it")
    m.set_defaults(func=run_migrate)
    return ap


def main(argv: list[str] | None = None) -> None:
    run_subcommand(parser(), argv, (MigrationError, TaxonomyError, FileNotFoundError))


if __name__ == "__main__":
    main()
