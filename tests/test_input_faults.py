"""Input files as they arrive from the field: mixed encodings, BOMs, stray CRs, gzip, empty files.
Each fault costs its own line (or file) and nothing else."""

import gzip
import json
import logging

import pytest

from profiler.data.contract import iter_records
from profiler.data.lines import expand_paths


def dialogue(i: int, text: str = "我平时自己打理钱") -> dict:
    return {"dialogue_id": f"d{i}", "turns": [{"speaker": "agent", "text": "您好"},
                                              {"speaker": "customer", "text": text}]}


def line(i: int, text: str = "我平时自己打理钱") -> bytes:
    return json.dumps(dialogue(i, text), ensure_ascii=False).encode("utf-8") + b"\n"


def read(paths):
    records = list(iter_records(expand_paths(paths), None, check_labels=False))
    kept = [r.dialogue["dialogue_id"] for r in records if r.dialogue]
    problems = [p for r in records for p in r.problems]
    return kept, problems


def test_a_gbk_line_is_that_lines_error_and_every_other_line_is_kept(tmp_path):
    path = tmp_path / "calls.jsonl"
    gbk = json.dumps(dialogue(2, "我想买理财"), ensure_ascii=False).encode("gbk") + b"\n"
    path.write_bytes(line(1) + gbk + line(3))
    kept, problems = read(path)
    assert kept == ["d1", "d3"]
    assert [(p.file, p.line, p.field) for p in problems] == [(str(path), 2, "<encoding>")]
    assert "not UTF-8" in problems[0].reason and str(problems[0]).startswith(f"{path}:2: <encoding>: not UTF-8")


def test_a_utf8_bom_does_not_cost_the_first_dialogue(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + line(1) + line(2))
    assert read(path) == (["d1", "d2"], [])


def test_a_cr_inside_a_line_is_json_whitespace_not_a_record_break(tmp_path):
    path = tmp_path / "cr.jsonl"
    path.write_bytes(b'{"dialogue_id": "d1",\r "turns": [{"speaker": "customer", "text": "\xe5\xa5\xbd"}]}\r\n'
                     + line(2))
    kept, problems = read(path)
    assert kept == ["d1", "d2"] and problems == []


def test_gzip_is_read_transparently_and_found_in_directories(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(line(1) + line(2)))
    (tmp_path / "b.jsonl").write_bytes(line(3))
    assert read(tmp_path) == (["d1", "d2", "d3"], [])


def test_a_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path):
    data = gzip.compress(b"".join(line(i) for i in range(200)))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) - 40])
    kept, problems = read(path)
    assert kept and kept == [f"d{i}" for i in range(len(kept))]
    assert [p.field for p in problems] == ["<gzip>"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_file_is_one_clear_error_and_later_files_are_still_read(tmp_path, encoding):
    (tmp_path / "a.jsonl").write_bytes(line(1))
    (tmp_path / "b.jsonl").write_bytes((line(2) + line(3)).decode().encode(encoding))
    (tmp_path / "c.jsonl").write_bytes(line(4))
    kept, problems = read(tmp_path)
    assert kept == ["d1", "d4"]
    assert len(problems) == 1 and problems[0].file.endswith("b.jsonl") and "UTF-16" in problems[0].reason


def test_an_empty_file_warns(tmp_path, caplog):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "full.jsonl").write_bytes(line(1))
    with caplog.at_level(logging.WARNING):
        assert read(tmp_path) == (["d1"], [])
    assert any("empty.jsonl: empty file" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("text", ["\u200b\u200d", "\ufeff", " \u2060\u200b ", "\x00\x01"])
def test_text_of_only_invisible_characters_is_rejected(tmp_path, text):
    path = tmp_path / "invisible.jsonl"
    path.write_bytes(line(1) + line(2, text))
    kept, problems = read(path)
    assert kept == ["d1"]
    assert [(p.line, p.field) for p in problems] == [(2, "turns[1].text")] and "visible" in problems[0].reason


def test_text_with_visible_characters_beside_invisible_ones_is_kept(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(line(1, "\u200b好的"))
    assert read(path) == (["d1"], [])


def test_record_count_for_progress_totals_matches_what_is_read(tmp_path):
    import gzip

    import pyarrow as pa
    import pyarrow.parquet as pq

    from profiler.data.lines import count_records, raw_records

    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b'\xef\xbb\xbf{"dialogue_id": "1"}\n\n  \r\n{"dialogue_id": "2"}\r\n{"dialogue_id": "3"}')
    table = tmp_path / "b.parquet"
    pq.write_table(pa.table({"dialogue_id": ["4", "5"]}), table)
    assert count_records([plain, table]) == sum(1 for p in (plain, table) for _ in raw_records(p)) == 5
    packed = tmp_path / "c.jsonl.gz"
    packed.write_bytes(gzip.compress(b'{"dialogue_id": "6"}\n'))
    assert count_records([plain, packed]) is None  # not cheap to know: no total rather than a slow one
