"""The Ray engine's parts and merge (plain pyarrow, no Ray): input order, exactly-once, duplicate ids."""

import shutil

import pyarrow.parquet as pq

from profiler.predict import ray_parts

FILES = ["a.jsonl", "b.jsonl"]


def test_merge_restores_input_order_and_drops_repeated_rows(tmp_path):
    parts = tmp_path / "turns.jsonl.parts"
    parts.mkdir()
    # rows out of order inside a chunk, as a batch may come back
    ray_parts.write_part(parts, 0, ray_parts.part_table([
        (0, 3, "d2", False, [], ["t2a\n", "t2b\n"]), (0, 1, "d1", False, [], ["t1\n"]),
        (0, 2, None, False, ["e2\n"], [])]))
    ray_parts.write_part(parts, 1, ray_parts.part_table([(1, 1, "d3", False, [], ["t3\n"])]))
    shutil.copy(parts / "00000001.parquet", parts / "00000001.retry.parquet")  # an at-least-once repeat
    assert ray_parts.committed_chunks(parts) == {0, 1}
    out, err = tmp_path / "turns.jsonl", tmp_path / "errors.jsonl"
    summary = ray_parts.merge(parts, 2, out, err)
    assert out.read_text() == "t1\nt2a\nt2b\nt3\n" and err.read_text() == "e2\n"
    assert (summary["records"], summary["dialogues"], summary["rejected"], summary["turns"]) == (4, 3, 1, 4)
    assert not parts.exists()


def test_a_gap_is_refused(tmp_path):
    parts = tmp_path / "p"
    parts.mkdir()
    ray_parts.write_part(parts, 1, ray_parts.part_table([(0, 1, "d1", False, [], ["t\n"])]))
    try:
        ray_parts.merge(parts, 2, tmp_path / "t.jsonl", tmp_path / "e.jsonl")
    except RuntimeError as e:
        assert "[0]" in str(e)
    else:
        raise AssertionError("a missing chunk must fail the merge")


def test_duplicate_ids_are_found_across_chunks_and_their_chunks_marked_stale(tmp_path):
    parts = tmp_path / "p"
    parts.mkdir()
    ray_parts.write_part(parts, 0, ray_parts.part_table([(0, 1, None, False, ["bad\n"], []),
                                                         (0, 2, "x", False, [], ["t\n"])]))
    ray_parts.write_part(parts, 1, ray_parts.part_table([(1, 4, "x", False, [], ["t\n"]),
                                                         (1, 5, "y", False, [], ["t\n"])]))
    duplicates, stale = ray_parts.scan_duplicates(parts, 2, FILES)
    assert duplicates == {"1:4": "a.jsonl:2"} and stale == {1}   # first valid record wins, file:line kept
    ray_parts.write_part(parts, 1, ray_parts.part_table([(1, 4, "x", True, ["dup\n"], []),
                                                         (1, 5, "y", False, [], ["t\n"])]))
    assert ray_parts.scan_duplicates(parts, 2, FILES) == (duplicates, set())
    assert pq.read_table(parts / "00000001.parquet").schema == ray_parts.SCHEMA
