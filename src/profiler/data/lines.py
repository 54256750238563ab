"""Reading dialogue files record by record: JSONL (plain or gzip) and Parquet.

Bytes are split on newline bytes and decoded per line, so a badly encoded line is that line's error, not
the run's; the contract (``profiler.data.contract``) turns a ``LineError`` into a file:line problem.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LineError:
    """A record that could not even be read (encoding, compression), before any JSON parsing."""

    field: str
    reason: str


# Magic bytes: gzip is read transparently; UTF-16 (either byte order) is refused per file, since a
# UTF-16 file decoded line by line would yield one bogus error per line.
GZIP_MAGIC, UTF8_BOM, UTF16_BOMS = b"\x1f\x8b", b"\xef\xbb\xbf", (b"\xff\xfe", b"\xfe\xff")


def _open_lines(path: Path):
    """A binary line iterator over a JSONL file, gunzipped when it is gzip, or a LineError for the file."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        import gzip

        return gzip.open(path, "rb")
    if head.startswith(UTF16_BOMS) or (len(head) == 4 and head[1] == 0 and head[3] == 0):
        return LineError("<encoding>", "UTF-16 text; the contract is UTF-8 JSONL: re-encode the file "
                                       "(iconv -f UTF-16 -t UTF-8)")
    return open(path, "rb")


def raw_records(path: Path) -> Iterator[tuple[int, str | dict | LineError]]:
    """(line number, raw record) pairs; a line that cannot be decoded comes back as its LineError.

    Lines are split on newline bytes only and decoded one at a time: a CR inside a line is JSON
    whitespace, not a record break, and one badly encoded line costs that line alone."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
            for obj in batch.to_pylist():
                row += 1
                yield row, {k: v for k, v in obj.items() if v is not None}
        return
    lines = _open_lines(path)
    if isinstance(lines, LineError):
        yield 1, lines
        return
    with lines:
        lineno = 0
        try:
            for lineno, raw in enumerate(lines, start=1):
                if lineno == 1 and raw.startswith(UTF8_BOM):
                    raw = raw[len(UTF8_BOM):]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield lineno, LineError("<encoding>",
                                            f"not UTF-8 ({e.reason} at byte {e.start}: {raw[e.start:e.start + 4]!r})")
                    continue
                if text.strip():
                    yield lineno, text
        except (EOFError, OSError) as e:  # a truncated or corrupt gzip stream: keep what was read
            yield lineno + 1, LineError("<gzip>", f"unreadable compressed data: {e}")


def expand_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """A file, a directory of *.jsonl / *.jsonl.gz / *.parquet, a glob, or a list of any of these."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted([*p.glob("*.jsonl"), *p.glob("*.jsonl.gz"), *p.glob("*.parquet")]))
        elif any(ch in str(p) for ch in "*?["):
            out.extend(Path(x) for x in sorted(glob.glob(str(p))))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such dialogue file or directory")
    if not out:
        raise FileNotFoundError(f"no dialogue files matched {[str(x) for x in paths]}")
    return out


def count_records(files: Iterable[Path]) -> int | None:
    """How many records ``raw_records`` will yield over ``files``, when that is cheap to know: a scan
    of newline bytes for JSONL (hundreds of MB/s) and the footer for Parquet. None when a file is
    gzip: counting would cost a full decompression, as much as reading it. For progress totals."""
    total = 0
    for path in files:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
            continue
        with open(path, "rb") as f:
            if f.read(2) == b"\x1f\x8b":
                return None
            f.seek(0)
            total += sum(1 for raw in f if raw.strip() and raw.strip() != UTF8_BOM)
    return total
